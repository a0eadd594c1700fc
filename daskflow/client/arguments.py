"""What a call's arguments become before they are submitted.

Dask resolves the futures it finds in a task's arguments; ``walk`` marks
what only the task body can resolve: a member of a chunked map becomes
``(MemberRef, chunk, index)``, and a value of the user's own types a
``Packed`` pickle that the body loads (a worker that cannot load it fails
that call, not itself). ``plain`` spares the common case the walk, and
``by_key`` gives cached apps a token that names futures by key.
"""

from __future__ import annotations

import types

import cloudpickle
from distributed import Future

from ..files import File
from ..shipped import MemberRef, Packed
from .futures import AppFuture, DataFuture

_ATOMS = (str, bytes, int, float, bool, type(None), File)
_PLAIN_TYPES = frozenset((str, bytes, int, float, bool, type(None), File, Future, AppFuture,
                          DataFuture))


def substitute(obj, packer=None):
    """Mark what the worker must resolve (chunk members, packed values; see
    ``walk``); return (obj, found)."""
    obj, members, _ = walk(obj, packer or pack)
    return (*obj, members)


def scan_call(args: tuple, kwargs: dict, packer=None):
    (args, kwargs), members, futures = walk((args, kwargs), packer or pack)
    return args, kwargs, members, futures


def walk(obj, packer):
    """(new obj, has markers to resolve on the worker, has other futures) for
    nested containers: a chunk member becomes ``(MemberRef, chunk, index)``,
    a value of the user's own types what ``packer`` makes of it: a ``Packed``
    copy (see ``shipped.Packed``), or for workers in this process a
    ``Shared`` reference."""
    if isinstance(obj, _ATOMS):
        return obj, False, False
    if isinstance(obj, Future):
        if isinstance(obj, AppFuture) and obj.index is not None:
            return (MemberRef, obj._chunk, obj.index), True, False
        return obj, False, True
    if isinstance(obj, (list, tuple)):
        items = [walk(o, packer) for o in obj]
        marked = any(i[1] for i in items)
        new = obj
        if marked:
            values = [i[0] for i in items]
            new = type(obj)(*values) if hasattr(type(obj), "_fields") else type(obj)(values)
        return new, marked, any(i[2] for i in items)
    if isinstance(obj, dict):
        items = {k: walk(v, packer) for k, v in obj.items()}
        marked = any(i[1] for i in items.values())
        new = {k: i[0] for k, i in items.items()} if marked else obj
        return new, marked, any(i[2] for i in items.values())
    if is_foreign(obj):
        packed = packer(obj)
        return packed, packed is not obj, False
    return obj, False, False


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
    for value in args:
        if type(value) not in _PLAIN_TYPES:
            return False
    for value in kwargs.values():
        if type(value) not in _PLAIN_TYPES:
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
