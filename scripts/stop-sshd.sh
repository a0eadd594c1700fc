#!/usr/bin/env bash
# stop-sshd.sh - stop the private sshd started by start-sshd.sh (by pid file).
# Existing sessions (children of the listener) are left to end on their own.
set -uo pipefail
DIR=${SSHD_DIR:-/var/lib/daskflow-sshd}
PIDFILE=$DIR/sshd.pid
if [[ -s $PIDFILE ]] && pid=$(cat "$PIDFILE") && kill -0 "$pid" 2>/dev/null \
   && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q sshd; then
  echo "[stop-sshd] stopping sshd (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
else
  echo "[stop-sshd] sshd not running"
fi
rm -f "$PIDFILE"
exit 0
