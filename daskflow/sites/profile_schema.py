"""The site profile schema: one declaration per section gives its keys, its
defaults and the check of each value.

Each section is a frozen pydantic dataclass that rejects unknown keys. Each
leaf value is checked by a :class:`Check`, which says in words what it
expects, so that a problem reads ``expected an integer >= 0, got int -1``
rather than pydantic's own wording (:mod:`daskflow.sites.profile` turns
pydantic's errors into a :class:`~daskflow.sites.profile.ProfileError`).
Checks are strict: YAML's ``1.5`` is not an integer and ``true`` is not 1.

A pool's type follows its ``provider``: each provider of
:mod:`daskflow.sites.providers` declares :class:`Pool` or a subclass with
the provider's own keys (written directly in the pool, next to ``label``).
The providers are looked up when a profile is validated, not when this
module is imported, so that a provider defined later counts too.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import field
from typing import Annotated, Any, Optional, TypeVar, Union

from dask.utils import parse_bytes, parse_timedelta
from pydantic import BeforeValidator, ConfigDict, Discriminator, Field, Tag, TypeAdapter
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError, core_schema

from .. import shipped
from ..launchers import LAUNCHERS, MPI_LAUNCHERS
from ..shipped import CONTAINER_RUNTIMES
from .provider_registry import PROVIDERS

STRATEGIES = ("simple", "none")
_WALLTIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
_SECTION = ConfigDict(extra="forbid")


def show(v) -> str:
    """``v`` as a problem quotes it: strings as themselves, others with their type."""
    return f"{type(v).__name__} {v!r}" if not isinstance(v, str) else repr(v)


def problem(message: str) -> PydanticCustomError:
    """A validation error whose message is ours, word for word."""
    return PydanticCustomError("daskflow", "{message}", {"message": message})


_NO = object()


class Check:
    """The check of one value: ``test(v)`` says if ``v`` is valid (or raises
    :func:`problem` to word the problem itself), ``convert(v)`` is what is
    stored; ``expected`` describes valid values; ``empty``, if given, is stored
    for ``null``."""

    def __init__(self, expected, test, convert=None, empty: Any = _NO):
        self._expected, self.test, self.convert, self.empty = expected, test, convert, empty

    @property
    def expected(self) -> str:
        """The valid values in words (``expected`` may be a function giving them)."""
        return self._expected() if callable(self._expected) else self._expected

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_plain_validator_function(self)

    def __call__(self, v):
        if v is None and self.empty is not _NO:
            return self.empty
        try:
            if self.test(v):
                return self.convert(v) if self.convert else v
        except PydanticCustomError:
            raise
        except (TypeError, ValueError, KeyError):  # how parse_bytes, parse_timedelta say no
            pass
        raise problem(f"expected {self.expected}, got {show(v)}")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return _int(v) or isinstance(v, float)


def _strings(v) -> bool:
    return isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v)


def _choice(what: str, choices) -> Check:
    """A check for one of ``choices`` (a tuple, or a function giving the current ones)."""
    def names() -> tuple[str, ...]:
        return tuple(choices() if callable(choices) else choices)

    def test(v):
        if v not in names():
            close = difflib.get_close_matches(str(v), names(), n=1)
            raise problem(f"unknown {what} {v!r}; expected one of: {', '.join(names())}"
                          + (f"; did you mean {close[0]!r}?" if close else ""))
        return True
    return Check(lambda: f"one of: {', '.join(names())}", test)


def _providers() -> dict:
    """The providers by name (read at validation time: see the module's docstring)."""
    return PROVIDERS


Text = Annotated[str, Check("a string", lambda v: isinstance(v, str))]
Count = Annotated[int, Check("an integer >= 0", lambda v: _int(v) and v >= 0)]
Positive = Annotated[int, Check("an integer >= 1", lambda v: _int(v) and v >= 1)]
Strings = Annotated[tuple[str, ...], Check("a list of strings", _strings, tuple, empty=())]
Label = Annotated[str, Check("an identifier (letters, digits, _; not starting with a digit)",
                             lambda v: isinstance(v, str) and v.isidentifier())]
Size = Annotated[int, Check("a size such as '2GB' or '512MiB'",
                            lambda v: (_int(v) or isinstance(v, str)) and parse_bytes(v) > 0,
                            parse_bytes)]
Duration = Annotated[float, Check(
    "a duration such as '60s' or '5m'",
    lambda v: (_number(v) or isinstance(v, str)) and parse_timedelta(v, "seconds") >= 0,
    lambda v: float(parse_timedelta(v, "seconds")))]
Walltime = Annotated[str, Check(  # an int here is YAML 1.1 reading unquoted 1:30:00 as 5400
    "a quoted string 'HH:MM:SS' (YAML reads unquoted 1:30:00 as a number)",
    lambda v: isinstance(v, str) and _WALLTIME.match(v))]
Address = Annotated[str, Check("'host:port'", lambda v: isinstance(v, str) and ":" in v
                               and v.rpartition(":")[2].isdigit())]
Security = Annotated[Union[str, dict], Check(
    "'none', 'tls' or a mapping {tls_ca_file, tls_cert, tls_key}",
    lambda v: v in ("none", "tls") or isinstance(v, dict) and all(isinstance(x, str) for x in (
        v.values())) and set(v) == {"tls_ca_file", "tls_cert", "tls_key"})]
Resources = Annotated[dict, Check("a mapping of name to positive number", lambda v: isinstance(
    v, dict) and all(isinstance(k, str) and _number(n) and n > 0 for k, n in v.items()), dict, {})]
Limits = Annotated[dict, Check("a mapping of licence name to a count >= 1", lambda v: isinstance(
    v, dict) and all(isinstance(k, str) and _int(n) and n >= 1 for k, n in v.items()), dict, {})]
Reach = Annotated[Union[str, tuple[str, ...]], Check(
    "'all' or a list of pool labels", lambda v: v == "all" or _strings(v),
    lambda v: v if v == "all" else tuple(v))]
MpiLauncher = Annotated[str, Check(
    f"one of: {', '.join(MPI_LAUNCHERS)}, or a command template using {{ranks}} "
    "(and {nodes}, {ranks_per_node})",
    lambda v: isinstance(v, str) and (v in MPI_LAUNCHERS or "{ranks}" in v))]

S = TypeVar("S")
#: a section: a mapping whose ``null`` means "all defaults"
Section = Annotated[S, BeforeValidator(lambda v: {} if v is None else v)]


@dataclass(frozen=True, config=_SECTION)
class Scheduler:
    """Where the scheduler listens; ``security``: ``"none"``, ``"tls"`` or a dict of TLS files."""

    host: Text = "127.0.0.1"
    dashboard: Optional[Address] = "127.0.0.1:8787"
    security: Security = "none"


@dataclass(frozen=True, config=_SECTION)
class Block:
    """One block: one batch job, pod or ssh host group. ``memory`` is bytes per node.

    ``drain`` and ``drain_stagger`` (batch jobs only, see ``sites.drain``):
    a worker stops taking tasks ``drain`` seconds, plus a random part of
    ``drain_stagger``, before its job's walltime, so that it leaves before
    the batch system kills it. Unset, they are 180 s and 60 s, cut to a
    third and a tenth of the walltime so that a short walltime still
    leaves time to work (``BatchProvider.check`` refuses values that do not)."""

    nodes: Positive = 1
    cores: Optional[Positive] = None
    memory: Optional[Size] = None
    walltime: Walltime = "00:10:00"
    queue: Optional[Text] = None
    account: Optional[Text] = None
    job_extra: Strings = ()
    worker_init: Strings = ()
    drain: Optional[Duration] = None
    drain_stagger: Optional[Duration] = None

    @property
    def walltime_seconds(self) -> int:
        """The walltime in seconds."""
        return walltime_seconds(self.walltime)

    @property
    def drain_seconds(self) -> float:
        """Seconds before the walltime at which workers stop taking tasks."""
        return drain_seconds(self.drain, self.walltime_seconds)

    @property
    def drain_stagger_seconds(self) -> float:
        """The window (seconds, before ``drain``) in which each worker's drain falls."""
        return drain_stagger_seconds(self.drain_stagger, self.walltime_seconds)

    def drain_problem(self) -> str | None:
        """Why the drain does not fit in the walltime of a batch job; None if it does
        (the defaults always fit: a value was set)."""
        drain, stagger = self.drain_seconds, self.drain_stagger_seconds
        if drain + stagger < self.walltime_seconds:
            return None
        return (f"block.drain ({drain:g} s) + block.drain_stagger ({stagger:g} s) must be "
                f"less than block.walltime ({self.walltime!r}, {self.walltime_seconds} s), "
                "or the workers would stop taking tasks before they start; lower them or "
                "raise the walltime")


DRAIN = 180.0  #: seconds; a block's default ``drain``, at most a third of its walltime
DRAIN_STAGGER = 60.0  #: seconds; the default ``drain_stagger``, at most a tenth of it


def walltime_seconds(walltime: str) -> int:
    """``'HH:MM:SS'`` in seconds."""
    h, m, s = map(int, walltime.split(":"))
    return h * 3600 + m * 60 + s


def drain_seconds(drain: float | None, walltime: float) -> float:
    """A block's ``drain``: the value given, else the default that fits ``walltime``."""
    return float(drain) if drain is not None else min(DRAIN, walltime / 3)


def drain_stagger_seconds(stagger: float | None, walltime: float) -> float:
    """A block's ``drain_stagger``: the value given, else the default that fits ``walltime``."""
    return float(stagger) if stagger is not None else min(DRAIN_STAGGER, walltime / 10)


@dataclass(frozen=True, config=_SECTION)
class Scaling:
    """Parsl's block scaling; ``max_idletime`` is in seconds. ``init_blocks`` and
    ``min_blocks`` are at most ``max_blocks`` (checked with the whole profile)."""

    strategy: Annotated[str, _choice("strategy", STRATEGIES)] = "simple"
    init_blocks: Count = 1
    min_blocks: Count = 0
    max_blocks: Count = 1
    parallelism: Annotated[float, Check("a number p with 0 < p <= 1",
                                        lambda v: _number(v) and 0 < v <= 1, float)] = 1.0
    max_idletime: Duration = 120.0


@dataclass(frozen=True, config=_SECTION)
class Mpi:
    """How a pool runs MPI apps: ``launcher`` (a name in ``MPI_LAUNCHERS`` or
    a command template with ``{ranks}``, ``{nodes}``, ``{ranks_per_node}``)
    and the ``slots`` of one block (ranks for local and ssh pools, nodes for
    batch pools; 0: no MPI apps). ``slots`` None: the provider's default."""

    launcher: Optional[MpiLauncher] = None
    slots: Optional[Count] = None


@dataclass(frozen=True, config=_SECTION)
class Container:
    """A container that bash apps run in (validated here; the calls ship
    ``shipped.Container``, see ``as_shipped``)."""

    runtime: Annotated[str, _choice("runtime", CONTAINER_RUNTIMES)]
    image: Text
    options: Strings = ()
    runtime_options: Strings = ()

    def as_shipped(self) -> shipped.Container:
        return shipped.Container(self.runtime, self.image, tuple(self.options),
                                 tuple(self.runtime_options))


@dataclass(frozen=True, config=_SECTION)
class Pool:
    """A pool of workers (a Parsl executor); the subclass its provider
    declares adds the provider's keys, which ``options`` returns."""

    label: Label
    provider: Annotated[str, _choice("provider", _providers)]
    launcher: Annotated[str, _choice("launcher", tuple(LAUNCHERS))] = "single"
    block: Section[Block] = field(default_factory=Block)
    workers_per_node: Optional[Positive] = 1
    threads_per_worker: Positive = 1
    resources: Resources = field(default_factory=dict)
    scaling: Section[Scaling] = field(default_factory=Scaling)
    reachable_from: Reach = "all"
    mpi: Section[Mpi] = field(default_factory=Mpi)
    container: Optional[Container] = None

    @property
    def options(self) -> dict:
        """The provider-specific keys and their values."""
        return {k: getattr(self, k) for k in provider_keys(type(self))}

    @property
    def provider_class(self):
        """The provider (a class of :mod:`daskflow.sites.providers`) that starts this pool."""
        return _providers()[self.provider]


_POOL_KEYS = tuple(f.name for f in dataclasses.fields(Pool))


def provider_keys(pool_type: type[Pool]) -> tuple[str, ...]:
    """The keys that ``pool_type`` adds to every pool's."""
    return tuple(f.name for f in dataclasses.fields(pool_type) if f.name not in _POOL_KEYS)


def _provider(pool) -> str:
    """The tag choosing a pool's type: its provider, or ``?`` if that is unknown."""
    p = pool.get("provider") if isinstance(pool, dict) else getattr(pool, "provider", None)
    return p if isinstance(p, str) and p in _providers() else "?"


def _common_keys(pool):
    """A pool of unknown provider, checked as any pool: drop every provider's own keys."""
    own = {k for p in _providers().values() for k in provider_keys(p.options)}
    return {k: v for k, v in pool.items() if k not in own} if isinstance(pool, dict) else pool


def _pool_list(v):
    if not (isinstance(v, (list, tuple)) and v):
        raise problem(f"expected a non-empty list of pools, got {show(v)}")
    return v


_POOL_ADAPTERS: dict[tuple, TypeAdapter] = {}


def _pool_adapter() -> TypeAdapter:
    """Validates one pool as the type of its provider (tagged with the
    provider's name, so errors read ``pools[0].slurm.block...``), for the
    providers known now."""
    types = tuple((name, p.options) for name, p in _providers().items())
    if types not in _POOL_ADAPTERS:
        _POOL_ADAPTERS[types] = TypeAdapter(Annotated[Union[
            tuple(Annotated[t, Tag(name)] for name, t in types)
            + (Annotated[Pool, BeforeValidator(_common_keys), Tag("?")],)],
            Discriminator(_provider)])
    return _POOL_ADAPTERS[types]


class AnyPool:
    """A pool of any provider (one known when the profile is validated)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        return core_schema.no_info_plain_validator_function(
            lambda v: _pool_adapter().validate_python(v),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v, info: _pool_adapter().dump_python(v, mode=info.mode), info_arg=True))


@dataclass(frozen=True, config=_SECTION)
class Profile:
    """A validated site profile; ``path`` is the file it came from."""

    name: Text
    description: Annotated[str, Check("a string", lambda v: isinstance(v, str), empty="")] = ""
    retries: Count = 0
    scheduler: Section[Scheduler] = field(default_factory=Scheduler)
    pools: Annotated[tuple[AnyPool, ...], BeforeValidator(_pool_list)] = Field(
        default=None, validate_default=True)
    limits: Limits = field(default_factory=dict)
    staging: Annotated[dict, Check("a mapping", lambda v: isinstance(v, dict), dict, {})] = field(
        default_factory=dict)
    path: Optional[str] = field(default=None, compare=False, init=False)

    def to_dict(self) -> dict:
        """The profile as plain YAML-ready data, defaults filled in (valid profile input)."""
        return PROFILE.dump_python(self, mode="json", exclude={"path"})


#: validates raw profile data into a :class:`Profile`, and dumps one back
PROFILE = TypeAdapter(Profile)
