#!/usr/bin/env bash
# Install what the tests need (Python packages, Debian nginx and chromium) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
exec .venv/bin/python -m pytest "$@"
