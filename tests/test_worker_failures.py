"""Fail fast, never hang: worker processes that cannot start, or that are
all lost, make the waiting calls raise ``WorkersUnavailable`` quoting the
workers' stderr, within the configured time.

Real driver scripts and real worker processes, broken the way a user's
environment breaks them: a preload module that does not import, a preload
script that exits, one that never returns, worker processes killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

APPS = """\
import time, distributed, daskflow
from daskflow import python_app

@python_app
def add(a, b):
    return a + b

@python_app
def double(x):
    return 2 * x
"""

WAITS = APPS + """\
t0 = time.monotonic()
f = add(1, 2)
g = double(f)
distributed.wait([f, g])  # returns: both futures are done (erred)
print("WAIT", type(f.exception()).__name__, type(g.exception()).__name__)
try:
    daskflow.gather([add(3, 4)])
except daskflow.WorkersUnavailable as e:
    print("GATHER", e.pool)
try:
    g.result()
except daskflow.WorkersUnavailable as e:
    print("SECONDS", time.monotonic() - t0)
    print("MESSAGE", str(e).replace("\\n", " | "))
"""


def _run(source: str, tmp_path, timeout: float = 120, **env):
    script = tmp_path / "wf.py"
    script.write_text(source)
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, str(tmp_path)]),
                DASK_DASKFLOW__LOCAL__N_WORKERS="2",
                DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0", **env)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, env=full, timeout=timeout)


def _lines(proc) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


def test_a_preload_that_does_not_import(tmp_path):
    proc = _run(WAITS, tmp_path, DASK_DISTRIBUTED__WORKER__PRELOAD='["no_such_module_xyz"]')
    assert proc.returncode == 0, proc.stderr
    out = _lines(proc)
    assert out["WAIT"] == "WorkersUnavailable WorkersUnavailable"
    assert out["GATHER"] == "local"
    assert float(out["SECONDS"]) < 30  # every process exited: no need to wait for the timeout
    message = out["MESSAGE"]
    assert "no worker of pool 'local' can run this task: no worker could start" in message
    assert "exited with code 1" in message
    assert "No module named 'no_such_module_xyz'" in message
    # told once, in the error, not in pages of worker tracebacks
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_a_preload_script_that_exits(tmp_path):
    (tmp_path / "bad_preload.py").write_text(
        "import sys\n\ndef dask_setup(worker):\n"
        "    print('site set-up failed: no scratch space', file=sys.stderr)\n"
        "    sys.exit(3)\n")
    proc = _run(WAITS, tmp_path, DASK_DISTRIBUTED__WORKER__PRELOAD='["bad_preload"]')
    assert proc.returncode == 0, proc.stderr
    out = _lines(proc)
    assert out["WAIT"] == "WorkersUnavailable WorkersUnavailable"
    assert float(out["SECONDS"]) < 30
    assert "no worker could start" in out["MESSAGE"]
    assert "site set-up failed: no scratch space" in out["MESSAGE"]


@pytest.mark.slow
def test_a_worker_that_never_joins_hits_the_startup_timeout(tmp_path):
    (tmp_path / "slow_preload.py").write_text(
        "import time\n\ndef dask_setup(worker):\n"
        "    print('waiting for a licence server', flush=True)\n"
        "    time.sleep(3600)\n")
    proc = _run(WAITS, tmp_path, DASK_DISTRIBUTED__WORKER__PRELOAD='["slow_preload"]',
                DASK_DASKFLOW__WORKERS__STARTUP_TIMEOUT="4s")
    assert proc.returncode == 0, proc.stderr
    out = _lines(proc)
    assert out["WAIT"] == "WorkersUnavailable WorkersUnavailable"
    assert 4 <= float(out["SECONDS"]) < 30
    assert "no worker joined within 4 s (daskflow.workers.startup-timeout)" in out["MESSAGE"]
    assert "is still running" in out["MESSAGE"]


@pytest.mark.slow
def test_an_explicit_client_raises_at_once(tmp_path):
    proc = _run(
        "import daskflow\n"
        "try:\n"
        "    daskflow.Client()\n"
        "except daskflow.WorkersUnavailable as e:\n"
        "    print('RAISED', str(e).splitlines()[0])\n",
        tmp_path, DASK_DISTRIBUTED__WORKER__PRELOAD='["no_such_module_xyz"]')
    assert proc.returncode == 0, proc.stderr
    assert _lines(proc)["RAISED"] == "no worker of pool 'local' can run this task: " \
                                     "no worker could start"


@pytest.mark.slow
def test_every_worker_lost_and_none_back(tmp_path):
    """Kill every worker process (Nanny and worker) of a running default:
    calls made after that fail once the lost-timeout has passed."""
    proc = _run(APPS + """\
import psutil, os
assert add(1, 2).result() == 3
nannies = [child for child in psutil.Process().children(recursive=True)
           if "daskflow.sites.nanny_main" in " ".join(child.cmdline())]
for nanny in nannies:
    for process in [*nanny.children(recursive=True), nanny]:  # its worker, then the Nanny
        process.kill()
scheduler = distributed.default_client().cluster.scheduler
while scheduler.workers:  # none may take the next call
    time.sleep(0.05)
t0 = time.monotonic()
f = add(2, 3)
try:
    f.result()
except daskflow.WorkersUnavailable as e:
    print("SECONDS", time.monotonic() - t0)
    print("MESSAGE", str(e).replace("\\n", " | "))
""", tmp_path, DASK_DASKFLOW__WORKERS__LOST_TIMEOUT="3s")
    assert proc.returncode == 0, proc.stderr
    out = _lines(proc)
    assert 2 <= float(out["SECONDS"]) < 30, out
    assert ("every worker was lost and none came back within 3 s "
            "(daskflow.workers.lost-timeout)") in out["MESSAGE"]
    assert "exited with code -9" in out["MESSAGE"]


@pytest.mark.slow
def test_a_local_pool_of_a_profile_that_cannot_start(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "name: broken\nscheduler: {dashboard: 127.0.0.1:0}\npools:\n"
        "  - label: cpu\n    provider: local\n    workers_per_node: 1\n"
        "    scaling: {init_blocks: 1, min_blocks: 1, max_blocks: 1}\n")
    start = time.monotonic()
    proc = _run(
        "import daskflow\n"
        "try:\n"
        "    daskflow.Client(profile='p.yaml')\n"
        "except daskflow.WorkersUnavailable as e:\n"
        "    print('RAISED', str(e).replace('\\n', ' | '))\n",
        tmp_path, DASK_DISTRIBUTED__WORKER__PRELOAD='["no_such_module_xyz"]')
    assert proc.returncode == 0, proc.stderr
    message = _lines(proc)["RAISED"]
    assert "no worker of pool 'cpu' can run this task: no worker could start" in message
    assert "worker 'cpu-0-0'" in message and "no_such_module_xyz" in message
    assert time.monotonic() - start < 60
