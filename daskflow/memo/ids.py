"""What an argument value contributes to a memo key, by type.

``id_for_memo`` is a ``functools.singledispatch`` function: a user who
knows what makes two values of a type "the same" registers a function that
returns bytes for it (Parsl's extension point, which
``parsl.dataflow.memoization.id_for_memo`` is)::

    @daskflow.memo.id_for_memo.register(Sample)
    def _(sample, output_ref=False):
        return sample.accession.encode()

Values of a registered type count by those bytes in every cached app's
key; every other value counts as Dask tokenizes it, as before. Under Parsl's
rules (``strict``, the ``daskflow.parsl`` shim) every value must have an id:
builtins, plain lists, tuples and dicts of them, functions and Files have
one here, and any other type is a ``ValueError`` that fails the call.

A registration must exist where the call runs. The run's ``memo`` rule
(a ``Rule``, in the settings every call ships) carries the registrations the
driver has when the call is sent, so a type and its id registered in a
script or notebook reach the workers as the call's own functions do.
"""

from __future__ import annotations

import functools
import logging
import pickle
import threading
import types
from typing import Any

import cloudpickle

from ..files import File


class _Id(bytes):
    """A value's id, kept apart from plain bytes arguments in the key."""

    __slots__ = ()

    def __dask_tokenize__(self):
        return ("daskflow.memo.id", bytes(self))


@functools.singledispatch
def id_for_memo(obj: object, output_ref: bool = False) -> bytes:
    """Bytes that identify ``obj`` in memo keys: equal for values that are
    "the same", different otherwise.

    ``output_ref`` is True for values of an ``outputs=`` argument (where
    hashing a File's content, say, would make no sense).

    Raises
    ------
    ValueError
        ``obj``'s type has no registered id.
    """
    raise ValueError(f"unknown type for memoization: {type(obj)}; register its id with "
                     f"@id_for_memo.register({type(obj).__name__}) (a function of "
                     "(value, output_ref=False) returning bytes), or name the argument "
                     "in ignore_for_cache")


@id_for_memo.register(str)
@id_for_memo.register(int)
@id_for_memo.register(float)
@id_for_memo.register(type(None))
def _pickled(obj: object, output_ref: bool = False) -> bytes:
    return pickle.dumps(obj)


def _exact(obj, kind: type) -> None:
    if type(obj) is not kind:
        raise ValueError(f"unknown type for memoization: {type(obj)}, a subclass of "
                         f"{kind.__name__}; register its own id with "
                         f"@id_for_memo.register({type(obj).__name__})")


@id_for_memo.register(list)
def _list(obj: list, output_ref: bool = False) -> bytes:
    _exact(obj, list)
    return pickle.dumps([id_for_memo(o, output_ref=output_ref) for o in obj])


@id_for_memo.register(tuple)
def _tuple(obj: tuple, output_ref: bool = False) -> bytes:
    _exact(obj, tuple)
    return pickle.dumps(("tuple", [id_for_memo(o, output_ref=output_ref) for o in obj]))


@id_for_memo.register(dict)
def _dict(obj: dict, output_ref: bool = False) -> bytes:
    _exact(obj, dict)
    items = [(id_for_memo(k), id_for_memo(obj[k], output_ref=output_ref)) for k in sorted(obj)]
    return pickle.dumps(("dict", items))


@id_for_memo.register(types.FunctionType)
def _function(obj: types.FunctionType, output_ref: bool = False) -> bytes:
    return pickle.dumps(("function", obj.__module__, obj.__qualname__))


@id_for_memo.register(File)
def _file(obj: File, output_ref: bool = False) -> bytes:
    return pickle.dumps(("File", obj.url))


_OWN = frozenset({id_for_memo.dispatch(object), _pickled, _list, _tuple, _dict, _function,
                  _file})


logger = logging.getLogger("daskflow.checkpoint")


def registered(cls: type) -> bool:
    """Whether values of ``cls`` have an id that a user registered."""
    return id_for_memo.dispatch(cls) not in _OWN


def with_ids(obj: Any, output_ref: bool = False) -> Any:
    """``obj`` with each value of a user-registered type replaced by its id
    (through plain lists, tuples and dicts); everything else as it is."""
    cls = type(obj)
    if cls in (list, tuple):
        return cls(with_ids(o, output_ref) for o in obj)
    if cls is dict:
        return {k: with_ids(v, output_ref) for k, v in obj.items()}
    if cls in (str, int, float, bool, bytes, type(None)) or not registered(cls):
        return obj
    return _Id(_checked(id_for_memo(obj, output_ref=output_ref), obj))


def strict_ids(values: dict) -> dict:
    """Parsl's rule: every value by its id, ``outputs`` as output references."""
    return {name: _Id(_checked(id_for_memo(v, output_ref=name == "outputs"), v))
            for name, v in values.items()}


def _checked(ident, obj) -> bytes:
    if not isinstance(ident, bytes):
        raise TypeError(f"id_for_memo for {type(obj).__qualname__} returned "
                        f"{type(ident).__name__}, not bytes")
    return ident


_shipped_lock = threading.Lock()
_shipped: tuple[tuple, tuple[bytes, ...]] = ((), ())  # (identities of the registry, pickles)
_arrived: set[bytes] = set()  # the pickles this process registered


def user_registrations() -> tuple[bytes, ...]:
    """The registrations made outside this module, each pickled on its own
    (computed again only when the registry changed)."""
    global _shipped
    items = [(cls, f) for cls, f in list(id_for_memo.registry.items()) if f not in _OWN]
    state = tuple((id(cls), id(f)) for cls, f in items)
    with _shipped_lock:
        if _shipped[0] == state:
            return _shipped[1]
        ships = []
        for cls, f in items:
            try:
                ships.append(cloudpickle.dumps((cls, f)))
            except Exception as exc:
                logger.warning("daskflow: the id_for_memo of %s does not pickle (%s: %s); "
                               "workers know it only if they import it", cls.__qualname__,
                               type(exc).__name__, exc)
        _shipped = (state, tuple(ships))
        return _shipped[1]


class Rule(str):
    """A memo rule (``"dask"``, ``"parsl"`` or ``"off"``) that carries the
    driver's ``id_for_memo`` registrations wherever it is unpickled."""

    __slots__ = ()

    def __reduce__(self):
        return _arrive, (str(self), user_registrations())


def _arrive(name: str, registrations: tuple[bytes, ...]) -> Rule:
    """Register, in this process, what the driver had registered. One that
    does not load here (its module is not importable) is skipped, with a
    warning: only calls given values of its type miss it."""
    for data in registrations:
        if data in _arrived:
            continue
        with _shipped_lock:
            _arrived.add(data)
        try:
            cls, f = cloudpickle.loads(data)
        except Exception as exc:
            logger.warning("daskflow: an id_for_memo registration of the driver does not load "
                           "here (%s: %s)", type(exc).__name__, exc)
            continue
        if id_for_memo.registry.get(cls) is not f:
            id_for_memo.register(cls, f)
    return Rule(name)


__all__ = ["Rule", "id_for_memo", "registered", "strict_ids", "user_registrations",
           "with_ids"]
