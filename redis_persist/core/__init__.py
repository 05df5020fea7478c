"""Pure domain rules: statuses, transitions, the task record, domain errors. No I/O."""
