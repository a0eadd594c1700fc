"""What became of the batch jobs of a pool: still queued, running, or ended,
and where each job's stderr went.

dask-jobqueue submits a job per block and cancels it at the end, but never
asks about it again: a job that dies at once (a ``worker_init`` line that
fails, a wrong ``python``) leaves its block's tasks waiting forever.
``job_states`` asks the batch system, with one command per call for all the
given jobs (the provider's ``stderr_log`` names the file dask-jobqueue's job
script sends the job's stderr to). ``WorkerWatch`` calls both from a thread, never
in the scheduler's event loop: a batch system's command may take seconds.

Each batch provider (``providers/batch.py``) declares its ``status``
query: the command, the parser of its output, the stderr lines that say a
job is no longer known (it ended long enough ago to be forgotten: not an
error), and the phase of each of the batch system's states. Only Slurm is
tested here (a real single-node Slurm); the PBS, LSF, SGE, HTCondor and OAR
queries follow those systems' documented output formats.
"""

from __future__ import annotations

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


def columns(id_column: int, state_column: int) -> Callable[[str], dict[str, str]]:
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


def phases(running: set[str], ended: set[str]) -> Callable[[str], str]:
    return lambda word: RUNNING if word in running else ENDED if word in ended else PENDING


class JobStatusError(RuntimeError):
    """The batch system's status command failed (not installed, or it erred)."""


def job_states(query: Query, job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Ask a batch system (its provider's ``status`` query) about ``job_ids``,
    with one command.

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
