"""What became of the batch jobs of a pool: still queued, running, or ended,
and where each job's stderr went.

dask-jobqueue submits a job per block and cancels it at the end, but never
asks about it again: a job that dies at once (a ``worker_init`` line that
fails, a wrong ``python``) leaves its block's tasks waiting forever.
``job_states`` asks the batch system, with one command per call for all the
given jobs, and ``stderr_log`` names the file dask-jobqueue's job script
sends the job's stderr to. ``WorkerWatch`` calls both from a thread, never
in the scheduler's event loop: a batch system's command may take seconds.

Each provider is one row of ``QUERIES``: the command, the parser of its
output, the stderr lines that say a job is no longer known (it ended long
enough ago to be forgotten: not an error), and the phase of each of the
batch system's states. Only Slurm is tested here (a real single-node
Slurm); the PBS, LSF, SGE, HTCondor and OAR rows follow those systems'
documented output formats and are untested.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
from dataclasses import dataclass
from typing import Callable, Sequence

PENDING, RUNNING, ENDED = "pending", "running", "ended"
COMMAND_TIMEOUT = 60  # seconds; a batch system that does not answer by then is reported


@dataclass(frozen=True)
class Query:
    """How to ask one batch system about its jobs.

    Attributes
    ----------
    argv : callable
        Job ids -> the command's argument list.
    parse : callable
        The command's stdout -> {job id: the batch system's word for its state}.
        A job it does not list has ended.
    phase : callable
        A state word -> PENDING, RUNNING or ENDED. A state it does not know is
        PENDING: a job is never declared failed on a word not understood.
    unknown : str
        A regular expression matching the stderr lines by which the command
        says that a job id is no longer known; with only such lines, a
        non-zero exit is an answer (those jobs ended), not a failure.
    """

    argv: Callable[[Sequence[str]], list[str]]
    parse: Callable[[str], dict[str, str]]
    phase: Callable[[str], str]
    unknown: str = r"(?!)"  # matches nothing


def _columns(id_column: int, state_column: int) -> Callable[[str], dict[str, str]]:
    """A parser of one job per line, its id and state in whitespace-separated
    columns; lines whose id column is not a job id (headers) are skipped."""
    def parse(out: str) -> dict[str, str]:
        states = {}
        for line in out.splitlines():
            words = line.split()
            if len(words) > max(id_column, state_column) and words[id_column][0].isdigit():
                states[words[id_column]] = words[state_column]
        return states
    return parse


def _phases(running: set[str], ended: set[str]) -> Callable[[str], str]:
    return lambda word: RUNNING if word in running else ENDED if word in ended else PENDING


# Slurm: ``-t all`` keeps a job that just ended listed (FAILED, COMPLETED, ...)
# until MinJobAge; after that it is not listed, and when no id is known at all
# squeue exits 1 with "Invalid job id specified". COMPLETING: the job's
# processes have ended (an epilog may still run).
_SLURM = Query(
    argv=lambda ids: ["squeue", "-h", "-t", "all", "-o", "%i %T", "-j", ",".join(ids)],
    parse=_columns(0, 1),
    phase=_phases({"RUNNING"}, {
        "BOOT_FAIL", "CANCELLED", "COMPLETED", "COMPLETING", "DEADLINE", "FAILED", "NODE_FAIL",
        "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "STAGE_OUT", "TIMEOUT"}),
    unknown=r"Invalid job id specified",
)


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
_PBS = Query(
    argv=lambda ids: ["qstat", "-f", *ids],
    parse=_pbs_parse,
    phase=_phases({"R"}, {"E", "F", "C", "X"}),
    unknown=r"Unknown Job Id|Job has finished",
)

# LSF (9.1.1 and later, for -o): PEND, PSUSP, USUSP, SSUSP, WAIT, UNKWN ...;
# RUN; DONE, EXIT, ZOMBI. A job past CLEAN_PERIOD: "Job <123> is not found".
_LSF = Query(
    argv=lambda ids: ["bjobs", "-noheader", "-o", "jobid stat", *ids],
    parse=_columns(0, 1),
    phase=_phases({"RUN"}, {"DONE", "EXIT", "ZOMBI"}),
    unknown=r"Job <\d+> is not found",
)


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
_SGE = Query(
    argv=lambda ids: ["qstat", "-u", getpass.getuser()],
    parse=_columns(0, 4),
    phase=_sge_phase,
)

# HTCondor: ids are "cluster.proc"; -af:j prints "12.0 2" (the job id, then
# JobStatus). A job leaves the queue when it ends; ids before -af, which
# takes every following word as an attribute.
_CONDOR_STATUS = {"1": "Idle", "2": "Running", "3": "Removed", "4": "Completed", "5": "Held",
                  "6": "Transferring_Output", "7": "Suspended"}
_HTCONDOR = Query(
    argv=lambda ids: ["condor_q", *ids, "-af:j", "JobStatus"],
    parse=lambda out: {i: _CONDOR_STATUS.get(s, s) for i, s in _columns(0, 1)(out).items()},
    phase=_phases({"Running"}, {"Removed", "Completed", "Transferring_Output"}),
)

# OAR: ``oarstat -s -j 1 -j 2`` prints "1: Running" per job it knows; finished
# jobs stay known (Terminated, Error).
_OAR = Query(
    argv=lambda ids: ["oarstat", "-s", *[arg for i in ids for arg in ("-j", i)]],
    parse=lambda out: dict(re.findall(r"^(\d+):\s*(\S+)", out, re.MULTILINE)),
    phase=_phases({"Running"}, {"Finishing", "Terminated", "Error", "toError"}),
)

#: provider -> how to ask its batch system about jobs
QUERIES: dict[str, Query] = {"slurm": _SLURM, "pbs": _PBS, "lsf": _LSF, "sge": _SGE,
                             "htcondor": _HTCONDOR, "oar": _OAR}


class JobStatusError(RuntimeError):
    """The batch system's status command failed (not installed, or it erred)."""


def job_states(provider: str, job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Ask ``provider``'s batch system about ``job_ids``, with one command.

    Returns
    -------
    dict
        {job id: (phase, state)} for every id: the phase (PENDING, RUNNING or
        ENDED) and the batch system's own word for the state ('' for a job it
        no longer lists, which has ended).

    Raises
    ------
    JobStatusError
        The command could not run or failed, naming it and quoting its stderr.
    """
    query = QUERIES[provider]
    argv = query.argv([str(i) for i in job_ids])
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobStatusError(f"{argv[0]}: {exc}") from None
    if proc.returncode != 0:
        other = [line for line in proc.stderr.splitlines()
                 if line.strip() and not re.search(query.unknown, line)]
        if other or not proc.stderr.strip():
            raise JobStatusError(f"{' '.join(argv)} exited with code {proc.returncode}: "
                                 + " / ".join(other or ["(no message)"]))
    listed = query.parse(proc.stdout)
    return {str(i): (query.phase(listed[str(i)]), listed[str(i)]) if str(i) in listed
            else (ENDED, "") for i in job_ids}


def stderr_log(provider: str, job) -> str | None:
    """The file dask-jobqueue's job script sends ``job``'s stderr to (None
    when it is not in the job's log directory).

    ``job`` is a dask-jobqueue Job with its ``job_id``, ``job_name``,
    ``name`` and ``log_directory``. The names follow each job class's header
    (``-e`` and ``-o`` directives); SGE joins stderr to stdout; OAR's
    output goes to the directory the job was submitted from, not the log
    directory.
    """
    directory, job_id = job.log_directory, job.job_id
    if directory is None or job_id is None:
        return None
    name = {
        "slurm": f"{job.job_name or 'worker'}-{job_id}.err",  # -e DIR/NAME-%J.err
        "lsf": f"{job.name or 'worker'}-{job_id}.err",  # -e DIR/WORKER-%J.err
        "pbs": f"{job.job_name}.e{job_id}",  # -e DIR/: the server names it NAME.eNUMBER
        "sge": f"{job.job_name}.o{job_id}",  # -e DIR/ -o DIR/ -j y: NAME.oNUMBER
        "htcondor": f"worker-{job_id}.err",  # Error = DIR/worker-CLUSTER.PROC.err
    }.get(provider)
    return os.path.join(directory, name) if name else None
