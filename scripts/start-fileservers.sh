#!/usr/bin/env bash
# start-fileservers.sh VENV - start the loopback file servers the staging tests use:
#   HTTP  python -m http.server (GET/HEAD only)   http://127.0.0.1:$HTTP_PORT/  serves $FS_ROOT/http
#   FTP   pyftpdlib, user/password ci/ci, writable ftp://127.0.0.1:$FTP_PORT/   serves $FS_ROOT/ftp
#   S3    moto_server (in-memory S3)               http://127.0.0.1:$S3_PORT    any key/secret
# Each listens on 127.0.0.1 only, logs to $FS_ROOT/NAME.log (the HTTP log lists
# every request: the cache tests count them) and keeps its pid in $FS_ROOT/NAME.pid.
# pyftpdlib, moto[server] and s3fs are installed into VENV if missing (the test
# extra already has them). Idempotent: servers that already answer are left alone.
#
# Env knobs: FS_ROOT (default /tmp/daskflow-fileservers), HTTP_PORT (18080),
#            FTP_PORT (2121), S3_PORT (5555), FS_WAIT_S (30)
# Stop with: scripts/stop-fileservers.sh   (by pid file, never by name)
set -euo pipefail
log() { printf '[start-fileservers] %s\n' "$*"; }
die() { printf '[start-fileservers] ERROR: %s\n' "$*" >&2; exit 1; }

VENV=${1:-${VENV:-}}
[[ -n $VENV ]] || die "usage: $0 VENV   (the Python virtualenv that runs the servers)"
[[ -x $VENV/bin/python ]] || die "$VENV/bin/python not found; create the venv first"
ROOT=${FS_ROOT:-/tmp/daskflow-fileservers}
HTTP_PORT=${HTTP_PORT:-18080}
FTP_PORT=${FTP_PORT:-2121}
S3_PORT=${S3_PORT:-5555}
WAIT_S=${FS_WAIT_S:-30}
PY=$VENV/bin/python

missing=()
"$PY" -c 'import pyftpdlib' 2>/dev/null || missing+=(pyftpdlib)
{ [[ -x $VENV/bin/moto_server ]] && "$PY" -c 'import flask, flask_cors' 2>/dev/null; } || missing+=("moto[server]")
"$PY" -c 'import s3fs' 2>/dev/null || missing+=(s3fs)
if ((${#missing[@]})); then
  log "pip installing into $VENV: ${missing[*]}"
  "$PY" -m pip install -q --disable-pip-version-check "${missing[@]}" || die "pip install ${missing[*]} failed"
fi

mkdir -p "$ROOT/http" "$ROOT/ftp"

# alive and really ours: its command line names $ROOT or moto_server (guards against pid reuse)
pid_alive() {
  [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null \
    && tr '\0' ' ' < "/proc/$(cat "$1")/cmdline" 2>/dev/null | grep -qE "$ROOT|moto_server"
}
port_open() { "$PY" - "$1" <<'PYEOF' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1); s.close()
PYEOF
}
# start_server NAME PORT READY-CHECK... -- COMMAND...
start_server() {
  local name=$1 port=$2; shift 2
  local check=() cmd=()
  while [[ $1 != -- ]]; do check+=("$1"); shift; done; shift; cmd=("$@")
  local pf=$ROOT/$name.pid lf=$ROOT/$name.log
  if pid_alive "$pf" && "${check[@]}" >/dev/null 2>&1; then
    log "$name already running (pid $(cat "$pf")) on 127.0.0.1:$port"; return 0
  fi
  if pid_alive "$pf"; then kill "$(cat "$pf")" 2>/dev/null || true; sleep 0.5; fi
  if port_open "$port"; then
    die "127.0.0.1:$port (for $name) is taken by another process; set ${name^^}_PORT"
  fi
  # setsid + nohup: the server outlives this shell, in its own process group
  setsid nohup "${cmd[@]}" >"$lf" 2>&1 < /dev/null &
  echo $! > "$pf"
  local deadline=$((SECONDS + WAIT_S))
  until "${check[@]}" >/dev/null 2>&1; do
    if ! pid_alive "$pf"; then tail -20 "$lf" >&2; die "$name exited during start (log $lf)"; fi
    if (( SECONDS >= deadline )); then tail -20 "$lf" >&2; die "$name not ready on port $port after ${WAIT_S}s (log $lf)"; fi
    sleep 0.3
  done
  log "started $name (pid $(cat "$pf")) on 127.0.0.1:$port, log $lf"
}

http_ok() { "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$HTTP_PORT/', timeout=2).read()"; }
ftp_ok()  { "$PY" -c "import ftplib; f=ftplib.FTP(); f.connect('127.0.0.1', $FTP_PORT, timeout=2); f.login('ci','ci'); f.quit()"; }
s3_ok()   { "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$S3_PORT/moto-api/', timeout=2).read()"; }

# -u: unbuffered, so that the request log is complete when a test reads it
start_server http "$HTTP_PORT" http_ok -- \
  "$PY" -u -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$ROOT/http"
# -w: write access; passive ports in a fixed range on loopback
start_server ftp "$FTP_PORT" ftp_ok -- \
  "$PY" -m pyftpdlib -i 127.0.0.1 -p "$FTP_PORT" -w -d "$ROOT/ftp" -u ci -P ci -r 60000-60100
# s3fs talks to it with endpoint_url; do not give it a region (s3fs.mkdir would send a
# LocationConstraint that S3 refuses for us-east-1)
start_server s3 "$S3_PORT" s3_ok -- \
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"

log "ready: http://127.0.0.1:$HTTP_PORT/ ftp://127.0.0.1:$FTP_PORT/ (ci/ci) s3 http://127.0.0.1:$S3_PORT (dirs under $ROOT)"
