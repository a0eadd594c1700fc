"""Parsl scripts run unchanged on daskflow: ``python -m daskflow.parsl`` and
``daskflow run --parsl`` make ``import parsl`` give ``daskflow.parsl``.

Each script is a real Parsl script with no ``__main__`` guard, run in a
fresh interpreter with real worker processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DASKFLOW = os.path.join(os.path.dirname(sys.executable), "daskflow")

WORKFLOW = """\
import os
import shutil
import sys

import parsl
from parsl.app.app import python_app, bash_app, join_app
from parsl.app.errors import BashExitFailure
from parsl.config import Config
from parsl.dataflow.errors import DependencyError
from parsl.data_provider.files import File
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

config = Config(executors=[HighThroughputExecutor(
    label="htex_local", cores_per_worker=1, max_workers_per_node=2,
    provider=LocalProvider(init_blocks=1, max_blocks=1))])
parsl.load(config)

@python_app
def square(x):
    return x * x

@python_app
def total(inputs=()):
    return sum(inputs)

@bash_app
def write(value, outputs=()):
    return f"echo {value} > {outputs[0]}"

@bash_app
def double(inputs=(), outputs=(), stdout=None):
    return f"echo $(( $(cat {inputs[0]}) * 2 )) | tee {outputs[0]}"

here = os.getcwd()
squares = [square(i) for i in range(5)]
t = total(inputs=squares)
w = write(t, outputs=[File(os.path.join(here, "total.txt"))])
d = double(inputs=[w.outputs[0]], outputs=[File(os.path.join(here, "double.txt"))],
           stdout=os.path.join(here, "double.out"))
doubled = d.outputs[0].result()
print("RESULT", t.result(), d.result(), open(doubled.filepath).read().strip(),
      open("double.out").read().strip(), sys.argv[1:])

@join_app
def fib(n):
    if n < 2:
        return square(n)
    return total(inputs=[fib(n - 1), fib(n - 2)])

@bash_app
def fail():
    return "exit 3"

try:
    total(inputs=[fail()]).result()
except DependencyError as e:  # Parsl's names catch daskflow's errors
    print("JOIN", fib(7).result(), isinstance(e.cause, BashExitFailure), e.cause.exitcode)
parsl.dfk().cleanup()
"""
EXPECTED = "RESULT 30 0 60 60 ['a', 'b']"

PINNING = """\
import parsl
from parsl import python_app
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

def htex(label):
    return HighThroughputExecutor(label=label, max_workers_per_node=1,
                                  provider=LocalProvider(init_blocks=1, max_blocks=1))

@python_app(executors=["small-pool"])
def on_small():
    from distributed import get_worker
    return get_worker().name

@python_app(executors=["big"])
def on_big(previous):
    from distributed import get_worker
    return previous, get_worker().name

with parsl.load(Config(executors=[htex("small-pool"), htex("big")], exit_mode="wait")):
    names = [on_big(on_small()) for _ in range(4)]
    print("POOLS", sorted({(a.split("-")[0], b.split("-")[0]) for a, b in
                           (f.result() for f in names)}))
print("UNLOADED", parsl.DataFlowKernelLoader._dfk is None)
"""


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=ROOT, DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0")


def _run(args, cwd, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=_env(),
                          timeout=timeout)


def _without_shutdown_noise(stderr: str) -> str:
    """stderr without distributed's own record of a worker stream closed
    while the cluster shuts down (an INFO line with a CommClosedError
    traceback, logged now and then by the scheduler, not by the script)."""
    kept, skipping = [], False
    for line in stderr.splitlines():
        if "distributed.batched - INFO - Batched Comm Closed" in line:
            skipping = True
        elif line[:4].isdigit():  # the next log record
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def _ok(proc, *expected: str) -> None:
    assert proc.returncode == 0, proc.stderr
    for line in expected:
        assert line in proc.stdout.splitlines(), (proc.stdout, proc.stderr)
    assert "Traceback" not in _without_shutdown_noise(proc.stderr), proc.stderr


def test_python_dash_m_daskflow_parsl(tmp_path):
    (tmp_path / "wf.py").write_text(WORKFLOW)
    _ok(_run([sys.executable, "-m", "daskflow.parsl", "wf.py", "a", "b"], tmp_path), EXPECTED,
        "JOIN 13 True 3")


@pytest.mark.slow
def test_daskflow_run_parsl(tmp_path):
    (tmp_path / "wf.py").write_text(WORKFLOW)
    proc = _run([DASKFLOW, "run", "--parsl", "wf.py", "a", "b"], tmp_path)
    # the script succeeded; the exit code says that a task of its run failed (fail())
    assert proc.returncode == 1, proc.stderr
    for line in (EXPECTED, "JOIN 13 True 3"):
        assert line in proc.stdout.splitlines(), (proc.stdout, proc.stderr)
    assert "Traceback" not in _without_shutdown_noise(proc.stderr), proc.stderr
    # daskflow run watched the run that parsl.load started
    assert "Summary of run" in proc.stderr and "fail " in proc.stderr, proc.stderr


def test_without_the_flag_import_parsl_is_not_daskflows(tmp_path):
    (tmp_path / "wf.py").write_text(WORKFLOW)
    proc = _run([DASKFLOW, "run", "wf.py"], tmp_path)
    assert proc.returncode == 1
    assert "No module named 'parsl'" in proc.stderr


@pytest.mark.slow
def test_two_executors_pin_apps_by_label(tmp_path):
    (tmp_path / "wf.py").write_text(PINNING)
    proc = _run([sys.executable, "-m", "daskflow.parsl", "wf.py"], tmp_path)
    # a label that is no identifier ("small-pool") still pins: its pool is small_pool
    _ok(proc, "POOLS [('small_pool', 'big')]")
    assert "UNLOADED True" in proc.stdout.splitlines()


def test_daskflow_run_parsl_refuses_when_the_real_parsl_is_imported(tmp_path):
    # a module named parsl imported before the script: as the real Parsl would be
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, types\nsys.modules['parsl'] = types.ModuleType('parsl')\n")
    (tmp_path / "wf.py").write_text(WORKFLOW)
    env = dict(_env(), PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    for args in ([DASKFLOW, "run", "--parsl", "wf.py"],
                 [sys.executable, "-m", "daskflow.parsl", "wf.py"]):
        proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=120)
        assert proc.returncode != 0, proc.stderr
        assert "the real Parsl is already imported in this process" in proc.stderr, proc.stderr


SLURM = """\
import parsl
from parsl import bash_app
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import SlurmProvider

config = Config(executors=[HighThroughputExecutor(
    label="slurm_htex", max_workers_per_node=1,
    provider=SlurmProvider(partition="debug", cores_per_node=1, mem_per_node=1, exclusive=False,
                           init_blocks=1, max_blocks=1, walltime="00:05:00",
                           worker_init="export FROM_INIT=yes"))])

@bash_app
def env(stdout=None):
    return "echo $FROM_INIT $SLURM_JOB_ID"

with parsl.load(config):
    env(stdout="env.out").result()
    init, job = open("env.out").read().split()
    print("ENV", init, job.isdigit())
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("sbatch") is None or subprocess.run(
    ["scontrol", "ping"], capture_output=True).returncode != 0,
    reason="Slurm is not running here (scripts/start-slurm.sh starts it, as root)")
def test_a_slurm_provider_runs_apps_in_a_slurm_job(tmp_path):
    """partition, cores and memory per node, walltime and worker_init reach the job."""
    (tmp_path / "wf.py").write_text(SLURM)
    proc = _run([sys.executable, "-m", "daskflow.parsl", "wf.py"], tmp_path)
    # (not _ok: distributed may log a closed comm while the job's worker leaves)
    assert proc.returncode == 0, proc.stderr
    assert "ENV yes True" in proc.stdout.splitlines(), (proc.stdout, proc.stderr)

