"""The task that stands for a future Dask does not know (a
``concurrent.futures.Future`` given as an argument): it waits, seceded,
for the outcome the client sends when that future is done, so that the
calls that use it are ordinary Dask dependents of this task."""

from __future__ import annotations

import asyncio
import pickle

from .. import failure_log
from ..shipped import ORIGIN

POLL = 1.0  # seconds between looks at a closing worker while waiting


def await_outcome(name: str):
    """The value of the future the client calls ``name``; raises its
    exception, marked as that future's (its description, no tid), so that
    the calls depending on it fail with ``DependencyError`` naming it."""
    from distributed import Variable, get_client, rejoin, secede

    variable = Variable(name, get_client())
    secede()  # waiting holds no worker thread
    try:
        while True:
            try:
                blob = variable.get(timeout=POLL)
                break
            except (TimeoutError, asyncio.TimeoutError):
                continue
    finally:
        rejoin()
    variable.delete()
    ok, payload, description = pickle.loads(blob)
    if ok:
        return payload
    setattr(payload, ORIGIN, (description, None, name))
    failure_log.quiet(name)  # the calls that use it say it (DependencyError)
    raise payload
