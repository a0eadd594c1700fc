"""Join apps: the join function runs inside its Dask task, which secedes
while it waits for the futures the function returned (see
docs/architecture.md for why not on the client, as Parsl does)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import AppTimeout, JoinError, JoinReturnError
from ..shipped import Failure
from .context import calls_inside

if TYPE_CHECKING:
    from ..shipped import AppDef, RunSettings


def run_join(app: AppDef, tid, args: tuple, kwargs: dict, walltime: float | None,
             run: RunSettings):
    """Run a join function here and wait, seceded, for the futures it returns.

    The inner calls go through this worker's client (see ``context``).
    Seceding frees the worker's thread while waiting, so recursive joins
    cannot deadlock even on workers with a single thread. A walltime bounds
    the wait for the returned futures.
    """
    from distributed import get_client, rejoin, secede, wait

    with calls_inside(tid, run):
        returned = app.func(*args, **kwargs)
    single = not isinstance(returned, (list, tuple))
    futures = [returned] if single else list(returned)
    bad = [f for f in futures if not hasattr(f, "key") or not hasattr(f, "result")]
    if bad:
        raise JoinReturnError(app.name, tid, f"its function must return a future or a list "
                              f"of futures, but returned {type(bad[0]).__name__}: "
                              f"{bad[0]!r:.200}")
    client = get_client()
    secede()
    try:
        wait(futures, timeout=walltime)
    except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
        raise AppTimeout(app.name, tid, walltime) from None
    finally:
        rejoin()
    values, failures = [], []
    fetched = client.gather([f for f in futures if f.status == "finished"], errors="skip")
    it = iter(fetched)
    for f in futures:
        if f.status == "finished":
            value = next(it)
            unpack = getattr(f, "_unpack", None)
            value = unpack(value) if unpack else value
            if isinstance(value, Failure):
                failures.append((*_named(f), value.exc))
            values.append(value)
        else:
            exc = f.exception()
            failures.append((*_named(f), exc))
    if failures:
        raise JoinError(app.name, tid, f"{len(failures)} of the {len(futures)} futures "
                        "it returned failed", failures)
    return values[0] if single else values


def _named(future) -> tuple[str, object]:
    """(app, tid) of an app call's future; (its repr, None) for another future."""
    tid = future.__dict__.get("tid")
    return (future.app_name, tid) if tid is not None else (repr(future), None)
