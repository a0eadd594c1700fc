"""The types an app call ships from the client to the workers.

Both sides import this module and nothing heavier: the client builds these
objects, the worker's task body reads them, and the provenance plugin
recognises chunk members by ``MemberRef``. Each class pickles compactly
(``__reduce__`` to its fields), since one is sent with every call.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import pickle
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import cloudpickle

from .errors import brief

ORIGIN = "_daskflow_origin"  # attribute set on exceptions: (app_name, tid, ident)
UNLOADABLE = "unloadable"  # the kind of an app whose function cannot be loaded here
CONTAINER_RUNTIMES = ("apptainer", "singularity", "podman", "docker")


class AppDef:
    """What a worker needs to run an app: the function, its name, kind and
    the app-level policies (cache, retry handler).

    The pickled form is computed once per app and unpickled once per worker
    process (cached by its bytes), so a call ships a few hundred bytes
    instead of re-pickling a notebook function each time.
    """

    __slots__ = ("func", "name", "kind", "accepts", "identity", "cache", "ignore_for_cache",
                 "retry_handler", "_pickled", "__weakref__")

    def __init__(self, func: Callable, name: str, kind: str, accepts: frozenset[str] | None,
                 identity: str = "", cache: bool | str = False,
                 ignore_for_cache: tuple[str, ...] = (), retry_handler: Callable | None = None):
        self.func = func
        self.name = name
        self.kind = kind  # "python" | "bash" | "join"
        self.accepts = accepts  # special keywords the function takes; None: takes **kwargs
        self.identity = identity  # module.qualname:source digest (memo keys, provenance)
        self.cache = cache
        self.ignore_for_cache = ignore_for_cache
        self.retry_handler = retry_handler
        self._pickled: bytes | None = None

    def _fields(self) -> tuple:
        return (self.func, self.name, self.kind, self.accepts, self.identity, self.cache,
                self.ignore_for_cache, self.retry_handler)

    def __reduce__(self):
        if getattr(_pickling, "active", False):
            # Inside the pickling of an app function that refers to apps (a
            # recursive join, say): let that pickler's memo close the cycle.
            return (AppDef, self._fields())
        if self._pickled is None:
            _pickling.active = True
            try:
                self._pickled = opaque(cloudpickle.dumps(self._fields()))
            finally:
                _pickling.active = False
        return (_load_appdef, (self._pickled, self.name, self.kind))


_pickling = threading.local()

_MAIN = b"__main__"


class Opaque(bytes):
    """A pickle carried inside another, put in a ``__reduce__`` in place of
    its bytes (``opaque``); it unpickles as those bytes.

    distributed pickles each task with ``pickle`` and, when the result holds
    the bytes ``__main__`` (a reference to the script's module, which a
    worker lacks), pickles the whole task again with cloudpickle, which is
    several times slower. A function, argument or description that daskflow
    already cloudpickled holds those bytes as mere data whenever the app was
    defined in a script or notebook, so every call would pay twice. Escaped
    (each ``_`` followed by a zero byte), the bytes no longer read
    ``__main__``; anything else of the task that refers to ``__main__``
    still makes distributed use cloudpickle.
    """

    __slots__ = ()

    def __reduce__(self):
        return (_unescape, (self.replace(b"_", b"_\x00"),))


def opaque(blob: bytes) -> bytes:
    """``blob``, wrapped in ``Opaque`` if it holds the bytes ``__main__``."""
    return Opaque(blob) if _MAIN in blob else blob


def _unescape(escaped: bytes) -> bytes:
    return escaped.replace(b"_\x00", b"_")


@functools.lru_cache(maxsize=512)
def _load_appdef(blob: bytes, name: str = "?", kind: str = "python") -> AppDef:
    """The app from its pickled fields; an app whose function cannot be
    unpickled here (defined in a module only the driver has, say) becomes
    one whose calls fail naming it: raising here would fail the worker's
    whole message from the scheduler and take the worker down instead."""
    try:
        app = AppDef(*pickle.loads(blob))
    except Exception as exc:
        return AppDef(brief(exc), name, UNLOADABLE, None)
    app._pickled = opaque(blob)
    return app


def reduce_to_fields(self):
    """Pickle a dataclass as (class, field values): the smallest form, and
    the fastest to load, for objects sent with every call."""
    cls = type(self)
    getter = _FIELD_GETTERS.get(cls)
    if getter is None:  # dataclasses.fields is slow: once per class
        names = tuple(f.name for f in dataclasses.fields(cls))
        getter = _FIELD_GETTERS[cls] = _fields_getter(names)
    return (cls, getter(self))


_FIELD_GETTERS: dict[type, Callable[[Any], tuple]] = {}


def _fields_getter(names: tuple[str, ...]) -> Callable[[Any], tuple]:
    if len(names) > 1:
        return operator.attrgetter(*names)
    # attrgetter of one name returns the value, not a tuple (and takes at least one)
    return lambda obj: tuple(getattr(obj, name) for name in names)


@dataclass(slots=True, eq=False, repr=False)
class RunSettings:
    """Settings of the run a call belongs to (one object per session).

    ``token`` ends every key of the run (the provenance plugin recognises
    its tasks by it); ``report`` turns on the reports the task body sends to
    it; ``checkpoint`` is the store URL of cached results (None: no memo
    across sessions), written per ``checkpoint_mode``; ``reuse`` lists
    earlier stores read but never written; ``results`` is where small
    results are kept (a ``recovery.KeptResults``: directory and the run's
    key that signs them).

    ``memo`` is how ``cache=`` apps are keyed: ``"dask"`` (values as Dask
    tokenizes them, or by a registered ``id_for_memo``), ``"parsl"`` (every
    value by its ``id_for_memo``, Parsl's rule) or ``"off"`` (no caching).

    ``checkpoint_key`` signs and verifies checkpoint entries (see
    ``signing``): the driver derives it from the user's key and ships it here
    because workers may run where the user's key file is not. None: workers
    derive it from the key file themselves. There is deliberately no repr
    (the keys must not reach logs); ``KeptResults`` hides its key too.
    """

    token: str
    report: bool = False
    checkpoint: str | None = None
    checkpoint_mode: str = "task_exit"
    checkpoint_period: float = 60.0
    reuse: tuple[str, ...] = ()
    checksum_limit: int = 0
    results: Any = None  # kept small results: a worker.recovery.KeptResults
    results_max_bytes: int = 0
    checkpoint_key: bytes | None = None
    memo: str = "dask"
    shares: bool = False  # workers in the driver's process: results that do not pickle travel
    # by reference (``Shared``)

    __reduce__ = reduce_to_fields


@dataclass(slots=True, eq=False)
class Options:
    """Per-call settings of an app call (shared by calls that do not override them).

    ``mpi``: an ``MpiCall`` (see ``worker.mpi``) or None; ``limits``: licence
    leases ``(name, count, total)``; ``containers``: ``(pool label or "*"
    for the app's own, Container)`` pairs; ``retry_handler``: the run-wide
    cost model (a dotted path, or a ``Packed`` function); ``staging``: the
    staging settings of a call that names remote Files."""

    walltime: float | None = None
    stdout: Any = None
    stderr: Any = None
    outputs: Any = ()
    retries: int = 0
    has_members: bool = False
    run: RunSettings = field(default_factory=lambda: RunSettings(""))
    retry_handler: Any = None
    staging: Any = None
    mpi: Any = None
    limits: tuple = ()
    containers: tuple = ()
    priority: float = 0  # Dask's: higher runs first among runnable tasks

    def replace(self, **changes) -> Options:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    __reduce__ = reduce_to_fields


@dataclass(slots=True, frozen=True)
class Container:
    """A container that bash apps run in (``runtime`` one of ``CONTAINER_RUNTIMES``):
    ``options`` go to its ``run``/``exec``, ``runtime_options`` to the
    runtime itself, before the subcommand (podman's ``--runtime runc``)."""

    runtime: str
    image: str
    options: tuple[str, ...] = ()
    runtime_options: tuple[str, ...] = ()

    __reduce__ = reduce_to_fields


@dataclass(slots=True, eq=False)
class Failure:
    """The outcome of one failed call inside a chunk (its tagged exception)."""

    exc: BaseException

    __reduce__ = reduce_to_fields


class Outcomes(list):
    """A chunk task's outcomes, one per call (values and ``Failure``s).

    A list subclass so that distributed pickles it whole: it sends a plain
    list item by item (one pickle and frame each, about 30 µs per call of a
    chunk when the client gathers it)."""

    __slots__ = ()


class MemberRef:
    """Marker class: ``(MemberRef, chunk key, index)`` in the arguments
    stands for the result of call ``index`` of that chunk, whose outcomes the
    task gets in its ``chunks`` table."""


class NotLoadable(Exception):
    """A ``Packed`` argument that cannot be loaded here (type name, cause)."""


@dataclass(slots=True, eq=False, repr=False)
class Shared:
    """An argument passed by reference to workers that run in the driver's
    own process (``Client(processes=False)``, and Parsl's ThreadPoolExecutor):
    the task gets the very object, not a copy, so locks, events and shared
    state behave as between threads. Only the token travels; the object
    stays in ``SharedObjects`` until its client closes."""

    token: int
    type_name: str

    def load(self):
        try:
            return _SHARED[self.token]
        except KeyError:
            raise NotLoadable(self.type_name, "it was passed by reference, which only workers "
                                              "in the driver's own process can take") from None

    def __reduce__(self):  # a script's types are named __main__.T: see Opaque
        return (_shared, (self.token, opaque(self.type_name.encode())))

    def __dask_tokenize__(self):
        return ("daskflow.Shared", self.token)

    def __repr__(self) -> str:  # what provenance shows of it
        return f"<{self.type_name}: by reference>"


_SHARED: dict[int, Any] = {}  # token -> object, for workers in this process
_SHARED_LOCK = threading.Lock()
_SHARED_TOKENS = iter(range(1, 1 << 62))


_RUNS: dict[str, "SharedObjects"] = {}  # run token -> its objects, in this process


def shared_objects(run_token: str) -> "SharedObjects":
    """The objects a run passes by reference (its arguments, and its results
    that do not pickle), for the client and its in-process workers alike."""
    with _SHARED_LOCK:
        return _RUNS.setdefault(run_token, SharedObjects(run_token))


class SharedObjects:
    """The objects one run passed by reference; released when its client closes."""

    def __init__(self, run_token: str | None = None):
        self._run_token = run_token
        self._tokens: list[int] = []

    def share(self, obj) -> Shared:
        with _SHARED_LOCK:
            token = next(_SHARED_TOKENS)
            _SHARED[token] = obj
            self._tokens.append(token)
        cls = obj if isinstance(obj, type) else type(obj)
        return Shared(token, f"{cls.__module__}.{cls.__qualname__}")

    def release(self) -> None:
        with _SHARED_LOCK:
            for token in self._tokens:
                _SHARED.pop(token, None)
            self._tokens.clear()
            if _RUNS.get(self._run_token) is self:
                del _RUNS[self._run_token]


@dataclass(slots=True, eq=False, repr=False)
class Packed:
    """An argument of a type the worker may not have (an object, class or
    function of the user's own modules), pickled on the client and loaded
    only in the task body.

    distributed unpickles a task's arguments when the worker receives the
    task; if that fails, it closes the worker, and the task goes on to kill
    the next one. Loaded here instead, such an argument fails its own call
    with ``ArgumentNotLoadable`` and the worker stays up. The scheduler
    never unpickles it either.
    """

    blob: bytes
    type_name: str

    def load(self):
        try:
            return pickle.loads(self.blob)
        except Exception as exc:
            raise NotLoadable(self.type_name, brief(exc)) from None

    def __reduce__(self):  # a script's types are named __main__.T: see Opaque
        return (_packed, (opaque(self.blob), opaque(self.type_name.encode())))

    def __dask_tokenize__(self):
        return ("daskflow.Packed", self.blob)

    def __repr__(self) -> str:  # what provenance shows of it
        return f"<{self.type_name}: {len(self.blob)} bytes>"


def _packed(blob: bytes, type_name: bytes) -> Packed:
    return Packed(blob, type_name.decode())


def _shared(token: int, type_name: bytes) -> Shared:
    return Shared(token, type_name.decode())
