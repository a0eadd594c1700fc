"""The Workflow page in a real headless Chromium, driven by Playwright,
while a real workflow runs in another process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

import pytest
from waiting import until

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "test-artifacts")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic"]

PROFILE = """
name: browser-test
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: cpu
    provider: local
    workers_per_node: 2
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
"""

WORKFLOW = """
import os, sys, time
import distributed
import daskflow
from daskflow import python_app

@python_app
def double(x):
    import time
    time.sleep(0.1)
    return 2 * x

@python_app
def total(*xs):
    return sum(xs)

@python_app
def explode(i):
    raise ValueError(f"explode {i}: bad input")

if __name__ == "__main__":
    trigger = sys.argv[2]
    client = daskflow.Client(profile=sys.argv[1])
    print("DASHBOARD", client.dashboard_link, flush=True)
    first = [double(i) for i in range(5)]
    failing = [explode(i) for i in range(2)]
    print("TOTAL", total(*first).result(), flush=True)
    distributed.wait(failing)
    print("PHASE1", flush=True)
    while not os.path.exists(trigger):
        time.sleep(0.05)
    distributed.wait([double(i) for i in range(10, 17)])
    print("PHASE2", flush=True)
    while not os.path.exists(trigger + ".stop"):
        time.sleep(0.05)
    client.close()
"""


def _playwright():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (scripts/setup-chromium.sh installs it as root)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def _read_line(proc, prefix: str, timeout: float = 90) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"the workflow never printed {prefix!r}: {proc.stderr.read()[-3000:]}")


def _cell(page, app: str, state: str) -> int:
    return int(page.locator(f"#daskflow-counts tr[data-app='{app}'] td[data-state='{state}']")
               .inner_text())


@pytest.mark.slow
def test_workflow_page_in_headless_chromium(tmp_path):
    sync_api = _playwright()
    (tmp_path / "profile.yaml").write_text(PROFILE)
    (tmp_path / "wf.py").write_text(WORKFLOW)
    trigger = tmp_path / "go"
    proc = subprocess.Popen([sys.executable, "wf.py", "profile.yaml", str(trigger)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.path.dirname(ARTIFACTS),
                                     DASK_DASKFLOW__RUN_DIR=str(tmp_path / "runinfo")))
    try:
        link = _read_line(proc, "DASHBOARD").split()[1]
        url = re.sub(r"/status$", "/workflow", link)
        assert _read_line(proc, "TOTAL") == "TOTAL 20"
        _read_line(proc, "PHASE1")
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="daskflow-chromium-", dir=tmp_path),
                executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 1400, "height": 1300})
            try:
                page = ctx.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(url, wait_until="load", timeout=30_000)
                page.wait_for_selector("canvas", timeout=30_000)
                page.wait_for_selector("#daskflow-counts", timeout=30_000)
                # the counts of phase one, read from the DOM
                until(lambda: _cell(page, "double", "done") == 5, "5 doubles never showed",
                      timeout=30)
                assert _cell(page, "explode", "failed") == 2 and _cell(page, "total", "done") == 1
                assert _cell(page, "*", "total") == 8
                assert page.locator("#daskflow-run").inner_text() == "000"
                # phase two: the same page (no reload) follows the run
                trigger.write_text("")
                _read_line(proc, "PHASE2")
                until(lambda: _cell(page, "double", "done") == 12,
                      "the page did not follow the run to 12 doubles", timeout=30)
                assert _cell(page, "*", "total") == 15 and _cell(page, "*", "failed") == 2
                # Bokeh draws into shadow roots: Playwright's text selectors reach inside
                assert page.get_by_text("ValueError('explode 1: bad input')").count() == 1
                assert page.get_by_text("Pools and blocks").count() == 1
                pools = page.locator(".slick-row", has_text="cpu")  # pool cpu, block 0: 2 workers
                assert pools.count() == 1 and re.search(r"cpu\s*0\s*idle\s*2\s*0",
                                                        pools.inner_text()), pools.inner_text()
                assert page.locator("a[href='workflow']").count() == 1  # in the navigation bar
                assert page.locator("canvas").count() >= 3  # bars, timeline, app graph
                os.makedirs(ARTIFACTS, exist_ok=True)
                shot = os.path.join(ARTIFACTS, "workflow-page.png")
                page.screenshot(path=shot, full_page=True)
                assert os.path.getsize(shot) > 10_000
                assert not errors, errors
            finally:
                ctx.close()
        # the dashboard's own pages link to the Workflow page too
        status = subprocess.run(["curl", "-s", link], capture_output=True, text=True, timeout=30)
        assert 'href="workflow"' in status.stdout
    finally:
        trigger.write_text("")  # let the script finish whichever phase it is in
        (tmp_path / "go.stop").write_text("")
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
