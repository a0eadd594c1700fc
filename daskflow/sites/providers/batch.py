"""Batch-system providers: each block is one batch job whose script
dask-jobqueue's job class writes (``watch`` fails the tasks of a pool whose
jobs cannot start). A member names its job class; Slurm and PBS also say
how to widen the job to several nodes (see ``sites.launchers``).
"""

from __future__ import annotations

from typing import ClassVar

from dask.utils import format_bytes
from pydantic.dataclasses import dataclass

from ...dask_internals import import_dotted
from ..launchers import node_suffixes, worker_python
from ..profile_schema import _SECTION, Size
from .base import BlockContext, Pool, Provider


class BatchProvider(Provider):
    """The family's shared logic: the job's options from the pool."""

    job_class: ClassVar[str]  #: the dask-jobqueue job class, dotted
    account_keyword: ClassVar[str | None] = "account"  #: the job class's name for it
    batch = watched = file_tls = True

    @classmethod
    def prepare(cls) -> None:
        import_dotted(cls.job_class)  # dask_jobqueue sets a signal handler on import

    @classmethod
    def check(cls, pool: Pool, where: str) -> None:
        if pool.block.account and cls.account_keyword is None:
            raise ValueError(f"{where}: provider {cls.name!r} has no accounts; "
                             "remove block.account")

    @classmethod
    def multi_node_options(cls, pool: Pool) -> dict:
        """Job class options that ask the batch system for ``block.nodes`` nodes."""
        return {}

    @classmethod
    def job_options(cls, pool: Pool, resources: dict, context: BlockContext) -> dict:
        """The job class's options for one block of ``pool``."""
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
            "log_directory": context.log_directory,
            "job_name": f"daskflow-{pool.label}",
            # workers that lose the scheduler (driver killed) stop, and their
            # job ends, after this many seconds
            "death_timeout": context.death_timeout,
            **context.file_tls,
        }
        if pool.block.nodes > 1:
            for key, value in cls.multi_node_options(pool).items():
                options[key] = options.get(key, []) + value if isinstance(value, list) else value
        if pool.block.queue:
            options["queue"] = pool.block.queue
        if pool.block.account:
            options[cls.account_keyword] = pool.block.account
        return options

    @classmethod
    def block(cls, pool: Pool, index: int, resources: dict, slots: dict,
              context: BlockContext) -> dict:
        # one worker command per node: onnode keeps the slots on node 0
        options = cls.job_options(pool, {**resources, **slots}, context)
        block = {"cls": import_dotted(cls.job_class), "options": options}
        suffixes = node_suffixes(pool)
        if suffixes != [""]:  # the block's workers are named NAME-n0, NAME-0, ...
            block["group"] = suffixes
        return {f"{pool.label}-{index}": block}


class SlurmProvider(BatchProvider):
    name = "slurm"
    parsl = ("SlurmProvider",)
    job_class = "dask_jobqueue.slurm.SLURMJob"
    mpi_launcher_default = "srun"
    multi_node = True

    @classmethod
    def multi_node_options(cls, pool: Pool) -> dict:
        return {"job_directives_skip": ["-n 1"],
                "job_extra_directives": [f"--nodes={pool.block.nodes}", "--ntasks-per-node=1"]}


class PBSProvider(BatchProvider):
    name = "pbs"
    parsl = ("PBSProProvider", "TorqueProvider")
    job_class = "dask_jobqueue.pbs.PBSJob"
    multi_node = True

    @classmethod
    def multi_node_options(cls, pool: Pool) -> dict:
        cores = pool.block.cores or (pool.workers_per_node or 1) * pool.threads_per_worker
        spec = f"select={pool.block.nodes}:ncpus={cores}"
        if pool.block.memory:
            spec += f":mem={pool.block.memory // 2**20}MB"
        return {"resource_spec": spec}


class LSFProvider(BatchProvider):
    name = "lsf"
    parsl = ("LSFProvider",)
    job_class = "dask_jobqueue.lsf.LSFJob"
    account_keyword = "project"


class SGEProvider(BatchProvider):
    name = "sge"
    parsl = ("GridEngineProvider",)
    job_class = "dask_jobqueue.sge.SGEJob"
    account_keyword = "project"


@dataclass(frozen=True, config=_SECTION, kw_only=True)
class HTCondorPool(Pool):
    """Provider ``htcondor``: a job also asks for ``disk`` (bytes)."""

    disk: Size = 2**30


class HTCondorProvider(BatchProvider):
    """HTCondor: no queues or accounts; ``block.job_extra`` lines are submit
    commands ``key = value``; the walltime is a ``periodic_remove``."""

    name = "htcondor"
    parsl = ("CondorProvider",)
    job_class = "dask_jobqueue.htcondor.HTCondorJob"
    options = HTCondorPool
    account_keyword = None

    @classmethod
    def check(cls, pool: Pool, where: str) -> None:
        super().check(pool, where)
        if pool.block.queue:
            raise ValueError(f"{where}: provider 'htcondor' has no queues; remove "
                             "block.queue (job_extra: ['requirements = ...'] picks machines)")
        for line in pool.block.job_extra:
            if "=" not in line:
                raise ValueError(f"{where}: block.job_extra {line!r} is not an HTCondor "
                                 "submit command 'key = value'")

    @classmethod
    def job_options(cls, pool: Pool, resources: dict, context: BlockContext) -> dict:
        options = super().job_options(pool, resources, context)
        extra = dict((k.strip(), v.strip()) for k, _, v in (
            line.partition("=") for line in options.pop("job_extra_directives")))
        seconds = pool.block.walltime_seconds
        options.pop("walltime")
        options["job_extra_directives"] = {
            "periodic_remove": f"(JobStatus == 2) && (time() - EnteredCurrentStatus > {seconds})",
            **extra}
        options["disk"] = pool.options["disk"]  # bytes
        return options


class OARProvider(BatchProvider):
    name = "oar"  # Parsl has no OAR provider
    job_class = "dask_jobqueue.oar.OARJob"
    account_keyword = "project"
