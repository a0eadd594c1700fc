"""The embedded local cluster: a ``LocalCluster`` whose first worker also
carries the machine's MPI slots (one per core), so that MPI apps run on a
laptop with no profile and two of them never oversubscribe its cores."""

from __future__ import annotations

import copy
import inspect
import os

import distributed

from .mpi import PoolMpi

_CLIENT_ARGS = frozenset(inspect.signature(distributed.Client.__init__).parameters)


def split_client_kwargs(kwargs: dict) -> tuple[dict, dict]:
    """(``distributed.Client`` keywords, ``LocalCluster`` keywords)."""
    client = {k: v for k, v in kwargs.items() if k in _CLIENT_ARGS}
    return client, {k: v for k, v in kwargs.items() if k not in _CLIENT_ARGS}


def local_cluster(mpi: PoolMpi, n_workers: int | None = None,
                  **options) -> distributed.LocalCluster:
    """A LocalCluster of ``n_workers`` workers (one per core by default),
    the first carrying the MPI slots of ``mpi``."""
    if n_workers is None:
        n_workers = os.cpu_count() or 1
    cluster = distributed.LocalCluster(n_workers=0, **options)
    slots = mpi.worker_resources
    first = copy.deepcopy(cluster.new_spec)
    first["options"]["resources"] = {**(first["options"].get("resources") or {}), **slots}
    cluster.worker_spec.update({i: first if i == 0 else cluster.new_spec
                                for i in range(n_workers)})
    cluster.scale(n_workers)
    return cluster
