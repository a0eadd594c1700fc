"""daskflow.low-latency: the clusters daskflow starts (the local default, in
processes or threads, and a profile's) write their streams at once, the
switch leaves distributed's batching, and dataflow still gives the right
results. Intervals are read back through ``daskflow.dask_internals``; no
timing is asserted."""

from __future__ import annotations

import dask
import pytest
from waiting import until

import daskflow
from daskflow import dask_internals as di
from daskflow import latency, python_app

LOCAL_PROFILE = """
name: one-local
scheduler:
  dashboard: 127.0.0.1:0
pools:
  - label: cpu
    provider: local
    workers_per_node: 1
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
"""


def _worker_interval(dask_worker) -> float:
    return di.stream_interval(di.worker_to_scheduler_stream(dask_worker))


def intervals(client) -> dict[str, float]:
    """Each stream's interval: the client's, the scheduler's to this client
    and to each worker, and each worker's to the scheduler."""
    scheduler = client.__dict__["_owns_cluster"].scheduler  # in this process
    found = {"client to scheduler": di.stream_interval(di.client_to_scheduler_stream(client))}
    to_client = di.scheduler_to_client_stream(scheduler, client.id)
    found["scheduler to client"] = to_client and di.stream_interval(to_client)
    for address in list(scheduler.workers):
        found[f"scheduler to {address}"] = di.stream_interval(
            di.scheduler_to_worker_stream(scheduler, address))
    for address, value in client.run(_worker_interval).items():
        found[f"{address} to scheduler"] = value
    return found


def _all_at_once(client) -> bool:
    found = intervals(client)
    return len(found) > 2 and all(v == latency.INTERVAL for v in found.values())


def test_the_local_default_writes_its_streams_at_once(client):
    """The session's local default (worker processes): every stream, also
    the scheduler's to this client (set once that stream exists)."""
    until(lambda: _all_at_once(client), lambda: f"streams not at once: {intervals(client)}",
          timeout=30)
    assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.parametrize("on", [True, False])
def test_the_switch_in_a_local_cluster_of_threads(on):
    """On: every stream at once; off: distributed's own intervals, all above 0."""
    with dask.config.set({"daskflow.low-latency": on}), \
            daskflow.Client(n_workers=1, threads_per_worker=1, processes=False,
                            dashboard_address=":0", set_as_default=False) as c:
        if on:
            until(lambda: _all_at_once(c), lambda: f"streams not at once: {intervals(c)}",
                  timeout=30)
        else:
            found = intervals(c)
            assert len(found) == 4 and all(v > 0 for v in found.values()), found
            assert not c.cluster.scheduler.plugins.get(latency.NAME), "plugin installed while off"


def test_a_profiles_cluster_writes_its_streams_at_once(tmp_path):
    path = tmp_path / "one-local.yaml"
    path.write_text(LOCAL_PROFILE)
    with daskflow.Client(profile=str(path), set_as_default=False) as c:
        until(lambda: len(c.scheduler_info()["workers"]) == 1, "the pool's worker never joined",
              timeout=60)
        until(lambda: _all_at_once(c), lambda: f"streams not at once: {intervals(c)}",
              timeout=30)


@python_app
def inc(x):
    return x + 1


@python_app
def add(x, y):
    return x + y


def test_a_chain_and_a_diamond_give_the_right_results(client):
    f = inc(0)
    for _ in range(199):
        f = inc(f)
    assert f.result(timeout=120) == 200
    left, right = inc(f), inc(inc(f))
    assert add(left, right).result(timeout=60) == 201 + 202
    assert client.gather(inc.map([inc(i) for i in range(50)])) == [i + 2 for i in range(50)]
