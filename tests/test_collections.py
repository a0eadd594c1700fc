"""Dask collections as app arguments: a ``dask.delayed``, an array or a bag
anywhere in a call's arguments is computed on the cluster and the call gets
its value; the dependency is recorded. The session's real cluster."""

from __future__ import annotations

import os

import dask
import dask.array as da
import dask.bag as db
import numpy as np
from waiting import until

from daskflow import python_app
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
