"""What a call's arguments become before they are submitted.

Dask resolves the futures it finds in a task's arguments; ``walk`` marks
what only the task body can resolve: a member of a chunk becomes
``(MemberRef, chunk key, index)``, its chunk's future going once in the
call's ``chunks`` table (a fan-in over thousands of members then gives Dask
a few dependencies, not thousands of nested ones), and a value of the user's own types a
``Packed`` pickle that the body loads (a worker that cannot load it fails
that call, not itself). Futures Dask does not know become Dask futures: a
``concurrent.futures.Future`` its value (done) or a task that waits for it
(``stand_in``), a dict with futures among its keys a task that builds it.
A Dask collection (``dask.delayed``, arrays, bags, dataframes) becomes the
future of its computation on the cluster (``client.compute``): the call
gets its value, computed where the workers are. ``plain`` spares the common
case the walk, and ``by_key`` gives cached apps a token that names futures
by key.

Which futures are dependencies follows ``daskflow.dependencies``: ``deep``
(any depth of lists, tuples, sets and dicts) or ``shallow`` (Parsl's default
resolver: arguments, keyword values and items of ``inputs=`` only).
"""

from __future__ import annotations

import concurrent.futures
import pickle
import threading
import types
import uuid

import cloudpickle
import dask
from distributed import Future, Variable

from ..errors import NestedFuture
from ..files import File
from ..shipped import MemberRef, Packed
from ..worker.foreign import await_outcome
from ..worker.task import pick
from .futures import AppFuture, DataFuture

MODES = ("deep", "shallow")

_ATOMS = (str, bytes, int, float, bool, type(None), File)
_PLAIN_TYPES = frozenset((str, bytes, int, float, bool, type(None), File, Future, AppFuture,
                          DataFuture))


def substitute(obj, client=None, app_name: str = "?", packer=None):
    """Mark what the worker must resolve (chunk members, packed values; see
    ``walk``); return (args, kwargs, found, chunks): ``chunks`` maps each
    chunk key used to its future."""
    chunks: dict = {}
    (args, kwargs), members, _ = _walk_call(obj, client, app_name, packer or pack, chunks)
    return args, kwargs, members, chunks


def scan_call(args: tuple, kwargs: dict, client=None, app_name: str = "?", packer=None):
    """``substitute``, and whether the call has futures Dask resolves:
    (args, kwargs, found, futures, chunks); a call of atoms only
    (``App.map``'s usual one) is returned as it is, unwalked."""
    mode = dependencies_mode()
    if _atoms_only(args) and _atoms_only(kwargs.values()):
        return args, kwargs, False, False, None
    chunks: dict = {}
    (args, kwargs), members, futures = _walk_call((args, kwargs), client, app_name,
                                                  packer or pack, chunks, mode)
    return args, kwargs, members, futures, chunks or None


def _walk_call(call: tuple, client, app_name: str, packer, chunks: dict,
               mode: str | None = None):
    if (mode or dependencies_mode()) == "shallow":
        check_shallow(app_name, *call)
    return walk(call, client, packer, chunks)


def dependencies_mode() -> str:
    """``daskflow.dependencies``, checked. Read from Dask's config dict
    directly: ``dask.config.get`` costs more than the rest of a plain call's
    walk (its fallback, for a config without the key, gives the default)."""
    try:
        mode = dask.config.config["daskflow"]["dependencies"]
    except (KeyError, TypeError):
        mode = dask.config.get("daskflow.dependencies", "deep")
    if mode not in MODES:
        raise ValueError(f"daskflow.dependencies must be one of {MODES}, got {mode!r}")
    return mode


ATOM_TYPES = frozenset((str, bytes, int, float, bool, type(None), File))


def _atoms_only(values) -> bool:
    for value in values:
        if type(value) not in ATOM_TYPES:
            return False
    return True


def walk(obj, client=None, packer=None, chunks: dict | None = None):
    """(new obj, has markers to resolve on the worker, has other futures) for
    nested containers: a chunk member becomes ``(MemberRef, chunk key,
    index)`` and its chunk's future is put in ``chunks`` (without ``chunks``,
    a task that picks its value), a value of the user's own types what
    ``packer`` makes of it (default: a ``Packed`` copy, see
    ``shipped.Packed``; for workers in this process a ``Shared``
    reference); with a ``client``, futures Dask does not resolve become Dask
    futures."""
    packer = packer or pack
    if isinstance(obj, _ATOMS):
        return obj, False, False
    if isinstance(obj, Future):
        if isinstance(obj, AppFuture) and obj.index is not None:
            if chunks is None:
                return members_picked(client, obj), False, True
            chunks[obj.key] = obj._chunk
            return (MemberRef, obj.key, obj.index), True, False
        return obj, False, True
    if isinstance(obj, (set, frozenset)):  # the task body resolves no marker in a set
        if client is not None:  # so a chunk member is a task picking its value
            obj = members_picked(client, obj)
        items = [(o, False, i[2]) if i[1] else i for o, i in ((o, walk(o, client)) for o in obj)]
        if any(i[0] is not o for i, o in zip(items, obj)):
            return type(obj)(i[0] for i in items), False, any(i[2] for i in items)
        return obj, False, any(i[2] for i in items)
    if isinstance(obj, (list, tuple)):
        values, marked, futures, changed = _walk_items(obj, client, packer, chunks)
        new = obj
        if marked or changed:
            new = type(obj)(*values) if hasattr(type(obj), "_fields") else type(obj)(values)
        return new, marked, futures
    if isinstance(obj, dict):
        if client is not None and any(isinstance(k, _FUTURES) for k in obj):
            return built_dict(client, obj)
        values, marked, futures, changed = _walk_items(obj.values(), client, packer, chunks)
        return (dict(zip(obj, values)) if marked or changed else obj), marked, futures
    if isinstance(obj, concurrent.futures.Future) and client is not None:
        return stand_in(client, obj, packer)
    if client is not None and dask.is_dask_collection(obj):
        # a dask.delayed, array, bag or dataframe: computed on the cluster, the
        # call gets its value from there (never through this process)
        return client.compute(obj), False, True
    if is_foreign(obj):
        packed = packer(obj)
        return packed, packed is not obj, False
    return obj, False, False


_FUTURES = (Future, concurrent.futures.Future)


def _walk_items(items, client, packer, chunks) -> tuple[list, bool, bool, bool]:
    """``walk`` of each item, in one pass: (new items, any marked, any
    futures, any item replaced)."""
    values, marked, futures, changed = [], False, False, False
    for item in items:
        if type(item) in ATOM_TYPES:  # most items: no call
            values.append(item)
            continue
        new, m, f = walk(item, client, packer, chunks)
        values.append(new)
        marked, futures, changed = marked or m, futures or f, changed or new is not item
    return values, marked, futures, changed


def built_dict(client, obj: dict):
    """A dict with futures among its keys (which Dask does not resolve): the
    future of a task that builds it from its resolved (key, value) pairs."""
    obj = members_picked(client, obj)  # the task body resolves no marker here
    pairs, marked, _ = walk([(k, v) for k, v in obj.items()], client)
    if marked:  # chunk members and packed values are resolved by the task body only
        raise TypeError("a dict whose keys are futures cannot also hold members of a "
                        "chunked map or values of your own types; pass them separately")
    return client.submit(dict, pairs, key=f"dict-{uuid.uuid4().hex}"), False, True


def stand_in(client, future: concurrent.futures.Future, packer=None):
    """What a ``concurrent.futures.Future`` argument becomes: its value if it
    is done (walked in turn), else the Dask future of a task that waits for
    its outcome, which the client sends when the future is done (a failed or
    cancelled one fails the calls that use it with ``DependencyError``)."""
    if future.done() and not future.cancelled() and future.exception() is None:
        return walk(future.result(), client, packer)
    name = f"concurrent_future-{uuid.uuid4().hex}"
    waiting = client.submit(await_outcome, name, key=name, pure=False)
    future.add_done_callback(lambda done: _deliver(client, name, done))
    return waiting, False, True


def _deliver(client, name: str, future: concurrent.futures.Future) -> None:
    """Send a done future's outcome to the task that waits for it, from a
    thread: the future may be completed in any thread, the client's event
    loop included, where a blocking call would hang."""
    description = repr(future)
    exc = concurrent.futures.CancelledError() if future.cancelled() else future.exception()
    ok, payload = (True, future.result()) if exc is None else (False, exc)
    try:
        blob = cloudpickle.dumps((ok, payload, description))
    except Exception as error:
        what = "result" if ok else f"exception ({type(payload).__name__}: {payload!s:.500})"
        blob = pickle.dumps((False, TypeError(
            f"the {what} of {description} cannot be sent to a worker: "
            f"{type(error).__name__}: {error}"), description))
    threading.Thread(target=_send, args=(client, name, blob), daemon=True,
                     name=f"daskflow-deliver-{name}").start()


def _send(client, name: str, blob: bytes) -> None:
    try:
        Variable(name, client).set(blob)
    except Exception:  # the client closed meanwhile: nobody waits for the value
        pass


def check_shallow(app_name: str, args: tuple, kwargs: dict) -> None:
    """With the shallow resolver, a future nested in an argument is no
    dependency, and a future cannot reach a worker otherwise: say so."""
    named = [(f"#{i}", a) for i, a in enumerate(args)]
    for key, value in kwargs.items():
        if key == "inputs" and isinstance(value, (list, tuple)):
            named += [(f"inputs[{i}]", v) for i, v in enumerate(value)]
        else:
            named.append((f"{key!r}", value))
    for label, value in named:
        if not isinstance(value, (*_ATOMS, *_FUTURES)) and any(futures_in(value)):
            raise NestedFuture(app_name, label)


def futures_in(obj):
    """The futures (Dask's or ``concurrent.futures``') anywhere in ``obj``'s
    lists, tuples, sets and dicts (keys too)."""
    if isinstance(obj, _FUTURES):
        yield obj
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            yield from futures_in(item)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from futures_in(key)
            yield from futures_in(value)


# Top-level packages that workers have whenever the driver has them (daskflow
# and its requirements, the standard library's common types): values of their
# types travel as they are; others are packed (``shipped.Packed``).
SHARED = frozenset((
    "builtins", "daskflow", "dask", "distributed", "cloudpickle", "numpy", "pandas", "scipy",
    "xarray", "pyarrow", "datetime", "decimal", "fractions", "pathlib", "collections", "uuid",
    "array", "re", "ipaddress", "zoneinfo", "functools", "operator", "types", "enum",
    "typing", "posixpath", "_decimal", "_datetime",
))  # not threading, _thread, io, socket...: their objects do not pickle; packing says so


def is_foreign(obj) -> bool:
    """Whether ``obj`` (its class; a class or function: itself) comes from a
    module outside ``SHARED``: the user's own, which a worker may lack."""
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        module = getattr(obj, "__module__", None) or ""
    else:
        module = type(obj).__module__ or ""
    return module.partition(".")[0] not in SHARED


class Unpicklable(Exception):
    """A value of the arguments that does not pickle (the call then names
    it: ``App._explain_submit_error``)."""


def pack(obj):
    """``obj`` as a ``Packed`` argument."""
    try:
        blob = cloudpickle.dumps(obj)
    except Exception as exc:
        raise Unpicklable(obj) from exc
    cls = obj if isinstance(obj, type) else type(obj)
    return Packed(blob, f"{cls.__module__}.{cls.__qualname__}")


def plain(args: tuple, kwargs: dict) -> bool:
    """Whether a call's arguments need no walk: all of plain types (the
    common case, checked without recursion)."""
    return _all_of(_PLAIN_TYPES, args, kwargs)



_LINKABLE_TYPES = ATOM_TYPES | {Future, AppFuture}


def linkable(args: tuple, kwargs: dict) -> bool:
    """Whether each argument is an atom or a future (no nested futures,
    no Files' futures): what a held call that takes futures may be given."""
    return _all_of(_LINKABLE_TYPES, args, kwargs)


def atoms(args: tuple, kwargs: dict) -> bool:
    """Whether a call's arguments are all strings, numbers, None or Files:
    no futures, nothing to pack (the calls ``client.bursts`` may hold)."""
    return _all_of(ATOM_TYPES, args, kwargs)


def members_picked(client, obj):
    """``obj`` with each chunk member replaced by the future of a task that
    picks the call's value from its chunk (``worker.task.pick``): for Dask's
    own ``submit`` and ``map``, whose tasks would get the whole chunk."""
    if isinstance(obj, AppFuture) and obj.index is not None:
        return client.submit(pick, obj._chunk, obj.index, key=f"pick-{obj.ident}")
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = [members_picked(client, o) for o in obj]
        if any(i is not o for i, o in zip(items, obj)):
            return type(obj)(*items) if hasattr(type(obj), "_fields") else type(obj)(items)
        return obj
    if isinstance(obj, dict):
        items = [(members_picked(client, k), members_picked(client, v)) for k, v in obj.items()]
        changed = any(k2 is not k or v2 is not v for (k2, v2), (k, v) in zip(items, obj.items()))
        return dict(items) if changed else obj
    return obj


def _all_of(types: frozenset, args: tuple, kwargs: dict) -> bool:
    for value in args:
        if type(value) not in types:
            return False
    for value in kwargs.values():
        if type(value) not in types:
            return False
    return True


def by_key(obj):
    """Arguments for a cache token: futures by key (each Future object has its own id)."""
    if isinstance(obj, Future):
        return ("future", obj.key, getattr(obj, "index", None))
    if isinstance(obj, (list, tuple)):
        return type(obj)(by_key(o) for o in obj)
    if isinstance(obj, dict):
        return {k: by_key(v) for k, v in obj.items()}
    return obj
