"""Licence limits: never more than N apps holding a licence at once, across
pools and across two clients attached to the same scheduler (a real local
cluster; concurrency read from the apps' own timestamps)."""

from __future__ import annotations

import time

import dask
import pytest

import daskflow
from daskflow import python_app
from daskflow.errors import UnknownLimit

PROFILE = """
name: licensed
scheduler: {dashboard: 127.0.0.1:0}
limits: {matlab: 2}
pools:
  - label: small
    provider: local
    workers_per_node: 3
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
  - label: big
    provider: local
    workers_per_node: 2
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
"""


@python_app(limits={"matlab": 1})
def solve(seconds):
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


@python_app(limits={"matlab": 2})
def solve_big(seconds):
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


@python_app
def free(seconds):
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


def _most_at_once(spans) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                    key=lambda x: (x[0], x[1]))
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


@pytest.fixture(scope="module")
def licensed(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "licensed.yaml"
    path.write_text(PROFILE)
    with daskflow.Client(profile=str(path), set_as_default=False) as c:
        yield c


def test_a_limit_holds_across_pools_and_clients(licensed):
    with licensed.as_current():
        mine = [solve(0.5) for _ in range(5)]
    with dask.config.set({"daskflow.limits": {"matlab": 2}}), daskflow.Client(
            licensed.scheduler.address, set_as_default=False) as other, other.as_current():
        theirs = [solve(0.5) for _ in range(5)]
        spans = other.gather(theirs)
    spans += licensed.gather(mine)
    assert len(spans) == 10
    assert _most_at_once(spans) == 2  # 5 workers free, the licence lets 2 run


def test_several_leases_per_call_and_unlimited_apps_beside(licensed):
    with licensed.as_current():
        big = [solve_big(0.4) for _ in range(3)]
        small = [solve(0.4) for _ in range(3)]
        others = [free(0.4) for _ in range(4)]
        big_spans, small_spans = licensed.gather(big), licensed.gather(small)
        free_spans = licensed.gather(others)
    # a big call holds both licences: nothing else licensed runs beside it
    for s, e in big_spans:
        assert all(not (s2 < e and s < e2) for s2, e2 in small_spans + big_spans
                   if (s2, e2) != (s, e))
    assert _most_at_once(small_spans) <= 2
    assert _most_at_once(free_spans + small_spans) > 2  # unlicensed apps are not held back


def test_undeclared_and_impossible_limits_fail_at_call_time(licensed):
    @python_app(limits={"ansys": 1})
    def other():
        return 1

    @python_app(limits={"matlab": 3})
    def greedy():
        return 1

    with licensed.as_current():
        with pytest.raises(UnknownLimit, match="limit 'ansys', which is not declared"):
            other()
        with pytest.raises(ValueError, match="allows 2 at once: it could never run"):
            greedy()
    with pytest.raises(TypeError, match="limits must map licence names to counts"):
        python_app(limits={"matlab": 0})(lambda: 1)
