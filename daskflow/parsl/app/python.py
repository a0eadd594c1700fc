"""``parsl.app.python``: ``timeout``, Parsl's helper that interrupts a
function running too long in the calling thread with ``AppTimeout`` (how
Parsl's own walltime works; daskflow's apps take ``walltime=`` themselves)."""

from __future__ import annotations

import functools
import threading
from typing import Callable

from ...dask_internals import raise_in_thread
from .errors import AppTimeout


def timeout(f: Callable, seconds: float) -> Callable:
    """``f``, interrupted with ``AppTimeout`` if a call runs over ``seconds``
    (at its next Python bytecode: a C call in progress finishes first)."""

    class Expired(AppTimeout):
        def __init__(self):
            super().__init__(f.__name__, None, seconds)

    @functools.wraps(f)
    def limited(*args, **kwargs):
        timer = threading.Timer(seconds, raise_in_thread, args=(threading.current_thread(),
                                                                  Expired))
        timer.start()
        try:
            return f(*args, **kwargs)
        finally:
            timer.cancel()

    return limited


__all__ = ["timeout"]
