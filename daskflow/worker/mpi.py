"""MPI apps: an app called with ``parsl_resource_specification={"num_nodes":
N, "num_ranks": R, "ranks_per_node": K}`` runs its command (or, for a Python
app, its function) under the MPI launcher of the pool it lands on.

Slots keep concurrent MPI apps from oversubscribing a block. The first worker
of every block carries the block's slots as a Dask resource (``mpi-ranks``
on local and SSH pools, whose slots are cores; ``mpi-nodes`` on batch pools,
whose slots are nodes), and an MPI app asks for as many as it uses, so the
scheduler starts it only where that many are free. The task secedes while
the launcher runs, so the worker's thread is free for other work and several
MPI apps share a block up to its slots.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
import math
import os
import shlex
import shutil
import sys

from ..errors import MpiUnavailable
from ..launchers import mpi_template
from ..pool_resources import pool_of, task_resources

RANKS, NODES = "mpi-ranks", "mpi-nodes"
SPEC_KEYS = ("num_nodes", "num_ranks", "ranks_per_node")
PREFIX_VARIABLES = ("DASKFLOW_MPI_PREFIX", "PARSL_MPI_PREFIX")


@dataclass(frozen=True)
class MpiSpec:
    """The shape of one MPI run."""

    nodes: int
    ranks: int
    ranks_per_node: int

    @classmethod
    def parse(cls, app_name: str, spec: dict | None) -> MpiSpec | None:
        """The MPI shape a resource specification asks for (None: not an MPI call)."""
        if not spec or not any(k in spec for k in SPEC_KEYS):
            return None
        for key in SPEC_KEYS:
            value = spec.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise ValueError(f"app '{app_name}': resource specification {key} must be "
                                 f"an int >= 1, got {value!r}")
        nodes, ranks, per_node = (spec.get(k) for k in SPEC_KEYS)
        if ranks is None:
            ranks = (nodes or 1) * (per_node or 1)
        if nodes is None:
            nodes = math.ceil(ranks / per_node) if per_node else 1
        if per_node is None:
            per_node = math.ceil(ranks / nodes)
        if ranks > nodes * per_node:
            raise ValueError(f"app '{app_name}': {ranks} ranks do not fit on {nodes} node(s) "
                             f"with {per_node} ranks per node")
        return cls(nodes, ranks, per_node)


@dataclass(frozen=True)
class PoolMpi:
    """A pool's MPI capacity: ``unit`` (RANKS or NODES), slots per block, launcher."""

    label: str
    unit: str
    slots: int
    launcher: str

    @classmethod
    def of(cls, pool) -> PoolMpi:
        """From a profile pool, whose provider (``pool.provider_class``, see
        ``sites.providers``) says what slots count, how many a block has
        unless ``mpi.slots`` says, and the launcher unless ``mpi.launcher`` says."""
        provider = pool.provider_class
        slots = pool.mpi.slots
        if slots is None:
            slots = provider.default_mpi_slots()
        launcher = pool.mpi.launcher or provider.mpi_launcher(pool)
        return cls(pool.label, provider.mpi_unit, slots, mpi_template(launcher))

    @property
    def worker_resources(self) -> dict:
        """The resources of a block's first worker (none without slots)."""
        return {self.unit: self.slots} if self.slots else {}


def local_default() -> dict[str, PoolMpi]:
    """The embedded local cluster: one block, ``daskflow.local.mpi-slots``
    slots (default one per core), mpiexec."""
    import dask

    slots = dask.config.get("daskflow.local.mpi-slots") or os.cpu_count() or 1
    return {"local": PoolMpi("local", RANKS, slots, mpi_template("mpiexec"))}


@dataclass(frozen=True)
class MpiCall:
    """What a worker needs to launch one MPI call: its shape and the launcher
    template of every pool it may run on."""

    spec: MpiSpec
    launchers: tuple[tuple[str, str], ...]

    def prefix(self, label: str) -> str:
        """The launch prefix on pool ``label``, its program found on PATH or
        beside this Python (where an MPI installed in a virtualenv lives)."""
        template = dict(self.launchers).get(label) or self.launchers[0][1]
        words = shlex.split(template.format(nodes=self.spec.nodes, ranks=self.spec.ranks,
                                            ranks_per_node=self.spec.ranks_per_node))
        if shutil.which(words[0]) is None:
            beside = os.path.join(os.path.dirname(sys.executable), words[0])
            if os.access(beside, os.X_OK):
                words[0] = beside
        return shlex.join(words)


def plan(app_name: str, spec: MpiSpec, pools: dict[str, PoolMpi], executors,
         all_labels: list[str]) -> tuple[dict, MpiCall]:
    """The Dask resources an MPI call asks for and what its worker needs;
    fails, naming the app, when no pool it may run on can take it."""
    names = list(pools) if executors == "all" else [e for e in executors if e in pools]
    capable = [pools[n] for n in names if pools[n].slots > 0]
    if not capable:
        raise MpiUnavailable(app_name, spec, "no pool it may run on has MPI slots "
                             "(declare mpi: {slots: N} on a pool of the site profile)")
    units = {p.unit for p in capable}
    if len(units) > 1:
        raise MpiUnavailable(app_name, spec, "it may run on pools that count MPI slots in "
                             f"ranks ({', '.join(p.label for p in capable if p.unit == RANKS)}) "
                             f"and in nodes ({', '.join(p.label for p in capable if p.unit == NODES)});"
                             " pin it with executors=[...]")
    (unit,) = units
    demand = spec.ranks if unit == RANKS else spec.nodes
    fitting = [p for p in capable if p.slots >= demand]
    if not fitting:
        largest = max(capable, key=lambda p: p.slots)
        raise MpiUnavailable(app_name, spec, f"it needs {demand} {unit[4:]} but the largest "
                             f"block (pool '{largest.label}') has {largest.slots}")
    resources = {unit: demand}
    restriction = task_resources([p.label for p in fitting], all_labels)
    if restriction:
        resources.update(restriction)
    return resources, MpiCall(spec, tuple((p.label, p.launcher) for p in fitting))


def worker_pool_label() -> str:
    """The pool of the worker running this task (``local`` without pools)."""
    from distributed import get_worker

    return next(filter(None, map(pool_of, get_worker().state.total_resources)), "local")


@contextmanager
def seceded(when: bool = True):
    """Run the body off the worker's thread pool (a task waiting on a launcher)."""
    if not when:
        yield
        return
    from distributed import rejoin, secede

    secede()
    try:
        yield
    finally:
        rejoin()


def mpi_command(command: str, prefix: str) -> str:
    """``command`` under ``prefix``: as is when it uses ``$DASKFLOW_MPI_PREFIX``
    (or ``$PARSL_MPI_PREFIX``) itself, else every rank runs it under bash."""
    if any(f"${v}" in command or f"${{{v}}}" in command for v in PREFIX_VARIABLES):
        return command
    return f"{prefix} bash -c {shlex.quote(command)}"
