#!/usr/bin/env bash
# Run every benchmark one after the other (about 2.5 minutes on 2 cores), then print the tables.
# Each writes bench/results/<name>.json. Run on an otherwise idle machine: they share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY bench/bench_tasks.py
$PY bench/bench_cluster.py
$PY bench/bench_events.py
if [ -x .venv/bin/py-spy ]; then $PY bench/profile_service.py; fi
$PY bench/report.py
