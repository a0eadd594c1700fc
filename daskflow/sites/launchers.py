"""Multi-node blocks (Parsl's ``SrunLauncher``, ``MpiExecLauncher``,
``AprunLauncher``, ...): a batch job's worker command is prefixed with the
pool's launcher (a row of :mod:`daskflow.launchers`), which starts one copy
on every node of the job.

Each copy must have its own worker name, so the copies run
``python -m daskflow.sites.onnode`` which appends the node's rank (read from
the launcher's environment) to the name before it becomes a Dask worker.
"""

from __future__ import annotations

import shlex
import sys

from ..launchers import LAUNCHERS
from .profile_schema import Pool


def launch_prefix(pool: Pool) -> str:
    """The launcher words before the worker command ('' for ``single``)."""
    return LAUNCHERS[pool.launcher].block_prefix(pool.block.nodes)


def worker_python(pool: Pool) -> str:
    """The ``python`` dask-jobqueue puts before ``-m distributed.cli.dask_worker``."""
    python = shlex.quote(sys.executable)
    prefix = launch_prefix(pool)
    return f"{prefix} {python} -m daskflow.sites.onnode" if prefix else python


def node_suffixes(pool: Pool) -> list[str]:
    """Name suffixes of a block's workers: ``-nR`` per node with a launcher,
    then ``-I`` per worker process when a node runs several."""
    nodes = [f"-n{r}" for r in range(pool.block.nodes)] if launch_prefix(pool) else [""]
    processes = pool.workers_per_node or 1
    per_node = [f"-{i}" for i in range(processes)] if processes > 1 else [""]
    return [n + p for n in nodes for p in per_node]
