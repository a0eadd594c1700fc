"""The run's provenance writer, a process of its own (``provenance.writer``):
a run longer than its first batch is written by it, the live state comes
back from it, it ends with the run, and a driver killed with SIGKILL takes
it along, leaving a run that reads ``killed?``. Real clusters and
processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import dask
import psutil
from waiting import until

import daskflow
from daskflow import python_app
from daskflow.client.session import session_of
from daskflow.provenance.plugin import HANDOVER_AFTER
from daskflow.provenance.store import ProvenanceStore, find_run, run_status

HERE = os.path.dirname(os.path.abspath(__file__))


@python_app
def pw_double(x):
    return 2 * x


def _writers(parent: psutil.Process, under=None) -> list[psutil.Process]:
    """The writer processes among ``parent``'s children (of the runs in
    directory ``under``: another test's run may hand over meanwhile)."""
    found = []
    for child in parent.children(recursive=True):
        try:
            if "daskflow.provenance.writer" in " ".join(child.cmdline()) and (
                    under is None or any(f.path.startswith(str(under))
                                         for f in child.open_files())):
                found.append(child)
        except psutil.Error:
            pass
    return found


def test_a_run_longer_than_its_first_batch_is_written_by_a_process(tmp_path):
    others = {p.pid for p in _writers(psutil.Process())}  # of runs still open in this process
    with dask.config.set({"daskflow.run-dir": str(tmp_path / "runinfo")}), \
            daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0") as c, \
            c.as_current():
        assert c.gather([pw_double(i) for i in range(50)]) == [2 * i for i in range(50)]
        time.sleep(HANDOVER_AFTER + 0.5)  # the thread writes first, then hands over to a process
        def ours():
            return [p for p in _writers(psutil.Process(), tmp_path) if p.pid not in others]

        until(ours, "no writer process started", timeout=30)
        (writer,) = ours()
        # background work: the run's own processes come first for the CPU
        assert writer.nice() >= psutil.Process().nice() + 10
        assert c.gather([pw_double(i) for i in range(50, 60)]) == [2 * i for i in range(50, 60)]
        snap = c.sync(c.scheduler.daskflow_workflow, settle=True)  # the live state, sent back
        assert snap["apps"]["pw_double"]["done"] == 60
        session = session_of(c)
    # the client's close waited for the whole run to be written, and the writer to end
    assert not writer.is_running()
    with ProvenanceStore(os.path.join(session.run_dir, "provenance.db"), readonly=True) as store:
        assert [t["state"] for t in store.tasks(app="pw_double")] == ["done"] * 60
        assert store.runs()[0]["status"] == "completed"


def test_a_writer_killed_mid_run_is_logged_and_the_live_state_still_ends(tmp_path, logs):
    """The writer process dies (SIGKILL) while the run goes on: the run's
    calls still run, the plugin logs that what follows is not recorded, and
    the live state the dashboard reads still ends with the run."""
    others = {p.pid for p in _writers(psutil.Process())}
    with dask.config.set({"daskflow.run-dir": str(tmp_path / "runinfo")}), \
            daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0") as c, \
            c.as_current():
        assert c.gather([pw_double(i) for i in range(20)]) == [2 * i for i in range(20)]
        time.sleep(HANDOVER_AFTER + 0.5)
        assert pw_double(20).result(timeout=60) == 40  # an event after the hand-over time

        def ours():
            return [p for p in _writers(psutil.Process(), tmp_path) if p.pid not in others]

        until(ours, "no writer process started", timeout=30)
        (writer,) = ours()
        # background work: the run's own processes come first for the CPU
        assert writer.nice() >= psutil.Process().nice() + 10
        session = session_of(c)
        plugin = c.cluster.scheduler.plugins[f"daskflow-provenance-{session.token}"]
        until(lambda: plugin._writer_ready.is_set() and plugin._local is None,
              "the run was not handed over to the writer process", timeout=30)
        writer.kill()
        gone = f"daskflow: the provenance writer of run {session.run_id} exited with code -9"
        until(lambda: any(r.getMessage().startswith(gone) for r in logs.records),
              lambda: f"not logged: {[r.getMessage() for r in logs.records]}", timeout=30)
        assert c.gather([pw_double(i) for i in range(5)]) == [0, 2, 4, 6, 8]  # the run goes on
        assert plugin.state.status == "running"
    assert plugin.state.status == "completed" and plugin.state.end is not None


KILLED = """\
import os, sys, time, psutil, daskflow
from daskflow import python_app

@python_app
def double(x):
    return 2 * x

print(sum(f.result() for f in [double(i) for i in range(20)]), flush=True)
time.sleep({wait})
writers = [p.pid for p in psutil.Process().children(recursive=True)
           if "daskflow.provenance.writer" in " ".join(p.cmdline())]
print("WRITERS", *writers, flush=True)
time.sleep(600)
"""


def test_a_killed_driver_takes_its_writer_along_and_its_run_reads_killed(tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLED.format(wait=HANDOVER_AFTER + 1.5))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE),
               DASK_DASKFLOW__RUN_DIR=str(tmp_path / "runinfo"))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=env)
    try:
        assert proc.stdout.readline().strip() == "380"
        line = proc.stdout.readline().split()
        assert line[:1] == ["WRITERS"] and len(line) == 2, line
        writer = psutil.Process(int(line[1]))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        until(lambda: not writer.is_running() or writer.status() == psutil.STATUS_ZOMBIE,
              "the writer outlived its driver", timeout=30)
    finally:
        proc.kill()
        proc.wait()
    run_dir = find_run(str(tmp_path / "runinfo"), "latest")
    with ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True) as store:
        (run,) = store.runs()
        assert run_status(run) == "killed?", json.dumps(run, default=str)
        assert [t["state"] for t in store.tasks(app="double")] == ["done"] * 20
