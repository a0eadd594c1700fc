"""No orphans: whatever way the driver ends (normal exit, an exception,
Ctrl-C, SIGKILL), no process it started (scheduler, nannies, workers) of the
embedded default or of a profile's local pools survives it by more than
about 10 s.

The processes are found by the driver's process tree (psutil), never by
name, and are checked by pid and start time (a pid may be reused)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from waiting import until

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

START = """\
import sys, time
import daskflow
from daskflow import python_app

@python_app
def add(a, b):
    return a + b

@python_app
def nap(seconds):
    import time
    time.sleep(seconds)

if len(sys.argv) > 1:
    daskflow.Client(profile=sys.argv[1], set_as_default=True)
assert add(1, 2).result() == 3
print("READY", flush=True)
"""

PROFILE = """\
name: two-local-pools
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: cpu
    provider: local
    workers_per_node: 2
    scaling: {strategy: none, init_blocks: 1}
  - label: burst
    provider: local
    workers_per_node: 1
    scaling: {strategy: simple, init_blocks: 1, min_blocks: 0, max_blocks: 2}
"""


def _start(tmp_path, tail: str, *args: str) -> subprocess.Popen:
    script = tmp_path / "wf.py"
    script.write_text(START + tail)
    env = dict(os.environ, PYTHONPATH=ROOT, DASK_DASKFLOW__LOCAL__N_WORKERS="2",
               DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0")
    return subprocess.Popen([sys.executable, str(script), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tree_when_ready(proc: subprocess.Popen, at_least: int) -> list[psutil.Process]:
    """The driver's descendants once it printed READY and they all exist."""
    line = proc.stdout.readline()
    assert line.strip() == "READY", (line, proc.stderr.read() if proc.poll() is not None else "")
    tree: list[psutil.Process] = []

    def grown() -> bool:
        # every Nanny process has its worker process by now (the call ran)
        tree[:] = psutil.Process(proc.pid).children(recursive=True)
        return len(tree) >= at_least

    until(grown, lambda: f"the driver never had {at_least} descendants: {_describe(tree)}",
          timeout=30, interval=0.05)
    return tree


def _alive(tree: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _describe(processes) -> list[str]:
    out = []
    for p in processes:
        try:
            out.append(f"{p.pid}: {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return out


def _reap(processes) -> None:
    for p in processes:
        try:
            p.kill()
        except psutil.Error:
            pass


def _check_gone(tree, within: float = 10.0):
    try:
        until(lambda: not _alive(tree),
              lambda: f"processes outlived the driver: {_describe(_alive(tree))}",
              timeout=within, interval=0.1)
    finally:
        _reap(_alive(tree))


def _kill_when_ready(proc: subprocess.Popen, at_least: int) -> None:
    try:
        tree = _tree_when_ready(proc, at_least)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.communicate()
    _check_gone(tree)


def test_driver_killed_with_sigkill(tmp_path):
    # 2 x (nanny process + worker process)
    _kill_when_ready(_start(tmp_path, "time.sleep(600)\n"), at_least=4)


@pytest.mark.slow
@pytest.mark.parametrize("ending, code", [("pass\n", 0), ("raise SystemExit(3)\n", 3),
                                          ("raise ValueError('the script failed')\n", 1)])
def test_driver_ends_normally_or_raises(tmp_path, ending, code):
    proc = _start(tmp_path, "time.sleep(1)\n" + ending)
    try:
        tree = _tree_when_ready(proc, at_least=4)
        proc.wait(60)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == code, err
    _check_gone(tree)


@pytest.mark.slow
def test_driver_interrupted_with_ctrl_c(tmp_path):
    """SIGINT (what Ctrl-C sends) while an app runs: KeyboardInterrupt in the
    driver, whose exit closes the cluster."""
    proc = _start(tmp_path, "nap(600).result()\n")
    try:
        tree = _tree_when_ready(proc, at_least=4)
        time.sleep(1)  # the nap is running
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(30)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err, err
    _check_gone(tree)


@pytest.mark.slow
def test_driver_of_local_pools_killed_with_sigkill(tmp_path):
    (tmp_path / "two.yaml").write_text(PROFILE)
    # 3 workers of two pools
    _kill_when_ready(_start(tmp_path, "time.sleep(600)\n", "two.yaml"), at_least=6)
