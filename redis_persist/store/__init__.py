"""Everything that touches Redis: task records, events, the work queue, leases."""
