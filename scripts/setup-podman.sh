#!/usr/bin/env bash
# setup-podman.sh - a real container runtime for the container tests of bash
# apps: Debian's podman with runc, and a local image, localhost/daskflow-test:1,
# built from files already on this machine (no image registry is reachable).
#
# The image holds busybox (sh, cat, ls, sleep, ...), bash and its libraries,
# and /etc/daskflow-test-image, a file only the image has. Containers on this
# kind of machine need podman's global options --runtime runc
# --cgroup-manager=cgroupfs (crun, the default runtime, refuses hybrid
# cgroups) and explicit --ulimit values (a container cannot raise them here);
# the tests pass them as a container's runtime_options and options.
# Idempotent (the image is built once); needs root and apt-get; leaves
# nothing running.
set -euo pipefail
log() { printf '[setup-podman] %s\n' "$*"; }
die() { printf '[setup-podman] ERROR: %s\n' "$*" >&2; exit 1; }

IMAGE=localhost/daskflow-test:1
GLOBAL=(--runtime runc --cgroup-manager=cgroupfs)
APT_LOG=/tmp/daskflow-setup-podman-apt.log

if ! command -v podman >/dev/null || ! command -v runc >/dev/null \
    || ! command -v busybox >/dev/null; then
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install podman"
  command -v apt-get >/dev/null || die "apt-get not found (install podman and runc yourself)"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z $(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial) ]]; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq
  fi
  log "installing podman, runc and busybox (apt)"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq podman runc busybox-static \
    >"$APT_LOG" 2>&1 || { tail -20 "$APT_LOG" >&2; die "apt-get install failed"; }
fi

if ! podman "${GLOBAL[@]}" image exists "$IMAGE"; then
  log "building $IMAGE from busybox and bash"
  root=$(mktemp -d)
  trap 'rm -rf "$root" "$root.tar"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  chmod 1777 "$root/tmp"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in sh echo cat ls true false env sleep head tail grep mkdir rm cp mv wc id ps; do
    ln -sf busybox "$root/bin/$applet"
  done
  cp /bin/bash "$root/bin/bash"
  for lib in $(ldd /bin/bash | grep -oE '/[^ ]+'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  echo "daskflow-test:1" >"$root/etc/daskflow-test-image"
  tar -C "$root" -cf "$root.tar" .
  podman "${GLOBAL[@]}" import --change 'ENV PATH=/bin' "$root.tar" "$IMAGE" >/dev/null
fi

# it runs: bash inside, the image's own file, the host's PID namespace not shared
out=$(podman "${GLOBAL[@]}" run --rm --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
  --network=host "$IMAGE" bash -c 'cat /etc/daskflow-test-image; echo "pid $$"')
[[ $out == $'daskflow-test:1\npid 1' ]] || die "the test container did not run as expected: $out"
log "ok: $IMAGE runs (podman $(podman --version | awk '{print $3}'), runc)"
