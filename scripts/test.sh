#!/usr/bin/env bash
# Install what the tests need (Python packages, Debian nginx and chromium) and run the whole suite.
# Test files are spread over parallel pytest-xdist workers (one per core, at most 4; PYTEST_WORKERS=0 runs
# them in this process): most tests wait on real processes, nodes and leases, not on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
workers="${PYTEST_WORKERS:-$(nproc 2>/dev/null || echo 2)}"
(( workers > 4 )) && workers=4
if (( workers > 1 )); then
  exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
fi
exec .venv/bin/python -m pytest "$@"
