"""Start a profile's cluster: one Dask ``SpecCluster`` (one scheduler) whose
"workers" are the blocks of every pool, each made by the pool's provider
(see ``providers``): Nannies in processes of their own for ``local`` pools,
dask-jobqueue job classes (one batch job each, see ``launchers`` for
multi-node blocks) for batch-system pools (``watch`` fails the tasks of
both when their workers cannot start), distributed's SSH workers for
``ssh`` pools and pods for ``kubernetes`` pools. Every worker is tagged
with its pool's label (see ``pool_resources``)."""

from __future__ import annotations

import os
import tempfile
import uuid

from distributed import Scheduler, SpecCluster

from .. import latency
from ..launchers import LAUNCHERS
from ..pool_resources import worker_resources
from ..worker.mpi import NODES, PoolMpi
from .nanny_process import NannyProcess
from .profile import Pool, Profile
from .providers import PROVIDERS, BlockContext
from .scaling import PoolScaler
from .security import cluster_security, with_files
from .watch import WorkerWatch, wait_for_processes

DEATH_TIMEOUT = 30  # seconds a batch job's workers wait for a lost scheduler


def start_cluster(profile: Profile,
                  log_directory: str | None = None) -> tuple[SpecCluster, PoolScaler]:
    """The cluster of ``profile`` (its scheduler and ``init_blocks`` blocks of
    each pool) and the scaler of its elastic pools, started.
    ``log_directory`` receives the batch jobs' output."""
    for pool in profile.pools:
        check_pool(profile, pool)
    if log_directory is not None:
        # the jobs a scaler submits later, after the driver changed directory,
        # and the watch that quotes their stderr find the same files
        log_directory = os.path.abspath(log_directory)
    labels = [p.label for p in profile.pools]
    host = profile.scheduler.host
    security = cluster_security(profile.scheduler.security)
    tls = {"security": security, "protocol": "tls"} if security else {}
    file_tls = dict(tls)
    if security and any(p.provider_class.file_tls for p in profile.pools):
        file_tls["security"] = with_files(security, os.path.join(
            log_directory or tempfile.gettempdir(), f"daskflow-tls-{os.getpid()}"))
    scheduler = {"cls": Scheduler,
                 "options": {"host": host, "dashboard_address": profile.scheduler.dashboard,
                             "plugins": latency.scheduler_plugins(), **tls}}
    # in the caller's thread: dask_jobqueue sets a signal handler on import,
    # which only the main thread may do (not the cluster's loop)
    for pool in profile.pools:
        pool.provider_class.prepare()
    started: list[SpecCluster] = []  # the cluster, once it exists
    context = BlockContext(
        host=host, tls=tls, file_tls=file_tls, security=security, token=uuid.uuid4().hex[:8],
        log_directory=log_directory, death_timeout=DEATH_TIMEOUT,
        worker_spec=lambda: started[0].worker_spec if started else workers)

    def make_block(pool: Pool, index: int) -> dict:
        resources = {**pool.resources, **worker_resources(pool.label, labels)}
        slots = PoolMpi.of(pool).worker_resources  # MPI slots: the block's first worker
        return pool.provider_class.block(pool, index, resources, slots, context)

    workers, initial = {}, {}
    for pool in profile.pools:
        for index in range(pool.scaling.init_blocks):
            block = make_block(pool, index)
            workers.update(block)
            initial.setdefault(pool.label, {})[index] = list(block)
    cluster = SpecCluster(workers=workers, scheduler=scheduler, name=profile.name,
                          security=security)
    started.append(cluster)
    scaler = PoolScaler(cluster, list(profile.pools), make_block, initial)
    scaler.start()
    local = [name for name, spec in workers.items() if spec["cls"] is NannyProcess]
    if any(p.provider_class.watched for p in profile.pools):
        watch = WorkerWatch(lambda name: _pool_of(str(name), labels), labels,
                            providers={p.label: p.provider for p in profile.pools})
        try:
            cluster.sync(_install, watch, cluster)
            # local workers start in seconds: the client waits for them as
            # SpecCluster waits for the other blocks (a batch job submitted, a
            # pod created). Not for batch jobs, which a queue may hold for
            # hours: the calls that wait for their workers raise if they die.
            if local:
                wait_for_processes(cluster, watch, local)
        except BaseException:
            scaler.stop()
            cluster.close()
            raise
    return cluster, scaler


async def _install(watch: WorkerWatch, cluster: SpecCluster) -> None:
    watch.install(cluster.scheduler, cluster)


def _pool_of(name: str, labels: list[str]) -> str:
    """The pool of a worker named ``LABEL-BLOCK-...`` (labels may hold dashes)."""
    return max((label for label in labels if name.startswith(label + "-")), key=len,
               default=name)


def check_pool(profile: Profile, pool: Pool) -> None:
    """Refuse, naming the pool, what this version cannot start."""
    where = f"profile '{profile.name}': pool '{pool.label}'"
    provider = pool.provider_class
    if pool.block.nodes > 1 and not provider.multi_node:
        able = [name for name, p in PROVIDERS.items() if p.multi_node]
        raise NotImplementedError(
            f"{where} asks for {pool.block.nodes} nodes per block; multi-node blocks are "
            f"supported for providers {', '.join(able)}, not {pool.provider!r}")
    if pool.block.nodes > 1 and not LAUNCHERS[pool.launcher].block:
        able = [name for name, row in LAUNCHERS.items() if row.block]
        raise ValueError(
            f"{where} asks for {pool.block.nodes} nodes per block with launcher "
            f"{pool.launcher!r}, which would start workers on the first node only; set "
            f"launcher to {', '.join(able[:-1])} or {able[-1]}")
    if PoolMpi.of(pool).slots and provider.mpi_unit == NODES and (pool.workers_per_node or 1) > 1:
        raise ValueError(f"{where} declares MPI slots with {pool.workers_per_node} workers per "
                         "node; MPI pools of batch systems and Kubernetes need "
                         "workers_per_node: 1 (the node's worker launches the MPI apps)")
    if provider.needs:
        module, extra = provider.needs
        try:
            __import__(module)
        except ImportError:
            raise ImportError(f"{where} uses provider {pool.provider!r}, which needs the "
                              f"{module} package: pip install 'daskflow[{extra}]'") from None
    if pool.launcher != "single" and not provider.batch:
        raise ValueError(f"{where}: launcher {pool.launcher!r} applies to batch-system "
                         f"providers only, not {pool.provider!r}")
    provider.check(pool, where)
