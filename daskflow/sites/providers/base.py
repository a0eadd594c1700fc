"""The base of every provider: what ``start`` asks of one (the family's
shared logic), and the registry that a member joins by being defined.

A provider is a class, never instantiated: class attributes declare what it
is (its profile name, the Parsl providers it stands for, its pool type with
its own keys and their defaults, its MPI unit, whether blocks may span
several nodes); ``block`` makes the worker specs of one block. Defining a
subclass with a ``name`` registers it: profiles may use it at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, ClassVar

from distributed.security import Security

from ...launchers import LAUNCHERS
from ...worker.mpi import NODES, RANKS
from ..profile_schema import Pool
from ..provider_registry import PROVIDERS


@dataclass(frozen=True)
class BlockContext:
    """What every block of a cluster shares: the scheduler's ``host``, the
    TLS options of in-process workers (``tls``) and of workers that read
    certificates from files (``file_tls``), the run's ``security`` and
    ``token``, where jobs write logs, the workers' death timeout, and the
    cluster's current worker specs (``worker_spec()``)."""

    host: str
    tls: dict
    file_tls: dict
    security: Security | None
    token: str
    log_directory: str | None
    death_timeout: float
    worker_spec: Callable[[], dict]


class Provider:
    """One way of obtaining blocks (Parsl's ``ExecutionProvider``)."""

    name: ClassVar[str]  #: the profile's ``provider:`` value
    parsl: ClassVar[tuple[str, ...]] = ()  #: the Parsl provider classes it stands for
    options: ClassVar[type[Pool]] = Pool  #: the pool type: the provider's own keys, defaults
    mpi_unit: ClassVar[str] = NODES  #: what a block's MPI slots count: RANKS or NODES
    mpi_launcher_default: ClassVar[str | None] = None  #: MPI launcher unless the pool says
    multi_node: ClassVar[bool] = False  #: may a block span several nodes
    batch: ClassVar[bool] = False  #: a batch system: block launchers apply, jobs are watched
    watched: ClassVar[bool] = False  #: ``WorkerWatch`` follows its workers' start
    file_tls: ClassVar[bool] = False  #: its workers read TLS certificates from files
    needs: ClassVar[tuple[str, str] | None] = None  #: (module, pip extra) it imports

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            PROVIDERS[cls.name] = cls

    @classmethod
    def prepare(cls) -> None:
        """Import what blocks need, in the caller's (main) thread: see ``start``."""

    @classmethod
    def check(cls, pool: Pool, where: str) -> None:
        """Refuse, starting the message with ``where``, a pool this provider cannot start."""

    @classmethod
    def default_mpi_slots(cls) -> int:
        """A block's MPI slots when the pool declares none (0: no MPI apps)."""
        return 0

    @classmethod
    def mpi_launcher(cls, pool: Pool) -> str:
        """The MPI launcher when ``mpi.launcher`` is not set: the provider's,
        else the block launcher's MPI form, else ``mpiexec``."""
        if cls.mpi_launcher_default:
            return cls.mpi_launcher_default
        return pool.launcher if LAUNCHERS[pool.launcher].mpi else "mpiexec"

    @classmethod
    def block(cls, pool: Pool, index: int, resources: dict, slots: dict,
              context: BlockContext) -> dict:
        """Block ``index`` of ``pool`` as ``SpecCluster`` worker specs (name ->
        spec); its workers carry ``resources``, its first one also ``slots``."""
        raise NotImplementedError(f"provider {cls.name!r} does not say how to start a block")


class ProviderTable(Mapping):
    """A live view of the registry: provider name -> ``attribute`` of the class."""

    def __init__(self, attribute: str):
        self.attribute = attribute

    def __getitem__(self, name: str):
        return getattr(PROVIDERS[name], self.attribute)

    def __iter__(self):
        return iter(PROVIDERS)

    def __len__(self) -> int:
        return len(PROVIDERS)


#: provider name -> its pool type
POOL_TYPES = ProviderTable("options")


def provider_for_parsl(name: str) -> type[Provider]:
    """The provider standing for Parsl provider class ``name``
    (``SlurmProvider`` or ``parsl.providers.SlurmProvider``)."""
    short = name.rpartition(".")[2]
    for provider in PROVIDERS.values():
        if short in provider.parsl:
            return provider
    known = sorted(p for provider in PROVIDERS.values() for p in provider.parsl)
    raise ValueError(f"Parsl provider {short!r} has no daskflow counterpart; expected one "
                     f"of: {', '.join(known)}")


__all__ = ["BlockContext", "NODES", "POOL_TYPES", "PROVIDERS", "Provider", "RANKS",
           "provider_for_parsl"]
