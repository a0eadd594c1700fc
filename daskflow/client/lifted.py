"""Lifted operators on AppFutures, as in Parsl: ``future[key]`` and
``future.name`` are app calls (``deferred_getitem``, ``deferred_getattr``)
that depend on the future, so they never wait, and an error (a missing key)
is raised by their own future. Registered on ``AppFuture`` here because the
futures module cannot import the apps."""

from __future__ import annotations

from typing import Any

from ..worker.lifted import deferred_getattr, deferred_getitem
from .apps import App
from .futures import AppFuture

OPERATORS = {"getitem": App(deferred_getitem, "python"),
             "getattr": App(deferred_getattr, "python")}


def lift(operator: str, future: AppFuture, argument: Any) -> AppFuture:
    """The future of ``future``'s value with ``operator`` applied."""
    return OPERATORS[operator](future, argument)


AppFuture._lift = staticmethod(lift)
