#!/usr/bin/env bash
# Build a minimal Debian bookworm root file system with debootstrap and import it into podman as IMAGE.
# The base of the python / redis / nginx stand-ins when no image registry is reachable.
#   debian-minbase.sh IMAGE
# The packages come from the Debian mirror apt on this machine already uses (read from its sources).
set -euo pipefail
image=$1
suite=bookworm   # Python 3.11, like python:3.11-slim

debian_mirror() {
  # The first Debian mirror in apt's sources (deb822 .sources files or the one-line sources.list format).
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' | grep -v -- '-security' | head -n 1 || true)
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
          | grep -v -- '-security' | grep -i debian | head -n 1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

mirror=$(debian_mirror)
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/redis-persist-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap --variant=minbase $suite from $mirror" >&2
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
  || { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

# Slim like debian:bookworm-slim: no docs, man pages or translations, now or from later installs.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
cat >"$rootfs/etc/apt/apt.conf.d/slim" <<'CFG'
APT::Install-Recommends "false";
Acquire::Languages "none";
CFG
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/cache/apt/*.bin \
       "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log

tar --numeric-owner -C "$rootfs" -c . \
  | podman import --quiet --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$image" >/dev/null
echo "imported $image" >&2
