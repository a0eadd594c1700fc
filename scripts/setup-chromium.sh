#!/usr/bin/env bash
# setup-chromium.sh [VENV] - install Debian's chromium (if missing) for the
# browser tests of the dashboard, and, given VENV, check that the Playwright
# package in it can drive /usr/bin/chromium.
#
# Playwright's own browser download (`playwright install`) is never used:
# the tests launch /usr/bin/chromium with executable_path=. A plain
# `chromium --headless --screenshot` is not enough for the dashboard: it
# fires at the load event, before Bokeh has drawn anything over its websocket.
# Idempotent; leaves nothing running.
set -euo pipefail
log() { printf '[setup-chromium] %s\n' "$*"; }
die() { printf '[setup-chromium] ERROR: %s\n' "$*" >&2; exit 1; }

VENV=${1:-}
APT_LOG=/tmp/daskflow-setup-chromium-apt.log

if [[ ! -x /usr/bin/chromium ]]; then
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install chromium"
  command -v apt-get >/dev/null || die "apt-get not found (install chromium yourself)"
  export DEBIAN_FRONTEND=noninteractive
  # another apt may be running on a shared machine: wait for its lock
  apt_install() {
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium \
      >"$APT_LOG" 2>&1
  }
  if [[ -z $(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial) ]]; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq
  fi
  log "installing chromium (apt)"
  apt_install || { apt-get -o DPkg::Lock::Timeout=300 update -qq && apt_install; } \
    || { tail -20 "$APT_LOG" >&2; die "apt-get install chromium failed (log: $APT_LOG)"; }
fi
log "$(/usr/bin/chromium --version 2>/dev/null || echo 'chromium: version unknown')"

if [[ -n $VENV ]]; then
  PY=$VENV/bin/python
  [[ -x $PY ]] || die "no python in $VENV"
  "$PY" -c 'import playwright' 2>/dev/null || die "playwright is not installed in $VENV (pip install -e '.[test]')"
  WORK=$(mktemp -d /tmp/daskflow-chromium.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
  WORK=$WORK timeout 120 "$PY" - <<'EOF' || die "Playwright could not drive /usr/bin/chromium"
import os
from playwright.sync_api import sync_playwright

args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
with sync_playwright() as p:
    ctx = p.chromium.launch_persistent_context(
        os.path.join(os.environ["WORK"], "profile"), executable_path="/usr/bin/chromium",
        headless=True, args=args)
    page = ctx.new_page()
    page.set_content("<p id='p'></p><script>document.getElementById('p').textContent='js ok'</script>")
    assert page.text_content("#p") == "js ok", page.content()
    ctx.close()
EOF
  log "OK: Playwright drives /usr/bin/chromium"
fi
