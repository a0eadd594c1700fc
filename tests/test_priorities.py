"""Priorities: ``priority=`` on the decorator and per call, and Parsl's
``parsl_resource_specification={"priority": p}`` (lower first), become Dask's
task priority, so that on a busy cluster a more urgent call overtakes calls
queued before it. A real one-worker, one-thread cluster."""

from __future__ import annotations

import os

import pytest
from waiting import until

import daskflow
from daskflow import python_app

QUEUED = 8
# Dask gives the first calls of a kind of task straight to the busy worker
# (too few yet to be queued as root tasks: twice the worker's one thread);
# the others wait on the scheduler, which hands them out by priority
AHEAD = 2


@python_app(batch=False)
def hold_until(path):
    """Keep the only worker thread busy until ``path`` exists."""
    import os
    import time

    open(path + ".held", "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return time.monotonic()


@python_app(batch=False)
def started(label):
    import time

    return label, time.monotonic()


@python_app(priority=5)
def urgent(x):
    return x


@python_app
def ranked(priority):
    return priority


@pytest.fixture(scope="module")
def one_worker(run_records):
    with daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0",
                         set_as_default=False) as c, c.as_current():
        yield c


def _known(dask_scheduler, keys) -> bool:
    return all(key in dask_scheduler.tasks for key in keys)


def _order(client, tmp_path, low: dict, high: dict) -> list[str]:
    """Labels in the order their calls ran: ``QUEUED`` calls with keywords
    ``low``, then one with ``high``, all queued behind a busy worker."""
    gate = str(tmp_path / "go")
    blocker = hold_until(gate)
    until(lambda: os.path.exists(gate + ".held"), "the blocker never ran", timeout=60)
    lows = [started(f"low{i}", **low) for i in range(QUEUED)]
    top = started("high", **high)
    keys = [f.key for f in lows + [top]]
    until(lambda: client.run_on_scheduler(_known, keys=keys), "the calls never reached the "
          "scheduler", timeout=60)
    open(gate, "w").close()
    blocker.result(timeout=60)
    runs = client.gather(lows + [top])
    return [label for label, _ in sorted(runs, key=lambda run: run[1])]


def test_a_high_priority_call_overtakes_queued_low_priority_ones(one_worker, tmp_path):
    order = _order(one_worker, tmp_path, {}, {"priority": 10})
    assert order.index("high") <= AHEAD, order


def test_without_priorities_calls_run_in_the_order_they_were_made(one_worker, tmp_path):
    order = _order(one_worker, tmp_path, {}, {})
    assert order[-1] == "high", order


def test_parsl_priorities_lower_first(one_worker, tmp_path):
    order = _order(one_worker, tmp_path, {"parsl_resource_specification": {"priority": 9}},
                   {"parsl_resource_specification": {"priority": 1}})
    assert order.index("high") <= AHEAD, order


def test_the_decorators_priority_goes_with_packed_calls_too(one_worker):
    fs = [urgent(i) for i in range(200)]
    assert one_worker.gather(fs) == list(range(200))
    keys = sorted({f.key for f in fs})

    def priorities(dask_scheduler, keys):
        return [dask_scheduler.tasks[k].priority[0] for k in keys if k in dask_scheduler.tasks]

    found = one_worker.run_on_scheduler(priorities, keys=keys)
    assert found and set(found) == {-5}, found  # distributed keeps -priority first


def test_a_functions_own_priority_parameter_stays_its_own(one_worker):
    future = ranked(priority="high")  # not a number: the function's own argument
    assert future.result(timeout=30) == "high"

    def priority_of(dask_scheduler, key):
        ts = dask_scheduler.tasks.get(key)
        return None if ts is None else ts.priority[0]

    assert one_worker.run_on_scheduler(priority_of, key=future.key) in (0, None)


@pytest.mark.parametrize("value", ["high", float("nan"), True])
def test_a_bad_priority_is_named(one_worker, value):
    with pytest.raises(ValueError, match="app 'started': priority must be a finite number"):
        started("x", priority=value)
    with pytest.raises(ValueError, match="parsl_resource_specification's priority"):
        started("x", parsl_resource_specification={"priority": value})


def test_none_is_no_priority(one_worker):
    assert started("x", priority=None).result(timeout=30)[0] == "x"


def test_a_bad_decorator_priority_is_named():
    with pytest.raises(ValueError, match="app 'f': priority must be a finite number"):
        @python_app(priority="soon")
        def f():
            pass
