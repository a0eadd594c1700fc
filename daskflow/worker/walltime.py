"""Walltime for Python apps: the caller's future gets AppTimeout on time."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import AppTimeout
from . import cancel, usage

if TYPE_CHECKING:
    from ..shipped import AppDef


def call_with_walltime(app: AppDef, tid, walltime: float | None, args: tuple, kwargs: dict):
    """Call the function; past ``walltime`` seconds raise AppTimeout at once.

    The function runs in a helper thread so that the caller's future gets the
    timeout on time; the helper is then interrupted at its next Python
    bytecode (code blocked inside a C call finishes that call first).
    """
    if walltime is None:
        return app.func(*args, **kwargs)
    from ..dask_internals import in_worker_context, raise_in_thread

    outcome: dict[str, Any] = {}
    done = threading.Event()

    meter = usage.current()

    @in_worker_context  # get_worker() and get_client() work in the helper as in the task
    def target():
        start = usage.thread_usage()
        try:
            outcome["value"] = app.func(*args, **kwargs)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc
        finally:
            if meter is not None:  # what the helper used is the call's
                meter.add(usage.since(start, usage.thread_usage()), children=False)
            done.set()

    helper = threading.Thread(target=target, name=f"daskflow-{app.name}-{tid}", daemon=True)
    call = cancel.waiting(done.set)  # a cancel wakes the wait below
    helper.start()
    if not done.wait(walltime):
        raise_in_thread(helper, _WalltimeInterrupt)
        raise AppTimeout(app.name, tid, walltime)
    if call is not None and call.fired:
        if not helper_done(outcome):
            raise_in_thread(helper, _WalltimeInterrupt)
        raise cancel.CallCancelled
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def helper_done(outcome: dict) -> bool:
    return "value" in outcome or "error" in outcome


class _WalltimeInterrupt(BaseException):
    """Raised inside a Python app's thread that outlived its walltime."""


