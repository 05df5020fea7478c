#!/usr/bin/env bash
# The compose stack (docker-compose-redis-persist.yml: Redis, api-1..3, nginx) with podman, no Docker engine.
#
#   scripts/containers.sh up              prepare what is missing, build the image once, start the stack,
#                                         print the URL once every container is healthy and /health
#                                         answers through nginx
#   scripts/containers.sh down            remove everything `up` started (containers, network, volumes)
#   scripts/containers.sh compose ARGS    podman-compose on this stack: ps, logs api-1, stop api-1, start api-1...
#                                         (leading `-f FILE` options add override files)
#   scripts/containers.sh build           prepare, then build the image (redis-persist:latest)
#   scripts/containers.sh prepare         install podman & co. and the base images when missing
#
# Environment: PORT (nginx on 127.0.0.1:PORT, default 8080), COMPOSE_PROJECT_NAME (default redis-persist),
# CONTAINERS_CONF (default scripts/containers/containers.conf), UP_TIMEOUT (seconds, default 300),
# REDIS_PERSIST_ADMIN_KEY / REDIS_PERSIST_AUTH (the replicas run with API keys on: without either, `up` makes
# an admin key, keeps it in .containers-admin-key.$COMPOSE_PROJECT_NAME for later calls and prints it).
#
# Images come from the local podman storage. Without an image registry (as on our machines), `prepare`
# builds stand-ins under the names the files use, once: python:3.11-slim and the Debian base they share
# from the apt mirror this machine uses, redis:8 (valkey + RedisJSON + RediSearch) and nginx:1.27-alpine
# (Debian's nginx). With a registry, `podman pull` those three first and they are used as they are.
# Installing packages and debootstrap need root (or sudo for apt); our machines run everything as root.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
HERE=$REPO/scripts/containers

export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/containers.conf}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-redis-persist}
export HTTP_PORT=${PORT:-8080}          # read by the compose file: nginx on 127.0.0.1:$HTTP_PORT
COMPOSE_FILE=$REPO/docker-compose-redis-persist.yml
PODMAN_COMPOSE=$REPO/.venv/bin/podman-compose
IMAGE=localhost/redis-persist:latest
DEBIAN_BASE=localhost/redis-persist-standin/debian:bookworm-minbase
PYTHON_IMAGE=docker.io/library/python:3.11-slim
REDIS_IMAGE=docker.io/library/redis:8
NGINX_IMAGE=docker.io/library/nginx:1.27-alpine

say() { echo "containers.sh: $*" >&2; }

# The compose file refuses to start replicas without an admin key (or REDIS_PERSIST_AUTH=off).
# Every later call (stop, start, logs) must pass the same key, so it is kept beside the project.
ADMIN_KEY_FILE=$REPO/.containers-admin-key.$COMPOSE_PROJECT_NAME
if [ -z "${REDIS_PERSIST_ADMIN_KEY:-}" ] && [ "${REDIS_PERSIST_AUTH:-}" != off ]; then
  if [ ! -s "$ADMIN_KEY_FILE" ]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$ADMIN_KEY_FILE")
    say "made an admin key for $COMPOSE_PROJECT_NAME (kept in $ADMIN_KEY_FILE): $(cat "$ADMIN_KEY_FILE")"
  fi
  REDIS_PERSIST_ADMIN_KEY=$(cat "$ADMIN_KEY_FILE")
  export REDIS_PERSIST_ADMIN_KEY
fi

ensure_tools() {
  local missing=() tool
  for tool in podman buildah slirp4netns newuidmap fuse-overlayfs debootstrap runc curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing podman and its helpers (missing: ${missing[*]})"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # Another apt may hold the lock (parallel installs): wait for it rather than fail.
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      podman buildah slirp4netns uidmap fuse-overlayfs debootstrap runc curl >/dev/null
  fi
  if [ ! -x "$PODMAN_COMPOSE" ]; then
    say "installing podman-compose into .venv"
    [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install -qq "podman-compose>=1.2,<2"
  fi
}

image_exists() { podman image exists "$1"; }

build_standin() {
  # build_standin IMAGE CONTAINERFILE [extra files for the build context...]
  local image=$1 containerfile=$2 context
  shift 2
  context=$(mktemp -d "${TMPDIR:-/tmp}/redis-persist-standin.XXXXXX")
  mkdir -p "$context/extra-ca-certificates"
  # The host's local certificate authorities (update-ca-certificates reads them from here).
  cp /usr/local/share/ca-certificates/*.crt "$context/extra-ca-certificates/" 2>/dev/null || true
  [ $# -gt 0 ] && cp "$@" "$context/"
  say "building the stand-in $image"
  podman build --quiet --format docker --network host -t "$image" -f "$HERE/$containerfile" "$context" >/dev/null \
    || { rm -rf "$context"; say "building $image failed"; exit 1; }
  rm -rf "$context"
}

ensure_images() {
  if ! image_exists "$PYTHON_IMAGE"; then
    image_exists "$DEBIAN_BASE" || bash "$HERE/debian-minbase.sh" "$DEBIAN_BASE"
    build_standin "$PYTHON_IMAGE" python.Containerfile
  fi
  if ! image_exists "$REDIS_IMAGE"; then
    image_exists "$DEBIAN_BASE" || bash "$HERE/debian-minbase.sh" "$DEBIAN_BASE"
    build_standin "$REDIS_IMAGE" redis.Containerfile "$HERE/redis-server"
  fi
  if ! image_exists "$NGINX_IMAGE"; then
    image_exists "$DEBIAN_BASE" || bash "$HERE/debian-minbase.sh" "$DEBIAN_BASE"
    build_standin "$NGINX_IMAGE" nginx.Containerfile
  fi
}

prepare() {
  ensure_tools
  ensure_images
}

build() {
  prepare
  say "building $IMAGE from the Dockerfile"
  # Built once here; the three api services share it (compose would build it once per service).
  podman build --format docker --network host -t "$IMAGE" -f Dockerfile . >&2
}

compose() {
  # Leading `-f FILE` options add override files after the project's compose file.
  local files=(-f "$COMPOSE_FILE")
  while [ "${1:-}" = "-f" ] && [ $# -ge 2 ]; do
    files+=(-f "$2")
    shift 2
  done
  case "${1:-}" in
    logs | exec | run)  # streamed or interactive
      "$PODMAN_COMPOSE" --project-name "$COMPOSE_PROJECT_NAME" "${files[@]}" "$@"
      return ;;
  esac
  # Starting a container can start aardvark-dns (the containers' DNS), a daemon that inherits our
  # stdout and stderr: when they are pipes (`| tee`, a test reading them) the reader would wait for
  # that daemon to exit. So the output goes through files.
  local out err status=0
  out=$(mktemp) err=$(mktemp)
  "$PODMAN_COMPOSE" --project-name "$COMPOSE_PROJECT_NAME" "${files[@]}" "$@" \
    </dev/null >"$out" 2>"$err" || status=$?
  cat "$out"
  # Without systemd podman cannot schedule healthchecks (`podman healthcheck run` still works) and
  # says so for every container: drop that noise, keep everything else.
  grep -v -e 'systemd connection to .* healthchecks' -e 'failed to connect to syslog' \
    -e 'condition check due to podman' "$err" >&2 || true
  rm -f "$out" "$err"
  return "$status"
}

all_healthy() {
  # Every container of the stack passes its healthcheck (run now: podman schedules none without systemd).
  # One /health through nginx is not enough: it reaches one replica, and the others may still be starting.
  local name
  for name in $(podman ps --all --quiet --filter "label=io.podman.compose.project=$COMPOSE_PROJECT_NAME"); do
    podman healthcheck run "$name" >/dev/null 2>&1 || return 1
  done
}

wait_for_health() {
  local url="http://127.0.0.1:$HTTP_PORT" deadline=$((SECONDS + ${UP_TIMEOUT:-300}))
  # The replicas first, nginx after: a /health sent through nginx while a replica still refuses connections
  # marks that replica down in nginx for its fail_timeout (10 s), and requests meanwhile get 502s.
  until all_healthy && curl -fsS --max-time 3 "$url/health" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      say "$url/health did not answer within ${UP_TIMEOUT:-300} s"
      compose ps >&2 || true
      compose logs --tail 30 >&2 || true
      return 1
    fi
    sleep 1
  done
  echo "$url"
}

up() {
  build
  say "starting $COMPOSE_PROJECT_NAME (nginx on 127.0.0.1:$HTTP_PORT)"
  compose up -d --no-build >&2
  wait_for_health
}

down() {
  [ -x "$PODMAN_COMPOSE" ] || { say "podman-compose is not installed: nothing was started"; return 0; }
  local status=0 label="label=io.podman.compose.project=$COMPOSE_PROJECT_NAME" leftover
  compose down -v --timeout 30 >&2 || status=$?
  # A replica in a restart loop (one that cannot start) can come back between compose's stop and rm.
  leftover=$(podman ps --all --quiet --filter "$label")
  if [ -n "$leftover" ]; then
    # shellcheck disable=SC2086 # one id per word
    podman rm --force --time 0 $leftover >/dev/null
  fi
  leftover=$(podman volume ls --quiet --filter "$label")
  if [ -n "$leftover" ]; then
    # shellcheck disable=SC2086
    podman volume rm --force $leftover >/dev/null
  fi
  if podman network exists "${COMPOSE_PROJECT_NAME}_default"; then
    podman network rm --force "${COMPOSE_PROJECT_NAME}_default" >/dev/null
  fi
  rm -f "$ADMIN_KEY_FILE"
  return "$status"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  up) up ;;
  down) down ;;
  build) build ;;
  prepare) prepare ;;
  compose) compose "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
