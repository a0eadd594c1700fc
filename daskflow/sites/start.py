"""Start a profile's cluster: one Dask ``SpecCluster`` (one scheduler) whose
"workers" are the blocks of every pool: Nannies in processes of their own
for ``local`` pools (see ``nanny_process``), dask-jobqueue job classes (one
batch job each, see ``launchers`` for multi-node blocks) for batch-system
pools (``watch`` fails the tasks of both when their workers cannot start),
distributed's SSH workers for ``ssh`` pools (see ``ssh``) and pods for
``kubernetes`` pools (see ``kubernetes``). Every worker is tagged with its
pool's label (see ``pools``)."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid

from dask.utils import format_bytes
from distributed import Scheduler, SpecCluster
from distributed.utils import import_term

from ..pool_resources import worker_resources
from ..worker.mpi import PoolMpi
from .kubernetes import PodBlock
from .launchers import MULTI_NODE_PROVIDERS, multi_node_options, node_suffixes, worker_python
from .nanny_process import NannyProcess
from .profile import Pool, Profile
from .scaling import PoolScaler
from .security import cluster_security, with_files
from .ssh import pick_host, ssh_block
from .watch import WorkerWatch, wait_for_processes

DEATH_TIMEOUT = 30  # seconds a batch job's workers wait for a lost scheduler

JOB_CLASSES = {  # provider -> dask-jobqueue job class
    "slurm": "dask_jobqueue.slurm.SLURMJob",
    "pbs": "dask_jobqueue.pbs.PBSJob",
    "lsf": "dask_jobqueue.lsf.LSFJob",
    "sge": "dask_jobqueue.sge.SGEJob",
    "htcondor": "dask_jobqueue.htcondor.HTCondorJob",
    "oar": "dask_jobqueue.oar.OARJob",
}


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
    job_tls = dict(tls)
    if security and any(p.provider in JOB_CLASSES or p.provider == "ssh"
                        for p in profile.pools):
        job_tls["security"] = with_files(security, os.path.join(
            log_directory or tempfile.gettempdir(), f"daskflow-tls-{os.getpid()}"))
    scheduler = {"cls": Scheduler,
                 "options": {"host": host, "dashboard_address": profile.scheduler.dashboard,
                             **tls}}
    # imported here, in the caller's thread: dask_jobqueue sets a signal handler
    # on import, which only the main thread may do (not the cluster's loop)
    job_classes = {p.provider: import_term(JOB_CLASSES[p.provider])
                   for p in profile.pools if p.provider in JOB_CLASSES}

    token = uuid.uuid4().hex[:8]
    started: list[SpecCluster] = []  # the cluster, once it exists

    def make_block(pool: Pool, index: int) -> dict:
        resources = {**pool.resources, **worker_resources(pool.label, labels)}
        slots = PoolMpi.of(pool).worker_resources  # MPI slots: the block's first worker
        name = f"{pool.label}-{index}"
        if pool.provider == "local":
            return _local_block(pool, index, host, resources, slots, tls)
        if pool.provider == "ssh":
            spec = started[0].worker_spec if started else workers
            return ssh_block(pool, index, pick_host(pool, spec), resources, slots,
                             DEATH_TIMEOUT, job_tls.get("security"))
        resources.update(slots)  # one worker per node here; onnode keeps them on node 0
        if pool.provider == "kubernetes":
            block = {"cls": PodBlock, "options": {
                "pool": pool, "resources": resources, "token": token, "index": index,
                "death_timeout": DEATH_TIMEOUT, "security": security}}
        else:
            block = _job_block(pool, job_classes[pool.provider], resources, log_directory,
                               job_tls)
        suffixes = node_suffixes(pool)
        if suffixes != [""]:  # the block's workers are named NAME-n0, NAME-0, ...
            block["group"] = suffixes
        return {name: block}

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
    if any(p.provider == "local" or p.provider in JOB_CLASSES for p in profile.pools):
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


def _local_block(pool: Pool, block: int, host: str, resources: dict, first: dict,
                 tls: dict) -> dict:
    per_block = (pool.workers_per_node or os.cpu_count() or 1) * pool.block.nodes
    return {f"{pool.label}-{block}-{i}": {
        "cls": NannyProcess,  # its own process: the driver's __main__ is not imported
        "options": {"options": {
            "nthreads": pool.threads_per_worker, "host": host, "silence_logs": logging.WARNING,
            "resources": {**resources, **first} if i == 0 else resources, **tls}},
    } for i in range(per_block)}


def _job_block(pool: Pool, job_class, resources: dict, log_directory: str | None,
               tls: dict) -> dict:
    """One batch job running the pool's workers (dask-jobqueue writes the script)."""
    processes = pool.workers_per_node or 1
    options = {
        "cores": pool.block.cores or processes * pool.threads_per_worker,
        "processes": processes,
        "memory": format_bytes(pool.block.memory) if pool.block.memory else "1 GiB",
        "walltime": pool.block.walltime,
        "job_extra_directives": list(pool.block.job_extra),
        "job_script_prologue": list(pool.block.worker_init),
        "worker_extra_args": ["--resources",
                              ",".join(f"{k}={v}" for k, v in resources.items())],
        "python": worker_python(pool),
        "log_directory": log_directory,
        "job_name": f"daskflow-{pool.label}",
        # workers that lose the scheduler (driver killed) stop, and their job
        # ends, after this many seconds
        "death_timeout": DEATH_TIMEOUT,
        **tls,
    }
    for key, value in multi_node_options(pool).items():
        options[key] = options.get(key, []) + value if isinstance(value, list) else value
    if pool.block.queue:
        options["queue"] = pool.block.queue
    if pool.block.account:
        options["account"] = pool.block.account
    return {"cls": job_class, "options": options}


def check_pool(profile: Profile, pool: Pool) -> None:
    """Refuse, naming the pool, what this version cannot start."""
    where = f"profile '{profile.name}': pool '{pool.label}'"
    if pool.block.nodes > 1 and pool.provider not in MULTI_NODE_PROVIDERS:
        raise NotImplementedError(
            f"{where} asks for {pool.block.nodes} nodes per block; multi-node blocks are "
            f"supported for providers {', '.join(MULTI_NODE_PROVIDERS)}, not {pool.provider!r}")
    if pool.block.nodes > 1 and pool.launcher == "single":
        raise ValueError(
            f"{where} asks for {pool.block.nodes} nodes per block with launcher 'single', "
            "which would start workers on the first node only; set launcher to srun, "
            "mpiexec or aprun")
    if PoolMpi.of(pool).slots and pool.provider not in ("local", "ssh") and \
            (pool.workers_per_node or 1) > 1:
        raise ValueError(f"{where} declares MPI slots with {pool.workers_per_node} workers per "
                         "node; MPI pools of batch systems and Kubernetes need "
                         "workers_per_node: 1 (the node's worker launches the MPI apps)")
    needs = {"ssh": ("asyncssh", "ssh"), "kubernetes": ("dask_kubernetes", "kubernetes")}
    if pool.provider in needs:
        module, extra = needs[pool.provider]
        try:
            __import__(module)
        except ImportError:
            raise ImportError(f"{where} uses provider {pool.provider!r}, which needs the "
                              f"{module} package: pip install 'daskflow[{extra}]'") from None
    if pool.launcher != "single" and pool.provider not in JOB_CLASSES:
        raise ValueError(f"{where}: launcher {pool.launcher!r} applies to batch-system "
                         f"providers only, not {pool.provider!r}")
