"""``parsl.dataflow.dependency_resolvers``: Parsl's two resolvers, given to
``Config(dependency_resolver=...)``. ``parsl.load`` translates them into
daskflow's ``daskflow.dependencies`` setting (``shallow`` or ``deep``), and
Dask resolves the futures; a resolver of the user's own is refused there,
naming it (its functions would have to run inside daskflow's submission).

The traversal functions work as Parsl's do, on any future (Parsl's
``concurrent.futures`` ones and daskflow's Dask ones), for code that calls
them directly.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from functools import singledispatch
from typing import Callable, Sequence

from distributed import Future as DaskFuture

FUTURES = (concurrent.futures.Future, DaskFuture)


@dataclass
class DependencyResolver:
    """Which futures of an app's argument are dependencies
    (``traverse_to_gather``) and what the argument becomes once they are
    done (``traverse_to_unwrap``)."""

    traverse_to_gather: Callable[[object], Sequence]
    traverse_to_unwrap: Callable[[object], object]


def _value(future):
    if not future.done():
        raise ValueError(f"{future!r} is not done: gather it before unwrapping")
    return future.result()


@singledispatch
def shallow_traverse_to_gather(obj) -> list:
    """``[obj]`` if it is a future, else ``[]``."""
    return [obj] if isinstance(obj, FUTURES) else []


@singledispatch
def shallow_traverse_to_unwrap(obj):
    """A done future's value; anything else as it is."""
    return _value(obj) if isinstance(obj, FUTURES) else obj


@singledispatch
def deep_traverse_to_gather(obj) -> list:
    """Every future in ``obj``, through lists, tuples, sets and dicts (keys too)."""
    return [obj] if isinstance(obj, FUTURES) else []


@deep_traverse_to_gather.register(list)
@deep_traverse_to_gather.register(tuple)
@deep_traverse_to_gather.register(set)
def _(items) -> list:
    return [f for item in items for f in deep_traverse_to_gather(item)]


@deep_traverse_to_gather.register(dict)
def _(mapping: dict) -> list:
    return [f for pair in mapping.items() for item in pair for f in deep_traverse_to_gather(item)]


@singledispatch
def deep_traverse_to_unwrap(obj):
    """``obj`` with every (done) future in it replaced by its value."""
    return _value(obj) if isinstance(obj, FUTURES) else obj


@deep_traverse_to_unwrap.register(list)
@deep_traverse_to_unwrap.register(tuple)
@deep_traverse_to_unwrap.register(set)
def _(items):
    return type(items)(deep_traverse_to_unwrap(item) for item in items)


@deep_traverse_to_unwrap.register(dict)
def _(mapping: dict) -> dict:
    return {deep_traverse_to_unwrap(k): deep_traverse_to_unwrap(v) for k, v in mapping.items()}


SHALLOW_DEPENDENCY_RESOLVER = DependencyResolver(shallow_traverse_to_gather,
                                                 shallow_traverse_to_unwrap)
DEEP_DEPENDENCY_RESOLVER = DependencyResolver(deep_traverse_to_gather, deep_traverse_to_unwrap)

#: what each resolver means in daskflow's ``daskflow.dependencies`` setting
MODES = {id(SHALLOW_DEPENDENCY_RESOLVER): "shallow", id(DEEP_DEPENDENCY_RESOLVER): "deep"}


def mode_of(resolver) -> str | None:
    """``"shallow"`` or ``"deep"`` for Parsl's resolvers; None for any other."""
    return MODES.get(id(resolver))


__all__ = ["DEEP_DEPENDENCY_RESOLVER", "SHALLOW_DEPENDENCY_RESOLVER", "DependencyResolver",
           "deep_traverse_to_gather", "deep_traverse_to_unwrap", "shallow_traverse_to_gather",
           "shallow_traverse_to_unwrap"]
