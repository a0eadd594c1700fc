"""Launchers: the one table of how a command is started on the nodes of a
block, as Parsl's launcher classes do.

Each row gives two command prefixes: ``block``, which runs one copy of the
worker command on each of a block's ``{nodes}`` nodes (the pool's
``launcher``), and ``mpi``, which runs ``{ranks}`` ranks on ``{nodes}``
nodes, ``{ranks_per_node}`` per node (the pool's ``mpi.launcher``), and
the environment variables in which it gives each copy its rank (read by
``sites.onnode`` to name each node's worker). Both
the driver (job scripts, MPI plans) and the workers may import this module:
it imports nothing of daskflow. Adding a launcher is one row here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Launcher:
    """One row: ``block``/``mpi`` are templates (None: cannot do that),
    ``parsl`` the Parsl launcher classes it stands for, ``ranks`` the
    variables holding a copy's rank."""

    name: str
    block: str | None
    mpi: str | None
    parsl: tuple[str, ...]
    ranks: tuple[str, ...] = ()

    def block_prefix(self, nodes: int) -> str:
        """The words before a worker command that start one copy per node ('' for none)."""
        return self.block.format(nodes=nodes) if self.block else ""

    def mpi_prefix(self, ranks: int, nodes: int, ranks_per_node: int) -> str:
        """The words before a command run as ``ranks`` MPI ranks on ``nodes`` nodes."""
        if self.mpi is None:
            raise ValueError(f"launcher {self.name!r} does not launch MPI ranks")
        return self.mpi.format(ranks=ranks, nodes=nodes, ranks_per_node=ranks_per_node)


LAUNCHERS: dict[str, Launcher] = {row.name: row for row in (
    Launcher("single", None, None, ("SingleNodeLauncher", "SimpleLauncher")),
    Launcher("srun", "srun --nodes={nodes} --ntasks={nodes} --ntasks-per-node=1",
             "srun --nodes={nodes} --ntasks={ranks} --ntasks-per-node={ranks_per_node}",
             ("SrunLauncher", "SrunMPILauncher"), ("SLURM_PROCID", "PMIX_RANK")),
    Launcher("mpiexec", "mpiexec -n {nodes} -ppn 1",  # MPICH's Hydra, Intel MPI
             "mpiexec -n {ranks} -ppn {ranks_per_node}", ("MpiExecLauncher",),
             ("PMI_RANK", "PMIX_RANK")),
    Launcher("aprun", "aprun -n {nodes} -N 1", "aprun -n {ranks} -N {ranks_per_node}",
             ("AprunLauncher",), ("ALPS_APP_PE",)),
    Launcher("mpirun", "mpirun -np {nodes} --map-by ppr:1:node",  # Open MPI's
             "mpirun -np {ranks} --map-by ppr:{ranks_per_node}:node", ("MpiRunLauncher",),
             ("OMPI_COMM_WORLD_RANK", "PMIX_RANK")),
)}

#: the launchers that can run MPI ranks (a pool's ``mpi.launcher`` names one)
MPI_LAUNCHERS = tuple(name for name, row in LAUNCHERS.items() if row.mpi)

#: Parsl launchers with no row, and why
REFUSED = {
    "GnuParallelLauncher": "daskflow starts one worker command per node with a launcher "
                           "(srun, mpiexec, aprun, mpirun), not with GNU parallel over ssh",
    "WrappedLauncher": "to run workers or apps inside a wrapper such as a container, use "
                       "the pool's container section or block.worker_init",
    "JsrunLauncher": "LSF blocks are single-node in daskflow; use launcher single",
}


def mpi_template(launcher: str) -> str:
    """The MPI command template of ``launcher``: a row's, or ``launcher``
    itself when it is already a template (a profile's own command)."""
    row = LAUNCHERS.get(launcher)
    return row.mpi if row is not None and row.mpi else launcher


def launcher_for_parsl(name: str) -> Launcher:
    """The row standing for Parsl launcher class ``name`` (``SrunLauncher``
    or ``parsl.launchers.SrunLauncher``); refuses, saying why, those without one."""
    short = name.rpartition(".")[2]
    for row in LAUNCHERS.values():
        if short in row.parsl:
            return row
    if short in REFUSED:
        raise ValueError(f"Parsl launcher {short!r} is not supported: {REFUSED[short]}")
    known = sorted(p for row in LAUNCHERS.values() for p in row.parsl)
    raise ValueError(f"unknown Parsl launcher {short!r}; expected one of: {', '.join(known)}")
