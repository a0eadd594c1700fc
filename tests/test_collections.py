"""Apps and the rest of Dask: a ``dask.delayed``, an array or a bag anywhere
in a call's arguments is computed on the cluster and the call gets its value
(the dependency recorded); ``app.delayed(...)`` runs a call inside a Dask
graph with the app's behaviour; AppFutures in Dask graphs, and a clear error
for a packed call's. The session's real cluster."""

from __future__ import annotations

import os

import dask
import dask.array as da
import dask.bag as db
import numpy as np
import pytest
from test_batching import known_short
from waiting import until

from daskflow import File, bash_app, python_app
from daskflow.errors import BashExitFailure, PackedInGraph
from daskflow.provenance.store import ProvenanceStore


@python_app
def received(value):
    return value


@python_app
def summed(x, more=(), scale=None):
    import numpy as np

    return float(np.sum(x)) + sum(float(np.sum(m)) for m in more) + float(np.sum(scale or 0))


def test_a_delayed_is_computed_on_a_worker_and_given_as_its_value(client):
    where = dask.delayed(os.getpid)()
    pid = received(where).result(timeout=60)
    assert isinstance(pid, int) and pid != os.getpid()  # a worker's process, not the driver's


def test_arrays_and_bags_anywhere_in_the_arguments(client):
    ones = da.ones((100, 100), chunks=(10, 10))
    assert isinstance(received(ones).result(timeout=60), np.ndarray)
    assert summed(ones).result(timeout=60) == 10_000
    # as a keyword, nested in a list, beside a delayed
    assert summed(dask.delayed(sum)([1, 2, 3]), more=[ones * 2],
                  scale=ones[:1, :1]).result(timeout=60) == 20_007
    words = db.from_sequence(["a", "b", "c"], npartitions=2)
    assert received({"words": words}).result(timeout=60) == {"words": ["a", "b", "c"]}
    mapped = received.map([ones.sum(), da.zeros(3).sum()])
    assert [f.result(timeout=60) for f in mapped] == [10_000, 0]


def test_the_collection_is_a_recorded_dependency(client):
    total = dask.delayed(sum)([4, 5])
    future = received(total)
    assert future.result(timeout=60) == 9
    path = os.path.join(client._daskflow_session.run_dir, "provenance.db")

    def edges():
        with ProvenanceStore(path, readonly=True) as store:
            return [dep for key, dep in store.dependencies(by="key") if key == future.key]

    until(edges, "the call's dependency was not recorded", timeout=30)
    (upstream,) = edges()
    assert upstream == total.key


# ------------------------------------------------- apps inside Dask graphs
@python_app
def tripled(x):
    return 3 * x


@python_app(batch=False)
def alone(x):
    return x


@python_app(retries=2)
def flaky_once(path):
    import os

    if not os.path.exists(path):
        open(path, "w").close()
        raise RuntimeError("first try fails")
    return "second try"


@python_app
def broken(x):
    raise KeyError(f"no {x}")


@bash_app
def shell(command):
    return command


def test_app_delayed_runs_in_a_dask_graph_and_is_recorded(client):
    parts = [tripled.delayed(i) for i in range(4)]
    total = dask.delayed(sum)(parts)
    assert total.compute() == 18
    assert dask.compute(tripled.delayed(da.ones(4).sum()))[0] == 12.0  # a collection argument
    path = os.path.join(client._daskflow_session.run_dir, "provenance.db")
    keys = {p.key for p in parts}

    def rows():
        with ProvenanceStore(path, readonly=True) as store:
            return [t for t in store.tasks(app="tripled") if t["key"] in keys]

    until(lambda: len(rows()) == 4 and all(t["state"] == "done" for t in rows()),
          "the delayed calls were not recorded as done", timeout=30)


def test_app_delayed_keeps_the_apps_behaviour(client, tmp_path):
    assert flaky_once.delayed(str(tmp_path / "marker")).compute() == "second try"  # its tries
    assert shell.delayed("true").compute() == 0
    with pytest.raises(BashExitFailure) as failed:
        shell.delayed("exit 3").compute()
    assert failed.value.exitcode == 3
    with pytest.raises(KeyError, match="no 7"):
        broken.delayed(7).compute()
    with pytest.raises(ValueError, match=r"\.delayed\(\) takes no outputs="):
        tripled.delayed(1, outputs=[File(str(tmp_path / "x"))])


def test_app_futures_in_dask_graphs(client):
    assert dask.delayed(lambda x: x * 10)(alone(5)).compute() == 50
    known_short(tripled, 0)
    held = tripled(7)  # held for packing, alone: sent as a task of its own by compute
    assert dask.delayed(lambda x: x + 1)(held).compute() == 22
    packed = [tripled(i) for i in range(40)]
    assert client.gather(packed) == [3 * i for i in range(40)]
    member = next(f for f in packed if f.index is not None)
    # Dask would give the graph the member's whole chunk: refused, saying what to do
    with pytest.raises(PackedInGraph, match="pass the future to an app or to app.delayed"):
        dask.delayed(lambda x: x)(member).compute()
    with pytest.raises(PackedInGraph):
        client.compute(dask.delayed(lambda x: x)(member))
    # app.delayed takes a packed call's value
    assert tripled.delayed(member).compute() == 9 * member.result()
