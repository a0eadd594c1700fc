"""The client's side of ``AppFuture.cancel()`` (see ``daskflow.cancellation``)."""

from __future__ import annotations

import asyncio
import weakref

from ..cancellation import HANDLER, NAME, STOP, Cancellations
from ..dask_internals import (register_scheduler_plugin_from_client,
                              register_worker_plugin_from_client)
from ..worker.cancel import StopCalls

TIMEOUT = 30  # seconds a cancel waits for the scheduler's answer

_ready: weakref.WeakSet = weakref.WeakSet()  # clients whose scheduler has the plugins


def cancel_calls(client, calls: list[tuple[str, str, str, object]]):
    """Cancel ``calls`` (``(key, ident, app, tid)``; ident: the key, or
    ``key[i]`` for a chunk's member i); for each, whether it was stopped
    (False: it had finished). An asynchronous client gets an awaitable."""
    return client.sync(_cancel, client, calls)


async def _cancel(client, calls: list) -> list[bool]:
    if client not in _ready:
        # the workers' first: a stream message with no handler there is an error
        await register_worker_plugin_from_client(client, StopCalls(), STOP)
        await register_scheduler_plugin_from_client(client, Cancellations(), NAME)
        _ready.add(client)
    answers = await asyncio.wait_for(
        getattr(client.scheduler, HANDLER)(calls=[list(c) for c in calls]), TIMEOUT)
    return [answer == "stopped" for answer in answers]
