"""Data crossing pools that cannot reach each other (``reachable_from``) is
relayed through the scheduler, never fetched worker to worker.

Both pools run on this machine, so they could in fact reach each other:
the tests check the routes the data took from the workers' own transfer
logs, with a control profile (no restriction) showing that those logs do
see direct transfers."""

from __future__ import annotations

import os

import pytest

import daskflow
from daskflow import python_app
from daskflow.errors import DependencyError, UnroutableCall
from daskflow.provenance.store import ProvenanceStore

PROFILE = """
name: split
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: site_a
    provider: local
    workers_per_node: 1
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
    reachable_from: [site_a]
  - label: site_b
    provider: local
    workers_per_node: 1
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
    reachable_from: [site_b]
"""


def make(n):
    if n < 0:
        raise ValueError("negative size")
    return bytes(n)


def size(data):
    return len(data)


make_a = python_app(executors=["site_a"])(make)
size_b = python_app(executors=["site_b"])(size)
size_anywhere = python_app(size)


def _incoming(dask_worker):
    return [t["who"] for t in dask_worker.transfer_incoming_log]


def _transfers(c) -> dict[str, list[str]]:
    """Worker name -> addresses it fetched data from, directly."""
    by_address = c.run(_incoming)
    names = {a: w["name"] for a, w in c.scheduler_info()["workers"].items()}
    return {names[a]: who for a, who in by_address.items()}


def _start(tmp_path, text):
    path = tmp_path / "split.yaml"
    path.write_text(text)
    return daskflow.Client(profile=str(path), set_as_default=False)


def test_data_between_unreachable_pools_goes_through_the_scheduler(tmp_path):
    with _start(tmp_path, PROFILE) as c, c.as_current():
        sizes = [size_b(make_a(100_000 + i)) for i in range(5)]
        assert c.gather(sizes) == [100_000 + i for i in range(5)]
        assert _transfers(c) == {"site_a-0-0": [], "site_b-0-0": []}
        relays = [k for k in c.run_on_scheduler(lambda dask_scheduler: list(
            dask_scheduler.tasks)) if k.startswith("daskflow-relay-")]
        assert relays  # the copies the consumers read
        run_dir = c._daskflow_session.run_dir
    # provenance records the real dependency (the producer), not the relay
    with ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True) as store:
        deps = set(store.dependencies())
    assert all((str(s.tid), str(s.tid - 1)) in deps for s in sizes), deps


def test_without_restrictions_the_same_workflow_transfers_directly(tmp_path):
    """The control: the transfer logs do see worker-to-worker fetches."""
    with _start(tmp_path, PROFILE.replace("reachable_from: [site_a]", "")) as c, c.as_current():
        assert c.gather([size_b(make_a(100_000))]) == [100_000]
        assert _transfers(c)["site_b-0-0"]


def test_a_failed_upstream_still_fails_the_consumer_with_a_dependency_error(tmp_path):
    with _start(tmp_path, PROFILE) as c, c.as_current():
        with pytest.raises(DependencyError, match="make"):
            size_b(make_a(-1)).result(timeout=60)


def test_an_unpinned_consumer_of_unreachable_data_is_refused_at_call_time(tmp_path):
    with _start(tmp_path, PROFILE) as c, c.as_current():
        with pytest.raises(UnroutableCall, match="app 'size' takes the result of 'make'"):
            size_anywhere(make_a(10))
        assert size_anywhere(b"local value").result(timeout=60) == 11
