#!/usr/bin/env bash
# Installs what redis_persist needs into ./.venv. Safe to run again: skips what is there.
#   (no option)  the service
#   --demo       + Debian's nginx (for scripts/failover_demo.sh; its harness is redis_persist.testing)
#   --test       + the test extras, Debian's nginx and chromium (for the whole suite)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
extras=""
[ "$mode" = "--test" ] && extras="[test]"
stamp=".venv/.installed${extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras}"
  touch "$stamp"
fi

missing=()
if [ "$mode" = "--demo" ] || [ "$mode" = "--test" ]; then
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
fi
if [ "$mode" = "--test" ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
