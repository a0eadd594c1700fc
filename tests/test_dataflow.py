"""Dataflow: futures anywhere in the arguments are dependencies resolved by
the scheduler, data moves worker to worker, and failures propagate as
DependencyError naming the failed upstream task."""

from __future__ import annotations

import os

import distributed
import pytest
from waiting import until

from daskflow import DependencyError, python_app
from daskflow.errors import DaskflowError


@python_app
def value(x):
    return x


@python_app
def total(*args, **kwargs):
    """Sum every number found in nested arguments."""

    def flat(o):
        if isinstance(o, dict):
            return sum(flat(v) for v in o.values())
        if isinstance(o, (list, tuple)):
            return sum(flat(v) for v in o)
        return o

    return flat(args) + flat(kwargs)


@python_app
def fail(message="boom"):
    raise ValueError(message)


def test_futures_anywhere_are_dependencies(client):
    a, b, c, d, e = (value(i) for i in (1, 2, 3, 4, 5))
    f = total(a, [b, (c,)], key={"nested": [d]}, inputs=[e])
    assert f.result() == 15


def test_chain_of_dependencies(client):
    f = value(0)
    for _ in range(20):
        f = total(f, 1)
    assert f.result() == 20


class DriverRefuses:
    """Unpickles anywhere but in the process that made the test (the driver)."""

    driver_pid = os.getpid()

    def __init__(self, n):
        self.n = n

    def __setstate__(self, state):
        if os.getpid() == DriverRefuses.driver_pid:
            raise RuntimeError("this object passed through the driver")
        self.__dict__.update(state)


def test_data_moves_worker_to_worker_not_through_the_driver(client):
    @python_app
    def make(n):
        return DriverRefuses(n)

    @python_app
    def use(obj):
        return obj.n * 2

    workers = list(client.scheduler_info()["workers"])
    assert len(workers) == 2
    # the producer and the consumer on different workers: the value must travel
    producer = client.submit(lambda n: DriverRefuses(n), 21, workers=[workers[0]], pure=False)
    consumer = use(producer)
    assert consumer.result() == 42
    assert use(make(5)).result() == 10


@python_app
def ran_marker(path, upstream):
    open(path, "w").close()
    return "ran"


def test_failed_dependency_raises_dependency_error(client, tmp_path):
    marker = tmp_path / "ran"
    up = fail("disk full")
    down = ran_marker(str(marker), up)
    with pytest.raises(DependencyError) as info:
        down.result()
    err = info.value
    assert err.app_name == "ran_marker" and err.tid == down.tid
    assert err.upstream_app == "fail" and err.upstream_tid == up.tid
    assert isinstance(err.cause, ValueError) and str(err.cause) == "disk full"
    assert f"'fail' (tid {up.tid})" in str(err) and "disk full" in str(err)
    assert not marker.exists()  # the dependent never ran
    # the upstream future still raises its own exception
    with pytest.raises(ValueError, match="disk full"):
        up.result()
    assert isinstance(down.exception(), DependencyError)
    assert isinstance(up.exception(), ValueError)
    assert isinstance(err, DaskflowError)


def test_dependency_error_names_the_root_cause_across_a_chain(client):
    up = fail("root cause")
    mid = total(up, 1)
    last = total(mid, 1)
    with pytest.raises(DependencyError) as info:
        last.result()
    assert info.value.upstream_tid == up.tid
    assert info.value.tid == last.tid


def test_dependency_error_from_inputs_and_nested(client):
    up = fail()
    with pytest.raises(DependencyError, match="'fail'"):
        total(inputs=[up]).result()
    with pytest.raises(DependencyError, match="'fail'"):
        total({"a": [1, (up,)]}).result()


def test_failed_plain_dask_dependency(client):
    def raw_fail():
        raise KeyError("raw")

    raw = client.submit(raw_fail, pure=False)
    with pytest.raises(KeyError):
        value(raw).result()


def test_unpicklable_app_exception_arrives_as_remote_error(client):
    @python_app
    def raises_unpicklable():
        import threading

        class Bad(Exception):
            def __init__(self):
                super().__init__("with a lock")
                self.lock = threading.Lock()

        raise Bad()

    from daskflow.errors import RemoteError

    f = raises_unpicklable()
    with pytest.raises(RemoteError, match="Bad.*with a lock"):
        f.result()
    with pytest.raises(DependencyError, match="raises_unpicklable"):
        value(f).result()


def test_killed_worker_upstream_is_a_dependency_error():
    """A task that kills its worker fails with KilledWorker (allowed-failures
    0 here); its dependents raise DependencyError naming it."""
    import dask

    @python_app
    def crash():
        os._exit(1)

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1,
                                           dashboard_address=":0")
    with cluster, distributed.Client(cluster, set_as_default=False) as c2, c2.as_current():
        up = crash()
        down = value(up)
        with pytest.raises(distributed.scheduler.KilledWorker):
            up.result(timeout=60)
        with pytest.raises(DependencyError, match="'crash'"):
            down.result(timeout=60)


def test_app_survives_its_worker_being_killed(tmp_path):
    """kill -9 of the worker running an app: Dask reruns it elsewhere and the
    app's future still gets the right result."""
    import signal

    pidfile = tmp_path / "pid"

    @python_app
    def first_try_dies(path, x):
        import os
        import time
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)  # killed here
        return x * 2

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as c, c.as_current():
        f = first_try_dies(str(pidfile), 21)
        downstream = value(f)
        until(lambda: pidfile.exists() and pidfile.read_text(),
              "the first try never wrote its pid", timeout=30, interval=0.05)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        assert f.result(timeout=60) == 42
        assert downstream.result(timeout=60) == 42
