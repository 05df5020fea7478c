#!/usr/bin/env bash
# Install (Python packages, Debian's nginx) and run the failover demo: Redis, api-1..3 and nginx on this
# machine, a batch of tasks, SIGKILL of api-1 mid-run, a table showing every task finished from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --demo
exec .venv/bin/python scripts/failover_demo.py "$@"
