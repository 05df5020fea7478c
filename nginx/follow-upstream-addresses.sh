#!/bin/sh
# Run nginx in the foreground and reload it when an upstream host comes back on a new address.
#
# nginx resolves the `server api-N:8000` names of nginx.conf once, when it loads the config. A replica
# container that is stopped and started again (or restarted after a crash) usually gets a new address,
# and nginx would keep sending that replica's share to the old one: each time a connect attempt that
# waits for proxy_connect_timeout, and the replica never gets requests again. So every 2 s this looks
# the names up, and once all of them resolve to something new, reloads nginx (the old workers finish
# their requests). POSIX sh + getent: works on Debian and Alpine images.
set -u
conf=/etc/nginx/nginx.conf
hosts=$(sed -n 's/^[[:space:]]*server[[:space:]][[:space:]]*\([A-Za-z0-9._-]*\):[0-9][0-9]*.*/\1/p' "$conf")

addresses() {
  # One line per host: "host address..."; fails when a host does not resolve (its container is stopped).
  for host in $hosts; do
    found=$(getent hosts "$host" | awk '{print $1}' | sort -u | tr '\n' ' ')
    [ -n "$found" ] || return 1
    echo "$host $found"
  done
}

nginx -g 'daemon off;' &
nginx_pid=$!
# compose stop / docker stop: pass the signal on (SIGQUIT, the image's stop signal, is a graceful stop).
trap 'kill -QUIT "$nginx_pid" 2>/dev/null' QUIT
trap 'kill -TERM "$nginx_pid" 2>/dev/null' TERM INT

loaded=$(addresses || true)
while kill -0 "$nginx_pid" 2>/dev/null; do
  sleep 2 &
  wait $! 2>/dev/null || true
  if now=$(addresses) && [ "$now" != "$loaded" ]; then
    echo "upstream addresses changed, reloading nginx: $(echo "$now" | tr '\n' ';')" >&2
    nginx -s reload && loaded=$now
  fi
done
wait "$nginx_pid"
