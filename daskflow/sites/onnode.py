"""Run by a launcher (a row of ``daskflow.launchers``: srun, mpiexec, ...)
on every node of a multi-node block:
``python -m daskflow.sites.onnode -m distributed.cli.dask_worker ARGS``.

Gives this node's worker a name of its own (``--name NAME`` becomes
``NAME-nRANK``, the rank read from the launcher's environment), then becomes
the Dask worker process.
"""

from __future__ import annotations

import os
import sys

from ..launchers import LAUNCHERS

#: variables holding a task's rank: every launcher's, first wins
RANK_VARIABLES = tuple(dict.fromkeys(v for row in LAUNCHERS.values() for v in row.ranks))


def node_rank(environ=os.environ) -> int:
    for name in RANK_VARIABLES:
        if environ.get(name, "").isdigit():
            return int(environ[name])
    raise SystemExit("daskflow.sites.onnode: no rank in the environment (looked for "
                     f"{', '.join(RANK_VARIABLES)}); start it with a launcher: "
                     f"{', '.join(n for n, row in LAUNCHERS.items() if row.block)}")


def worker_argv(argv: list[str], rank: int) -> list[str]:
    """``argv`` (after ``onnode``) with ``-nRANK`` appended to the ``--name``
    value; the block's MPI slots (``mpi-*`` resources) stay with node 0."""
    out = list(argv)
    if "--name" not in out[:-1]:
        raise SystemExit("daskflow.sites.onnode: the worker command has no --name")
    for i, word in enumerate(out[:-1]):
        if word == "--name":
            out[i + 1] = f"{out[i + 1]}-n{rank}"
        elif word == "--resources" and rank != 0:
            out[i + 1] = ",".join(r for r in out[i + 1].split(",") if not r.startswith("mpi-"))
    return out


def main() -> None:
    argv = worker_argv(sys.argv[1:], node_rank())
    os.execv(sys.executable, [sys.executable, *argv])


if __name__ == "__main__":
    main()
