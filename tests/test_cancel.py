"""``future.cancel()`` stops the call's work on a real cluster: a bash
command's process group is killed, a Python app is interrupted, a chunk's
member is cancelled alone, dependents fail with DependencyError, and
provenance records ``cancelled``."""

from __future__ import annotations

import concurrent.futures
import os
import time

import dask
import pytest
from waiting import until

import daskflow
from daskflow import AppCancelled, DependencyError, bash_app, python_app
from daskflow.provenance.store import ProvenanceStore, find_run


@bash_app
def sleeper(pidfile, seconds=60):
    # a child in the background and one in the foreground: the whole group must go
    return f"sleep {seconds} & echo $! > {pidfile}; sleep {seconds}"


@python_app
def beating(path, walltime=None):
    """Appends to ``path`` every 20 ms, for ever (a Python loop: interruptible)."""
    import time

    while True:
        with open(path, "a") as f:
            f.write(".")
        time.sleep(0.02)


@python_app
def ident(x):
    return x


@bash_app
def stamp(log, i, seconds):
    return f"echo start {i} >> {log}; sleep {seconds}; echo end {i} >> {log}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def _size(path) -> int:
    return path.stat().st_size if path.exists() else 0


def _until_running(path, what: str) -> None:
    until(lambda: _size(path) > 0, f"{what} never started", timeout=60, interval=0.02)


def test_a_running_bash_app_has_its_whole_process_group_killed(client, tmp_path):
    pidfile = tmp_path / "pid"
    f = sleeper(str(pidfile))
    _until_running(pidfile, "the command")
    child = int(pidfile.read_text())
    assert f.cancel() is True
    err = f.exception(timeout=20)
    assert isinstance(err, AppCancelled) and isinstance(err, concurrent.futures.CancelledError)
    assert f.cancelled() and f.done()
    assert "sleeper" in str(err) and f"tid {f.tid}" in str(err)
    with pytest.raises(AppCancelled):
        f.result()
    until(lambda: not _alive(child), "the command's background child outlived the cancel",
          timeout=10, interval=0.05)
    assert ident(1).result(timeout=30) == 1  # its worker is free again


@pytest.mark.parametrize("walltime", [None, 120], ids=["in-task-thread", "with-walltime"])
def test_a_running_python_app_is_interrupted(client, tmp_path, walltime):
    beats = tmp_path / "beats"
    f = beating(str(beats), walltime=walltime)
    _until_running(beats, "the app")
    assert f.cancel() is True
    assert isinstance(f.exception(timeout=20), AppCancelled)
    time.sleep(0.3)  # an interrupt arrives at the loop's next bytecode
    seen = _size(beats)
    time.sleep(0.5)
    assert _size(beats) == seen, "the app kept running after its cancel"
    for _ in range(4):  # both single-thread workers take calls again
        assert ident(2).result(timeout=30) == 2


def test_dependents_fail_with_dependency_error_naming_the_cancelled_call(client, tmp_path):
    pidfile = tmp_path / "pid"
    up = sleeper(str(pidfile))
    down = ident(up)
    further = ident(down)
    _until_running(pidfile, "the command")
    up.cancel()
    err = down.exception(timeout=20)
    assert isinstance(err, DependencyError)
    assert "sleeper" in str(err) and f"tid {up.tid}" in str(err)
    assert isinstance(err.__cause__, AppCancelled)
    assert isinstance(further.exception(timeout=20), DependencyError)
    assert not down.cancelled()  # it failed because of a cancel; it was not cancelled


def test_a_call_waiting_for_its_inputs_never_runs(client, tmp_path):
    pidfile = tmp_path / "pid"
    up = sleeper(str(pidfile), seconds=2)
    log = tmp_path / "log"
    down = stamp(str(log), up, 0)
    assert down.cancel() is True
    assert isinstance(down.exception(timeout=10), AppCancelled)
    assert up.result(timeout=30) == 0  # what it waited for goes on
    time.sleep(0.5)
    assert not log.exists()


def test_cancelling_a_finished_call_changes_nothing(client):
    f = ident(5)
    assert f.result(timeout=30) == 5
    assert f.cancel() is False
    assert f.result() == 5 and not f.cancelled() and f.status == "finished"


def test_a_member_of_a_chunk_is_cancelled_alone(client, tmp_path):
    """Member 0 is killed while it runs, member 2 before it starts; 1 and 3 finish."""
    log = tmp_path / "log"
    fs = stamp.map([str(log)] * 4, range(4), [30, 0.2, 0.2, 0.2], chunksize=4)
    until(lambda: log.exists() and "start 0" in log.read_text(), "member 0 never started",
          timeout=60, interval=0.02)
    assert fs[2].cancel() is True
    assert fs[0].cancel() is True
    assert fs[1].result(timeout=30) == 0 and fs[3].result(timeout=30) == 0
    assert isinstance(fs[0].exception(), AppCancelled) and fs[0].cancelled()
    assert isinstance(fs[2].exception(), AppCancelled) and fs[2].cancelled()
    lines = log.read_text().split("\n")
    assert "start 2" not in lines and "end 0" not in lines
    assert "end 1" in lines and "end 3" in lines


def test_a_dependent_of_a_cancelled_member_fails_with_dependency_error(client, tmp_path):
    log = tmp_path / "log"
    fs = stamp.map([str(log)] * 2, range(2), [30, 0.1], chunksize=2)
    down = ident(fs[0])
    until(lambda: log.exists(), "the chunk never started", timeout=60, interval=0.02)
    fs[0].cancel()
    err = down.exception(timeout=30)
    assert isinstance(err, DependencyError) and f"tid {fs[0].tid}" in str(err)
    assert fs[1].result(timeout=30) == 0


def test_provenance_records_cancelled_calls(tmp_path):
    with dask.config.set({"daskflow.run-dir": str(tmp_path / "runinfo")}), \
            daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0") as c, \
            c.as_current():
        pidfile = tmp_path / "pid"
        plain = sleeper(str(pidfile))
        down = ident(plain)
        log = tmp_path / "log"
        members = stamp.map([str(log)] * 2, range(2), [0.1, 0.1], chunksize=2)
        _until_running(pidfile, "the command")
        plain.cancel()
        members[1].cancel()
        down.exception(timeout=20)
        members[0].result(timeout=30)
        members[1].exception(timeout=30)
        run_dir = find_run(str(tmp_path / "runinfo"), "latest")
    with ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True) as store:
        states = {t["key"]: t for t in store.tasks()}
        assert states[plain.key]["state"] == "cancelled"
        assert "AppCancelled" in states[plain.key]["exception"]
        assert states[down.key]["state"] == "failed"
        assert states[f"{members[1].key}[1]"]["state"] == "cancelled"
        assert states[f"{members[0].key}[0]"]["state"] == "done"


def test_a_plain_script_cancels_a_running_call(run_script, tmp_path):
    """As a user runs it: ``python script.py``, no ``__main__`` guard."""
    done = run_script(f"""
import os, time
from daskflow import bash_app, python_app

@bash_app
def slow(pidfile):
    return "echo $$ > " + pidfile + "; sleep 60"

@python_app
def after(x):
    return x

f = slow({str(tmp_path / 'pid')!r})
g = after(f)
while not os.path.exists({str(tmp_path / 'pid')!r}) or not open({str(tmp_path / 'pid')!r}).read():
    time.sleep(0.02)
started = time.time()
print("cancelled:", f.cancel())
print("f:", type(f.exception()).__name__, f.cancelled())
print("g:", type(g.exception()).__name__)
print("seconds:", round(time.time() - started))
""", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cancelled: True" in done.stdout
    assert "f: AppCancelled True" in done.stdout
    assert "g: DependencyError" in done.stdout
    assert "seconds: 0" in done.stdout or "seconds: 1" in done.stdout
    pid = int((tmp_path / "pid").read_text())
    assert not _alive(pid)


def test_progress_counts_a_cancelled_call_as_cancelled(client, tmp_path):
    from daskflow.client.notebook import ProgressTracker

    pidfile = tmp_path / "pid"
    f, g = sleeper(str(pidfile)), ident(3)
    tracker = ProgressTracker([f, g])
    _until_running(pidfile, "the command")
    f.cancel()
    assert tracker.finished.wait(30)
    snap = tracker.snapshot()
    assert snap["sleeper"]["cancelled"] == 1 and snap["sleeper"]["failed"] == 0
    assert snap["ident"]["done"] == 1
