"""join apps: the function runs in a task, returns futures, and its own
future resolves to their results; recursion does not deadlock."""

from __future__ import annotations

import distributed
import pytest

import daskflow
from daskflow import DependencyError, JoinError, join_app, python_app


@python_app
def add(*xs):
    return sum(xs)


@python_app
def boom():
    raise ValueError("inner failure")


@join_app
def fibonacci(n):
    if n < 2:
        return add(n)
    return add(fibonacci(n - 1), fibonacci(n - 2))


@join_app
def fan(n):
    return [add(i, 1) for i in range(n)]


def test_join_returns_one_future(client):
    f = fibonacci(5)
    assert isinstance(f, daskflow.AppFuture)
    assert f.result(timeout=60) == 5


def test_join_returns_a_list(client):
    assert fan(4).result(timeout=60) == [1, 2, 3, 4]


def test_recursive_fibonacci_depth_10_on_single_threaded_workers():
    """Every worker has one thread: a join that held its thread while waiting
    would deadlock here."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as c, c.as_current():
        assert fibonacci(10).result(timeout=240) == 55


def test_join_result_is_a_dependency(client):
    assert add(fibonacci(6), 100).result(timeout=60) == 108


def test_inner_tids_hang_under_the_join(client):
    @join_app
    def record_tid():
        return add(1)

    f = record_tid()
    assert f.result(timeout=60) == 1


def test_non_future_return_is_a_join_error(client):
    @join_app
    def returns_number():
        return 42

    f = returns_number()
    with pytest.raises(JoinError, match=r"join app 'returns_number' \(tid \d+\).*must return "
                                        r"a future or a list of futures.*int: 42"):
        f.result(timeout=60)


def test_failed_inner_future_is_a_join_error(client):
    @join_app
    def wraps_failure():
        return [add(1), boom()]

    with pytest.raises(JoinError) as info:
        wraps_failure().result(timeout=60)
    err = info.value
    assert "1 of the 2 futures it returned failed" in str(err)
    (app, tid, exc), = err.failures
    assert app == "boom" and isinstance(exc, ValueError)
    assert isinstance(tid, str) and tid.startswith(f"{err.tid}.")


def test_failed_join_argument_is_a_dependency_error(client):
    with pytest.raises(DependencyError, match="'boom'"):
        fibonacci(boom()).result(timeout=60)


def test_join_can_use_chunked_map(client):
    @join_app
    def mapped(n):
        return add.map(range(n), chunksize=3)

    assert mapped(7).result(timeout=60) == list(range(7))


def test_join_walltime_bounds_the_wait(client):
    from daskflow import AppTimeout

    @python_app
    def slow():
        import time
        time.sleep(3)
        return 1

    @join_app(walltime=0.5)
    def impatient():
        return slow()

    with pytest.raises(AppTimeout, match="impatient"):
        impatient().result(timeout=30)
