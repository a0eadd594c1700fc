"""What each call used, recorded in provenance on a real cluster: CPU time
(user, system), peak memory, bytes read and written; for bash apps from
the command's own processes (``os.wait4``), for Python apps from the
worker thread (``getrusage``). Shown per app by the store's summary, the
Workflow page's aggregate and ``daskflow tasks``."""

from __future__ import annotations

import os

from click.testing import CliRunner
import dask
import pytest

import daskflow
from daskflow import bash_app, python_app
from daskflow.cli.main import main
from daskflow.dashboard.page import usage_html
from daskflow.provenance.recorded import recorded_state
from daskflow.provenance.store import ProvenanceStore, find_run

MB = 1_000_000


@bash_app
def heavy_command(out):
    # 8 MB written, a process holding 80 MB, some CPU in user and system mode
    return (f"head -c 8000000 /dev/urandom > {out}; "
            "python3 -c 'x = bytearray(80_000_000); sum(range(3_000_000))'")


def _burn(seconds: float) -> int:
    import time

    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += 1
    return n


@python_app
def spin(seconds, out=None, walltime=None):
    if out:
        with open(out, "wb") as f:
            f.write(os.urandom(4 * MB))
            f.flush()
            os.fsync(f.fileno())
    return _burn(seconds) > 0


@python_app
def spin_then_fail(seconds):
    _burn(seconds)
    raise ValueError("spun and failed")


@python_app
def tiny(x):
    return _burn(0.02) and x


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    base = tmp_path_factory.mktemp("usage")
    with dask.config.set({"daskflow.run-dir": str(base / "runinfo")}), \
            daskflow.Client(n_workers=2, threads_per_worker=1, dashboard_address=":0") as c, \
            c.as_current():
        fs = {"bash": heavy_command(str(base / "random.bin")),
              "python": spin(0.3, out=str(base / "py.bin")),
              "walltime": spin(0.3, walltime=60),
              "failed": spin_then_fail(0.2),
              "chunk": tiny.map(range(4), chunksize=4)}
        for f in fs.values():
            for g in f if isinstance(f, list) else [f]:
                g.exception()
        run_dir = find_run(str(base / "runinfo"), "latest")
    store = ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True)
    yield run_dir, store, fs
    store.close()


def _row(store, future):
    (row,) = [t for t in store.tasks() if t["key"] == future.ident]
    return row


def test_a_bash_app_is_measured_from_its_processes(recorded):
    _, store, fs = recorded
    row = _row(store, fs["bash"])
    assert row["cpu_user"] > 0.01 and row["cpu_system"] > 0.005
    assert row["peak_memory"] >= 80 * MB  # the python3 it started, not the worker
    assert row["write_bytes"] >= 7.5 * MB


def test_a_python_app_is_measured_from_its_thread(recorded):
    _, store, fs = recorded
    row = _row(store, fs["python"])
    assert 0.25 <= row["cpu_user"] + row["cpu_system"] < 2
    assert row["write_bytes"] >= 3.9 * MB
    assert row["peak_memory"] > 20 * MB  # the worker process's high-water mark


def test_a_python_app_with_a_walltime_counts_its_helper_thread(recorded):
    _, store, fs = recorded
    row = _row(store, fs["walltime"])
    assert 0.25 <= row["cpu_user"] + row["cpu_system"] < 2


def test_a_failed_call_is_measured_too(recorded):
    _, store, fs = recorded
    row = _row(store, fs["failed"])
    assert row["state"] == "failed" and row["cpu_user"] + row["cpu_system"] >= 0.15


def test_each_call_of_a_chunk_is_measured(recorded):
    _, store, fs = recorded
    rows = [_row(store, f) for f in fs["chunk"]]
    assert all(0.015 <= r["cpu_user"] + r["cpu_system"] < 1 for r in rows), rows


def test_per_app_totals_in_the_summary_and_on_the_page(recorded):
    _, store, fs = recorded
    apps = store.summary()["apps"]
    assert apps["tiny"]["cpu_user"] + apps["tiny"]["cpu_system"] >= 0.06
    assert apps["heavy_command"]["peak_memory"] >= 80 * MB
    assert apps["spin"]["write_bytes"] >= 3.9 * MB
    snap = recorded_state(store).snapshot()
    used = snap["apps"]["spin"]["usage"]
    assert used["cpu_user"] + used["cpu_system"] >= 0.5
    page = usage_html(snap["apps"])
    assert "id='daskflow-usage'" in page and "data-app='heavy_command'" in page
    assert "data-usage='peak_memory'" in page and "MiB" in page


def test_daskflow_tasks_lists_what_each_call_used(recorded):
    run_dir, _, fs = recorded
    out = CliRunner().invoke(main, ["tasks", os.path.basename(run_dir), "--dir",
                                    os.path.dirname(run_dir), "--app", "heavy_command"])
    assert out.exit_code == 0, out.output
    header, line = out.output.splitlines()[:2]
    for title in ("cpu_user", "cpu_sys", "peak_mem", "read", "written"):
        assert title in header
    assert "MiB" in line
