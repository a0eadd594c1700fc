"""Start a profile's local pools: one Dask ``SpecCluster`` whose workers are
tagged with their pool's label (see ``pools``)."""

from __future__ import annotations

import os

from distributed import Nanny, Scheduler, SpecCluster

from .pools import worker_resources
from .profile import Profile


def start_local(profile: Profile) -> SpecCluster:
    """The cluster of ``profile``: its scheduler and ``init_blocks`` blocks of
    each pool (every pool must use the ``local`` provider)."""
    others = [p for p in profile.pools if p.provider != "local"]
    if others:
        pool = others[0]
        raise NotImplementedError(
            f"profile '{profile.name}': pool '{pool.label}' uses provider '{pool.provider}'; "
            "this version of daskflow starts local pools only")
    labels = [p.label for p in profile.pools]
    host = profile.scheduler.host
    scheduler = {"cls": Scheduler,
                 "options": {"host": host, "dashboard_address": profile.scheduler.dashboard}}
    workers = {}
    for pool in profile.pools:
        per_block = pool.workers_per_node or os.cpu_count() or 1
        resources = {**pool.resources, **worker_resources(pool.label, labels)}
        for block in range(pool.scaling.init_blocks):
            for i in range(per_block * pool.block.nodes):
                workers[f"{pool.label}-{block}-{i}"] = {
                    "cls": Nanny,
                    "options": {"nthreads": pool.threads_per_worker, "host": host,
                                "resources": resources},
                }
    return SpecCluster(workers=workers, scheduler=scheduler, name=profile.name)
