"""What ``parsl.dfk()`` tells a Parsl script about its calls (the task
table, the counts of final states, the run's ``parsl.log``), and the
Parsl names scripts import for errors and logging.

The kernel is process-wide, so the scripts run in fresh interpreters as a
user starts them (``python -m daskflow.parsl script.py``)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from daskflow.errors import UnpicklableArgument
from daskflow.parsl import Config
from daskflow.parsl.errors import ConfigurationError
from daskflow.parsl.executors.base import ParslExecutor
from daskflow.parsl.executors.errors import InvalidResourceSpecification
from daskflow.parsl.process_loggers import wrap_with_logs
from daskflow.parsl.serialize.errors import SerializationError
from daskflow.parsl.translate import translate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0")


def _parsl_code(code: str, tmp_path) -> subprocess.CompletedProcess:
    """Run ``code`` as a Parsl script (``import parsl`` gives daskflow.parsl)."""
    return subprocess.run([sys.executable, "-c", "import daskflow.parsl as p; p.install()\n"
                           + code], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=120)

SCRIPT = '''
import os, stat, threading, time
import parsl
from parsl import python_app
from parsl.config import Config
from parsl.dataflow.states import States
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

parsl.load(Config(executors=[HighThroughputExecutor(
    max_workers_per_node=1, provider=LocalProvider(init_blocks=1, max_blocks=1))]))
dfk = parsl.dfk()

@python_app
def k(x):
    return x

@python_app
def slow(x, path):
    import os, time
    while not os.path.exists(path):
        time.sleep(0.01)
    return x

@python_app
def fails():
    raise ValueError("deliberate")

gate = os.path.join(dfk.run_dir, "gate")
held = slow(1, gate)
assert dfk.tasks[held.tid]["app_fu"] is held, dfk.tasks
assert dfk.tasks[held.tid]["func_name"] == "slow"
open(gate, "w").close()
assert held.result() == 1
assert held.tid not in dfk.tasks, "a finished call leaves the task table"

a = k(2)
b = k(a)
bad = fails()
after = k(bad)
after2 = k(after)
b.result(); after2.exception()
counts = dfk.task_state_counts
assert counts[States.exec_done] == 3, counts
assert counts[States.failed] == 1, counts
assert counts[States.dep_fail] == 2, counts

log = os.path.join(dfk.run_dir, "parsl.log")
dfk.cleanup()
print("mode", oct(stat.S_IMODE(os.stat(log).st_mode)))
print(open(log).read())
'''


def test_task_table_counts_and_the_runs_parsl_log(tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, "-m", "daskflow.parsl", "script.py"], cwd=tmp_path,
                          env=ENV, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mode 0o600" in done.stdout
    lines = done.stdout.splitlines()
    submitted = [line for line in lines if "submitted for App k" in line]
    assert len(submitted) == 4, done.stdout
    tid_a = submitted[0].split("Task ")[1].split()[0]
    tid_b = submitted[1].split("Task ")[1].split()[0]
    assert any(f"Task {tid_b} depends on task {tid_a}" in line for line in lines), done.stdout
    summary = done.stdout[done.stdout.index("Summary of tasks in DFK:"):]
    for state, n in (("exec_done", 3), ("failed", 1), ("dep_fail", 2)):
        assert f"Tasks in state States.{state}: {n}" in summary, summary


def test_logging_off_writes_no_parsl_log(tmp_path):
    code = ("import os, parsl\nfrom parsl.config import Config\n"
            "dfk = parsl.load(Config(initialize_logging=False))\n"
            "print(os.listdir(dfk.run_dir))\ndfk.cleanup()\n")
    done = _parsl_code(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "parsl.log" not in done.stdout


def test_an_executor_written_for_parsl_is_refused_naming_it():
    class ImmediateExecutor(ParslExecutor):
        def submit(self, func, resource_specification, *args, **kwargs):
            raise AssertionError("never called")

    with pytest.raises(ConfigurationError, match="ImmediateExecutor is an executor written "
                                                 "for Parsl.*HighThroughputExecutor"):
        translate(Config(executors=[ImmediateExecutor()]))


def test_wrap_with_logs_passes_results_and_exceptions_through(caplog):
    @wrap_with_logs(target="daskflow.test")
    def fine():
        return 5

    @wrap_with_logs(target="daskflow.test")
    def broken():
        raise RuntimeError("deliberate")

    caplog.set_level(logging.DEBUG, logger="daskflow.test")
    assert fine() == 5
    with pytest.raises(RuntimeError):
        broken()
    assert "Normal ending for fine" in caplog.text
    assert "Exceptional ending for broken" in caplog.text


def test_parsl_error_names_are_daskflow_errors():
    assert SerializationError is UnpicklableArgument
    err = InvalidResourceSpecification({"cpus"}, "cpus is not a resource")
    assert err.invalid_keys == {"cpus"} and str(err) == "cpus is not a resource"


def test_arguments_that_cannot_be_sent_fail_the_future_not_the_call(tmp_path):
    code = ("import parsl\nfrom parsl import python_app\n"
            "from parsl.serialize.errors import SerializationError\n"
            "parsl.load()\n"
            "@python_app\ndef first(x):\n    return next(x)\n"
            "futures = [first(iter([1])), first(x for x in [2]), first([3])]\n"
            "print('kinds', [type(f.exception()).__name__ for f in futures[1:2]])\n"
            "assert isinstance(futures[1].exception(), SerializationError)\n"
            "assert 'argument #0 of app' in str(futures[1].exception())\n"
            "assert futures[0].result() == 1\n"
            "print('others', futures[2].exception())\n"
            "parsl.dfk().cleanup()\n")
    done = _parsl_code(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kinds ['UnpicklableArgument']" in done.stdout


def test_apps_bound_to_a_kernel_built_directly_call_it(tmp_path):
    code = ("import parsl\nfrom parsl.config import Config\n"
            "from parsl.dataflow.dflow import DataFlowKernel, DataFlowKernelLoader\n"
            "dfk = DataFlowKernel(config=Config())\n"
            "@parsl.python_app(data_flow_kernel=dfk)\ndef double(x):\n    return 2 * x\n"
            "assert DataFlowKernelLoader._dfk is None\n"
            "print('results', [f.result() for f in [double(1), *double.map([2, 3])]])\n"
            "assert dfk.tasks == {}\n"
            "dfk.cleanup()\n")
    done = _parsl_code(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "results [2, 4, 6]" in done.stdout


def test_calls_whose_futures_are_dropped_still_run_and_count(tmp_path):
    """As in Parsl: a loop of calls that keeps no future still runs them all
    (Dask alone would forget tasks nobody holds)."""
    code = ("import os, time, parsl\nfrom parsl import python_app\n"
            "from parsl.dataflow.states import States\n"
            "dfk = parsl.load()\n"
            "@python_app\ndef touch(path):\n    import time\n    time.sleep(0.05)\n"
            "    open(path, 'w').close()\n"
            "for i in range(20):\n    touch(os.path.join(os.getcwd(), f'f{i}'))\n"
            "dfk.wait_for_current_tasks()\n"
            "print('files', len([n for n in os.listdir('.') if n.startswith('f')]))\n"
            "print('done', dfk.task_state_counts[States.exec_done])\n"
            "dfk.cleanup()\n")
    done = _parsl_code(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "files 20" in done.stdout and "done 20" in done.stdout, done.stdout


def test_parsls_timeout_helper_interrupts_a_function_running_over():
    import time

    from daskflow.parsl.app.errors import AppTimeout
    from daskflow.parsl.app.python import timeout

    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return "done"

    assert timeout(spin, 5)(0.01) == "done"
    time.sleep(0.05)  # the timer of a finished call is cancelled: nothing is raised here
    with pytest.raises(AppTimeout, match="spin"):
        timeout(spin, 0.1)(10)


def test_an_unknown_resource_key_fails_the_future_as_parsls_executors_do(tmp_path):
    code = ("import parsl\nfrom parsl import python_app\n"
            "from parsl.executors.errors import InvalidResourceSpecification\n"
            "parsl.load()\n"
            "@python_app\ndef double(x, parsl_resource_specification={}):\n    return 2 * x\n"
            "f = double(1, parsl_resource_specification={'cpus': 1})\n"
            "exc = f.exception()\n"
            "assert isinstance(exc, InvalidResourceSpecification), repr(exc)\n"
            "print('keys', exc.invalid_keys, str(exc))\n"
            "print('fine', double(2, parsl_resource_specification={'cores': 1}).result())\n"
            "parsl.dfk().cleanup()\n")
    done = _parsl_code(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "keys {'cpus'} app 'double': unknown resource specification keys ['cpus']" \
        in done.stdout
    assert "fine 4" in done.stdout


def test_logging_off_is_an_option_the_kernel_uses_not_one_it_warns_about():
    assert "Config.initialize_logging" not in translate(Config(initialize_logging=False)).unused
