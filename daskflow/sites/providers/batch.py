"""Batch-system providers: each block is one batch job whose script
dask-jobqueue's job class writes (``watch`` fails the tasks of a pool whose
jobs cannot start). A member names its job class; Slurm and PBS also say
how to widen the job to several nodes (see ``sites.launchers``).
"""

from __future__ import annotations

import getpass
import os
import re
from typing import Callable, ClassVar

from dask.utils import format_bytes
from pydantic.dataclasses import dataclass

from ...dask_internals import import_dotted
from ..drain import DRAIN_PRELOAD, drain_prologue
from ..job_status import ENDED, PENDING, RUNNING, Query, columns, phases
from ..launchers import node_suffixes, worker_python
from ..profile_schema import _SECTION, Size
from .base import BlockContext, Pool, Provider


class BatchProvider(Provider):
    """The family's shared logic: the job's options from the pool."""

    job_class: ClassVar[str]  #: the dask-jobqueue job class, dotted
    status: ClassVar[Query]  #: how to ask the batch system about its jobs (``job_status``)
    #: the name of a job's stderr file in its log directory (None: not there,
    #: as OAR's, which goes to the directory the job was submitted from)
    stderr_name: ClassVar[Callable[[object], str] | None] = None
    account_keyword: ClassVar[str | None] = "account"  #: the job class's name for it
    batch = watched = file_tls = True

    @classmethod
    def prepare(cls) -> None:
        import_dotted(cls.job_class)  # dask_jobqueue sets a signal handler on import

    @classmethod
    def stderr_log(cls, job) -> str | None:
        """The file dask-jobqueue's job script sends ``job``'s stderr to (a
        Job with its ``job_id``, ``job_name``, ``name`` and
        ``log_directory``), following the job class's ``-e``/``-o`` header;
        None when it is not in the job's log directory."""
        if job.log_directory is None or job.job_id is None or cls.stderr_name is None:
            return None
        return os.path.join(job.log_directory, cls.stderr_name(job))

    @classmethod
    def check(cls, pool: Pool, where: str) -> None:
        if pool.block.account and cls.account_keyword is None:
            raise ValueError(f"{where}: provider {cls.name!r} has no accounts; "
                             "remove block.account")
        problem = pool.block.drain_problem()  # also a profile problem (``profile``)
        if problem:
            raise ValueError(f"{where}: {problem}")

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
            # the job's start, before the user's lines: the workers drain
            # before its walltime (``sites.drain``)
            "job_script_prologue": [*drain_prologue(pool.block), *pool.block.worker_init],
            "worker_extra_args": ["--resources",
                                  ",".join(f"{k}={v}" for k, v in resources.items()),
                                  "--preload", DRAIN_PRELOAD],
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


# Slurm: ``-t all`` keeps a job that just ended listed (FAILED, COMPLETED, ...)
# until MinJobAge; after that it is not listed, and when no id is known at all
# squeue exits 1 with "Invalid job id specified". COMPLETING: the job's
# processes have ended (an epilog may still run).
SLURM_STATUS = Query(
    argv=lambda ids: ["squeue", "-h", "-t", "all", "-o", "%i %T", "-j", ",".join(ids)],
    parse=columns(0, 1),
    phase=phases({"RUNNING"}, {
        "BOOT_FAIL", "CANCELLED", "COMPLETED", "COMPLETING", "DEADLINE", "FAILED", "NODE_FAIL",
        "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "STAGE_OUT", "TIMEOUT"}),
    unknown=r"Invalid job id specified",
)


class SlurmProvider(BatchProvider):
    name = "slurm"
    stderr_name = staticmethod(lambda job: f"{job.job_name or 'worker'}-{job.job_id}.err")
    parsl = ("SlurmProvider",)
    job_class = "dask_jobqueue.slurm.SLURMJob"
    status = SLURM_STATUS
    mpi_launcher_default = "srun"
    multi_node = True

    @classmethod
    def multi_node_options(cls, pool: Pool) -> dict:
        return {"job_directives_skip": ["-n 1"],
                "job_extra_directives": [f"--nodes={pool.block.nodes}", "--ntasks-per-node=1"]}


def _pbs_parse(out: str) -> dict[str, str]:
    """``qstat -f``: a "Job Id: 123.server" line, then indented "key = value"
    lines; dask-jobqueue keeps the number before the server's name."""
    states, current = {}, None
    for line in out.splitlines():
        if line.startswith("Job Id:"):
            current = line.split(":", 1)[1].strip().split(".")[0]
        elif current is not None and line.strip().startswith("job_state ="):
            states[current] = line.split("=", 1)[1].strip()
    return states


# PBS Pro and Torque: Q queued, H held, W waiting for its start time, T in
# transit, S suspended; R running; E exiting, F finished (PBS Pro with -x),
# C completed (Torque), X subjob finished. A job that has left the server is
# "Unknown Job Id", or, for PBS Pro, "Job has finished".
PBS_STATUS = Query(
    argv=lambda ids: ["qstat", "-f", *ids],
    parse=_pbs_parse,
    phase=phases({"R"}, {"E", "F", "C", "X"}),
    unknown=r"Unknown Job Id|Job has finished",
)


class PBSProvider(BatchProvider):
    name = "pbs"  # -e DIR/: the server names the file NAME.eNUMBER
    stderr_name = staticmethod(lambda job: f"{job.job_name}.e{job.job_id}")
    parsl = ("PBSProProvider", "TorqueProvider")
    job_class = "dask_jobqueue.pbs.PBSJob"
    status = PBS_STATUS
    multi_node = True

    @classmethod
    def multi_node_options(cls, pool: Pool) -> dict:
        cores = pool.block.cores or (pool.workers_per_node or 1) * pool.threads_per_worker
        spec = f"select={pool.block.nodes}:ncpus={cores}"
        if pool.block.memory:
            spec += f":mem={pool.block.memory // 2**20}MB"
        return {"resource_spec": spec}


# LSF (9.1.1 and later, for -o): PEND, PSUSP, USUSP, SSUSP, WAIT, UNKWN ...;
# RUN; DONE, EXIT, ZOMBI. A job past CLEAN_PERIOD: "Job <123> is not found".
LSF_STATUS = Query(
    argv=lambda ids: ["bjobs", "-noheader", "-o", "jobid stat", *ids],
    parse=columns(0, 1),
    phase=phases({"RUN"}, {"DONE", "EXIT", "ZOMBI"}),
    unknown=r"Job <\d+> is not found",
)


class LSFProvider(BatchProvider):
    name = "lsf"
    stderr_name = staticmethod(lambda job: f"{job.name or 'worker'}-{job.job_id}.err")
    parsl = ("LSFProvider",)
    job_class = "dask_jobqueue.lsf.LSFJob"
    status = LSF_STATUS
    account_keyword = "project"


def _sge_phase(word: str) -> str:
    """SGE's state letters: d being deleted; E an error (``Eqw``: the job
    will not start until someone clears it, so it counts as ended); r
    running (also ``Rr``, ``hr``); the rest (qw, hqw, t, s, ...) wait."""
    if "d" in word or "E" in word:
        return ENDED
    return RUNNING if "r" in word else PENDING


# SGE: plain qstat lists the user's jobs (job-ID prior name user state ...);
# a job leaves the list when it ends. It cannot be asked about given ids
# without its long -j format, so all the user's jobs are listed.
SGE_STATUS = Query(
    argv=lambda ids: ["qstat", "-u", getpass.getuser()],
    parse=columns(0, 4),
    phase=_sge_phase,
)


class SGEProvider(BatchProvider):
    name = "sge"  # -e DIR/ -o DIR/ -j y: stderr joins stdout in NAME.oNUMBER
    stderr_name = staticmethod(lambda job: f"{job.job_name}.o{job.job_id}")
    parsl = ("GridEngineProvider",)
    job_class = "dask_jobqueue.sge.SGEJob"
    status = SGE_STATUS
    account_keyword = "project"


# HTCondor: ids are "cluster.proc"; -af:j prints "12.0 2" (the job id, then
# JobStatus). A job leaves the queue when it ends; ids before -af, which
# takes every following word as an attribute.
_CONDOR_STATUS = {"1": "Idle", "2": "Running", "3": "Removed", "4": "Completed", "5": "Held",
                  "6": "Transferring_Output", "7": "Suspended"}
HTCONDOR_STATUS = Query(
    argv=lambda ids: ["condor_q", *ids, "-af:j", "JobStatus"],
    parse=lambda out: {i: _CONDOR_STATUS.get(s, s) for i, s in columns(0, 1)(out).items()},
    phase=phases({"Running"}, {"Removed", "Completed", "Transferring_Output"}),
)


@dataclass(frozen=True, config=_SECTION, kw_only=True)
class HTCondorPool(Pool):
    """Provider ``htcondor``: a job also asks for ``disk`` (bytes)."""

    disk: Size = 2**30


class HTCondorProvider(BatchProvider):
    """HTCondor: no queues or accounts; ``block.job_extra`` lines are submit
    commands ``key = value``; the walltime is a ``periodic_remove``."""

    name = "htcondor"
    stderr_name = staticmethod(lambda job: f"worker-{job.job_id}.err")  # DIR/worker-C.P.err
    parsl = ("CondorProvider",)
    job_class = "dask_jobqueue.htcondor.HTCondorJob"
    status = HTCONDOR_STATUS
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


# OAR: ``oarstat -s -j 1 -j 2`` prints "1: Running" per job it knows; finished
# jobs stay known (Terminated, Error).
OAR_STATUS = Query(
    argv=lambda ids: ["oarstat", "-s", *[arg for i in ids for arg in ("-j", i)]],
    parse=lambda out: dict(re.findall(r"^(\d+):\s*(\S+)", out, re.MULTILINE)),
    phase=phases({"Running"}, {"Finishing", "Terminated", "Error", "toError"}),
)


class OARProvider(BatchProvider):
    name = "oar"  # Parsl has no OAR provider
    job_class = "dask_jobqueue.oar.OARJob"
    status = OAR_STATUS
    account_keyword = "project"
