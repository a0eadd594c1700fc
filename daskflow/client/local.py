"""The embedded local cluster: a ``LocalCluster``'s scheduler (in the
driver, with its dashboard) whose workers are Nannies in processes of their
own (``sites.nanny_process``), so that a script without a ``__main__`` guard
works; the first worker also carries the machine's MPI slots (one per core),
so that MPI apps run on a laptop with no profile and two of them never
oversubscribe its cores."""

from __future__ import annotations

import copy
import inspect
import os

import distributed

from .. import latency
from ..sites.nanny_process import NannyProcess, launch
from ..sites.watch import WorkerWatch
from ..worker.mpi import PoolMpi

_CLIENT_ARGS = frozenset(inspect.signature(distributed.Client.__init__).parameters)
POOL = "local"


def split_client_kwargs(kwargs: dict) -> tuple[dict, dict]:
    """(``distributed.Client`` keywords, ``LocalCluster`` keywords)."""
    client = {k: v for k, v in kwargs.items() if k in _CLIENT_ARGS}
    return client, {k: v for k, v in kwargs.items() if k not in _CLIENT_ARGS}


def local_cluster(mpi: PoolMpi, n_workers: int | None = None, processes: bool = True,
                  **options) -> tuple[distributed.LocalCluster, WorkerWatch | None]:
    """A LocalCluster of ``n_workers`` workers (one per core by default), the
    first carrying the MPI slots of ``mpi``, and the watch of its worker
    processes (None for ``processes=False``: threads in this process).

    The workers are being started when this returns."""
    if n_workers is None:
        n_workers = os.cpu_count() or 1
    # started first, they import daskflow while the scheduler starts
    launched = [launch() for _ in range(n_workers)] if processes else []
    try:
        cluster = distributed.LocalCluster(n_workers=0, processes=processes, **options)
    except BaseException:
        for process in launched:
            process.stdin.close()  # they exit at the end of their stdin
        raise
    cluster.sync(latency.install, cluster.scheduler)  # before any worker or client joins
    watch = None
    if processes:
        # the Nanny options LocalCluster worked out, run in processes of their own
        cluster.new_spec = {"cls": NannyProcess,
                            "options": {"options": cluster.new_spec["options"]}}
        watch = WorkerWatch(lambda name: POOL, [POOL])
        cluster.sync(_install, watch, cluster)
    specs = {i: copy.deepcopy(cluster.new_spec) for i in range(n_workers)}
    if processes:
        for spec in specs.values():
            spec["options"]["launched"] = launched
    nanny = specs[0]["options"]["options"] if processes else specs[0]["options"]
    nanny["resources"] = {**(nanny.get("resources") or {}), **mpi.worker_resources}
    cluster.worker_spec.update(specs)
    cluster.scale(n_workers)
    return cluster, watch


async def _install(watch: WorkerWatch, cluster) -> None:
    watch.install(cluster.scheduler, cluster)
