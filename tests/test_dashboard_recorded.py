"""``daskflow dashboard [RUN]``: the Workflow page of a recorded run, served
from its provenance database after its script exited (or while it still
runs), asking for the printed token. Real clusters, the real command, and
headless Chromium for the page itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import dask
import distributed
import pytest
from waiting import until

import daskflow
from daskflow import python_app
from daskflow.client.session import session_of
from daskflow.provenance.recorded import RELOAD_AFTER, RecordedRuns
from daskflow.provenance.store import DB_NAME, ProvenanceStore

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKFLOW = """
import distributed
from daskflow import bash_app, python_app

@python_app
def double(x):
    return 2 * x

@python_app
def total(*xs):
    return sum(xs)

@python_app
def explode(i):
    raise ValueError(f"explode {i}: bad input")

@bash_app
def checksum():
    return "head -c 3000000 /dev/urandom | md5sum > /dev/null"

first = [double(i) for i in range(20)]
print("TOTAL", total(*first).result(), flush=True)
distributed.wait([explode(i) for i in range(2)] + [checksum()])
"""


@python_app
def rd_double(x):
    return 2 * x


@python_app
def rd_total(*xs):
    return sum(xs)


@python_app
def rd_explode(i):
    raise ValueError(f"explode {i}: bad input")


def _run_script(tmp_path, runinfo) -> None:
    (tmp_path / "wf.py").write_text(WORKFLOW)
    done = subprocess.run([sys.executable, "wf.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180,
                          env=dict(os.environ, DASK_DASKFLOW__RUN_DIR=str(runinfo)))
    assert "TOTAL 380" in done.stdout, done.stderr[-3000:]


def test_a_recorded_run_reads_as_its_live_page_had_it(tmp_path):
    """Counts per app and state, the app graph, the failures, the recent
    intervals and the workers' pools, read back from the database; a run
    still going on is read again once its database changed."""
    with dask.config.set({"daskflow.run-dir": str(tmp_path / "runinfo")}), \
            daskflow.Client(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                            set_as_default=False) as c, c.as_current():
        first = [rd_double(i) for i in range(20)]
        assert rd_total(*first).result() == 380
        distributed.wait([rd_explode(i) for i in range(2)])
        c.sync(c.scheduler.daskflow_workflow, settle=True)
        directory = session_of(c).run_dir
        runs = RecordedRuns([directory])
        state = runs.get()
        assert state.status == "running" and state.end is None
        assert state.counts["rd_double"]["done"] == 20
        assert state.counts["rd_explode"]["failed"] == 2 and state.n_failed == 2
        assert state.edges[("rd_double", "rd_total")] == 20
        assert sorted(f["message"] for f in state.failures) == [
            "ValueError('explode 0: bad input')", "ValueError('explode 1: bad input')"]
        assert len(state.intervals) == 23  # every call finished, with its times
        assert {i[0] for i in state.intervals} <= {w for w in c.scheduler_info()["workers"]}
        (pool,) = runs.pools()
        assert pool["workers"] == 2 and pool["state"] == "up", pool
        # the run goes on: the page reads the database again once it changed
        before = state.version
        c.gather([rd_double(i) for i in range(100, 105)])
        c.sync(c.scheduler.daskflow_workflow, settle=True)
        time.sleep(RELOAD_AFTER + 0.1)
        again = runs.get()
        assert again.counts["rd_double"]["done"] == 25 and again.version > before
    time.sleep(RELOAD_AFTER + 0.1)
    ended = runs.get()
    assert ended.status == "failed" and ended.end is not None  # two calls failed
    assert runs.pools()[0]["state"] == "gone"


def test_a_database_of_an_older_daskflow_has_no_workers(tmp_path):
    path = tmp_path / "run" / DB_NAME
    with ProvenanceStore(str(path)) as store:
        store.start_run({"run_id": "000", "start": time.time()})
        store._conn.execute("DROP TABLE workers")
    runs = RecordedRuns([str(tmp_path / "run")])
    assert runs.get().run_id == "000" and runs.pools() == []


def _start_dashboard(*args: str, cwd) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "daskflow.cli", "dashboard", "--port", "0",
                             *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"(http://\S+)", line)
        if found:
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no address printed: {proc.stderr.read()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def test_the_page_asks_for_its_token_and_a_missing_run_is_named(tmp_path):
    runinfo = tmp_path / "runinfo"
    _run_script(tmp_path, runinfo)
    proc, url = _start_dashboard("--dir", str(runinfo), cwd=tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert answer.status == 200 and "daskflow: Workflow" in answer.read().decode()
        for wrong in (url.split("?")[0], url[:-3] + "xyz"):
            with pytest.raises(urllib.error.HTTPError) as denied:
                urllib.request.urlopen(wrong, timeout=30)
            assert denied.value.code == 403
    finally:
        _stop(proc)
    missing = subprocess.run([sys.executable, "-m", "daskflow.cli", "dashboard", "7", "--dir",
                              str(runinfo)], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PYTHONPATH=ROOT))
    assert missing.returncode != 0 and "no run '7'" in missing.stderr and "000" in missing.stderr


@pytest.mark.slow
def test_a_finished_runs_page_in_headless_chromium(tmp_path):
    from test_dashboard_browser import ARGS, ARTIFACTS, CHROMIUM, _cell, _playwright

    sync_api = _playwright()
    runinfo = tmp_path / "runinfo"
    _run_script(tmp_path, runinfo)
    _run_script(tmp_path, runinfo)  # a second run, for --all
    proc, url = _start_dashboard("000", "--all", "--dir", str(runinfo), cwd=tmp_path)
    try:
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / "chromium"), executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 1400, "height": 1300})
            try:
                page = ctx.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(url, wait_until="load", timeout=30_000)
                page.wait_for_selector("canvas", timeout=30_000)
                page.wait_for_selector("#daskflow-counts", timeout=30_000)
                assert page.locator("#daskflow-run").inner_text() == "000"
                assert page.locator("#daskflow-status").inner_text() == "failed"
                assert _cell(page, "double", "done") == 20 and _cell(page, "total", "done") == 1
                assert _cell(page, "explode", "failed") == 2 and _cell(page, "*", "total") == 24
                # what the bash app's processes used, from their own accounting
                cpu = page.locator("#daskflow-usage tr[data-app='checksum']"
                                   " td[data-usage='cpu_user']").inner_text()
                assert cpu.endswith(" s") and float(cpu[:-2]) > 0, cpu
                peak = page.locator("#daskflow-usage tr[data-app='checksum']"
                                    " td[data-usage='peak_memory']").inner_text()
                assert peak.endswith(("kiB", "MiB")), peak
                assert page.get_by_text("ValueError('explode 1: bad input')").count() == 1
                # the embedded cluster's workers that joined before the short run ended
                pools = page.locator(".slick-row", has_text="(no pool)")
                assert pools.count() == 1 and re.search(r"gone\s*[12]\s*0", pools.inner_text())
                # --all: both runs in the menu, the one asked for shown
                options = page.locator("select option").all_inner_texts()
                assert options == ["001", "000"], options
                assert page.locator("canvas").count() >= 3  # bars, timeline, app graph
                os.makedirs(ARTIFACTS, exist_ok=True)
                shot = os.path.join(ARTIFACTS, "recorded-workflow-page.png")
                page.screenshot(path=shot, full_page=True)
                assert os.path.getsize(shot) > 10_000
                # the other run, picked from the menu
                page.locator("select").select_option("001")
                until(lambda: page.locator("#daskflow-run").inner_text() == "001",
                      "the page did not switch to run 001", timeout=30)
                assert not errors, errors
            finally:
                ctx.close()
    finally:
        _stop(proc)
