#!/usr/bin/env bash
# stop-fileservers.sh - stop the servers started by start-fileservers.sh (by pid file).
# Pass --purge to also delete $FS_ROOT.
set -uo pipefail
ROOT=${FS_ROOT:-/tmp/daskflow-fileservers}
for name in http ftp s3; do
  pf=$ROOT/$name.pid
  if [[ -s $pf ]] && pid=$(cat "$pf") && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qE "$ROOT|moto_server"; then
    echo "[stop-fileservers] stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$pf"
done
[[ ${1:-} == --purge ]] && rm -rf "$ROOT"
exit 0
