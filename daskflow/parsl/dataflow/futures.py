"""``parsl.dataflow.futures``: an app call's future is daskflow's
``AppFuture`` (a Dask future); ``future[key]`` and ``future.name`` are
lifted through ``deferred_getitem`` and ``deferred_getattr``, as in Parsl."""

from ...client.futures import AppFuture
from ...client.lifted import deferred_getattr, deferred_getitem

__all__ = ["AppFuture", "deferred_getattr", "deferred_getitem"]
