"""Retries: per app, run-wide default, and Parsl's cost model."""

from __future__ import annotations

import dask
import pytest
from waiting import until

from daskflow import python_app


def _count(path) -> int:
    with open(path, "a") as f:
        f.write("x")
    with open(path) as f:
        return len(f.read())


@python_app
def fails_until(path, n, kind="runtime"):
    tries = _count(path)
    if tries < n:
        raise (ValueError if kind == "value" else RuntimeError)(f"try {tries}")
    return tries


def test_run_wide_default_from_dask_config(client, tmp_path):
    counter = str(tmp_path / "n")
    with dask.config.set({"daskflow.retries": 2}):
        assert fails_until(counter, 3).result() == 3
    counter2 = str(tmp_path / "m")
    with pytest.raises(RuntimeError, match="try 1"):
        fails_until(counter2, 3).result()  # default 0 again: no retry


def test_app_retries_override_the_default(client, tmp_path):
    @python_app(retries=0)
    def never_retried(path):
        raise RuntimeError(f"try {_count(path)}")

    counter = tmp_path / "n"
    with dask.config.set({"daskflow.retries": 5}):
        with pytest.raises(RuntimeError, match="try 1"):
            never_retried(str(counter)).result()
    assert counter.read_text() == "x"


def costly(exc, task_record):
    """Value errors are expensive (2), others cost 1."""
    return 2 if isinstance(exc, ValueError) else 1


def test_retry_handler_cost_model(client, tmp_path):
    @python_app(retries=2, retry_handler=costly)
    def value_errors(path):
        raise ValueError(f"try {_count(path)}")

    @python_app(retries=2, retry_handler=costly)
    def runtime_errors(path):
        raise RuntimeError(f"try {_count(path)}")

    # cost 2 after the first failure (<= 2: retried), 4 after the second: stop
    with pytest.raises(ValueError, match="try 2"):
        value_errors(str(tmp_path / "v")).result()
    # cost 1, 2, 3: three failures, the third ends it
    with pytest.raises(RuntimeError, match="try 3"):
        runtime_errors(str(tmp_path / "r")).result()


def test_retry_handler_sees_the_task_record(client, tmp_path):
    seen = tmp_path / "records"

    def record(exc, task_record):
        with open(seen, "a") as f:
            f.write(f"{task_record['app_name']} {task_record['fail_count']} "
                    f"{task_record['fail_cost']} {task_record['args']}\n")
        return 1

    @python_app(retries=1, retry_handler=record)
    def always(x):
        raise KeyError(x)

    with pytest.raises(KeyError):
        always(7).result()
    assert seen.read_text().splitlines() == ["always 1 0.0 (7,)", "always 2 1.0 (7,)"]


def test_retry_handler_from_config(client, tmp_path):
    counter = str(tmp_path / "n")
    with dask.config.set({"daskflow.retries": 1,
                          "daskflow.retry-handler": "tests.test_retries.costly"}):
        with pytest.raises(ValueError, match="try 1"):
            fails_until(counter, 5, kind="value").result()  # cost 2 > 1: no retry


def test_a_retry_handler_that_raises_fails_the_call_with_its_exception(client, tmp_path):
    """As in Parsl: no more tries, and the call fails with the handler's
    exception, whose cause is the app's own."""
    def broken(exc, record):
        raise ZeroDivisionError("handler bug")

    @python_app(retries=3, retry_handler=broken)
    def fails(path):
        raise RuntimeError(f"try {_count(path)}")

    counter = tmp_path / "n"
    with pytest.raises(ZeroDivisionError, match="handler bug") as info:
        fails(str(counter)).result()
    assert repr(info.value.__cause__) == "RuntimeError('try 1')"
    assert counter.read_text() == "x"


def explain(exc, record):
    """A handler that replaces the app's exception by its own."""
    raise LookupError(f"{record['func_name']} (task {record['id']}, try {record['try_id']}) "
                      f"failed {record['fail_count']} time(s)")


def test_the_handler_is_asked_without_retries_too(client, tmp_path):
    """Parsl asks the run's handler after every failure, even with retries=0,
    so a handler can replace the exception a call fails with."""
    @python_app
    def fails():
        raise RuntimeError("app error")

    with dask.config.set({"daskflow.retry-handler": "tests.test_retries.explain"}):
        f = fails()
        with pytest.raises(LookupError) as info:
            f.result()
    assert str(info.value) == f"fails (task {f.tid}, try 0) failed 1 time(s)"


def test_bad_retry_handler_option():
    with pytest.raises(TypeError, match="retry_handler must be a function"):
        python_app(lambda: 1, retry_handler="not callable")


def test_worker_loss_does_not_consume_retries(tmp_path):
    """A worker killed mid-task is Dask's business: the task reruns elsewhere
    and the app's own retries (0 here) are untouched."""
    import os
    import signal

    import distributed

    pidfile = tmp_path / "pid"

    @python_app(retries=0)
    def dies_once(path):
        import os
        import time
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
        return "survived"

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as c, c.as_current():
        f = dies_once(str(pidfile))
        until(lambda: pidfile.exists() and pidfile.read_text(),
              "the first try never wrote its pid", timeout=30, interval=0.05)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        assert f.result(timeout=60) == "survived"


def test_a_run_wide_handler_function_the_worker_cannot_load_fails_its_call_only(
        client, tmp_path, monkeypatch):
    """A function (a Parsl Config's retry_handler) travels packed: loaded in
    the task body, so one whose module only the driver has fails the call
    with ArgumentNotLoadable instead of closing the worker."""
    import sys

    from daskflow.errors import ArgumentNotLoadable

    (tmp_path / "driver_only_handler.py").write_text(
        "def cheap(exc, task_record):\n    return 0.5\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers started without it
    import driver_only_handler

    @python_app
    def fails():
        raise RuntimeError("app error")

    try:
        workers = set(client.scheduler_info()["workers"])
        with dask.config.set({"daskflow.retry-handler": driver_only_handler.cheap}):
            f = fails()
            with pytest.raises(ArgumentNotLoadable,
                               match=r"driver_only_handler\.cheap \(the retry handler\)"):
                f.result(timeout=60)
        with dask.config.set({"daskflow.retries": 1, "daskflow.retry-handler": costly}):
            counter = str(tmp_path / "n")
            assert fails_until(counter, 2).result(timeout=60) == 2  # a function
        assert set(client.scheduler_info()["workers"]) == workers  # none was lost
    finally:
        sys.modules.pop("driver_only_handler", None)
