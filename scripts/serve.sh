#!/usr/bin/env bash
# Install (first run only) and start the service: API + worker on 127.0.0.1:8000,
# with an embedded Redis under ./.redis-persist-data unless REDIS_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/redis-persist serve "$@"
