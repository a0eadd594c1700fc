"""Which task, if any, is calling apps from this thread.

A join app's function runs inside a Dask task and calls other apps there. The
task body marks the thread so those calls go through the worker's client and
get task ids under the join's own (``"7.1"``, ``"7.2"``…), which keeps ids
unique across the run without asking the driver for them.
"""

from __future__ import annotations

from contextlib import contextmanager
import itertools
import threading
from typing import Iterator

_local = threading.local()


@contextmanager
def calls_inside(tid: int | str, run) -> Iterator[None]:
    """Mark the current thread as running the body of task ``tid`` of ``run``
    (a ``RunSettings``): calls made here belong to that run."""
    previous = getattr(_local, "parent", None)
    _local.parent = (tid, itertools.count(1), run)
    try:
        yield
    finally:
        _local.parent = previous


def parent_task() -> tuple[int | str, itertools.count, object] | None:
    """The ``(tid, child counter, run settings)`` of the enclosing task body, or None."""
    return getattr(_local, "parent", None)
