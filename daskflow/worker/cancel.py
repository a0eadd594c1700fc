"""Stopping the calls whose futures were cancelled.

A worker keeps the calls it is running by ident. When the scheduler's
``cancellation`` plugin names one (``stop``, in the worker's event loop):

* a command (bash, MPI, a container) has its whole process group killed;
* a Python app waiting on its walltime's helper thread is woken, and the
  helper interrupted, as at its walltime;
* a Python app running in the task's thread is interrupted at its next
  bytecode (code blocked inside a C call, such as ``time.sleep``, finishes
  that call first).

The call then raises ``CallCancelled`` (a ``BaseException``: no try is
retried, no ``except Exception`` in the app swallows it), which the task
body turns into ``AppCancelled``. An ident named before its call started
is kept (the last ``KEEP``), so that call does not start: a chunk's member
cancelled while its chunk waits.
"""

from __future__ import annotations

from collections import OrderedDict
import os
import signal
import threading
from threading import get_ident
from typing import Callable

from distributed.diagnostics.plugin import WorkerPlugin

KEEP = 10_000  # idents kept that were cancelled before their call started


class CallCancelled(BaseException):
    """Raised in a call that was cancelled (see the module docstring)."""


class Call:
    """A running call: its thread, and how to stop it (the defaults are the
    class's, so that a call that is never stopped costs little)."""

    fired = False  # cancelled while running
    process = None  # the command's Popen, while it runs
    wake: Callable[[], None] | None = None  # wakes a wait on a helper thread
    interruptible = True  # an interrupt may be raised in its thread

    def __init__(self, ident: str):
        self.ident = ident
        self.thread = get_ident()


_lock = threading.Lock()
_running: dict[str, Call] = {}
_early: OrderedDict[str, None] = OrderedDict()
_local = threading.local()


def enter(ident: str) -> Call:
    """Note that this thread starts call ``ident``; raise ``CallCancelled`` if
    it was cancelled before."""
    if _early and ident in _early:
        with _lock:
            _early.pop(ident, None)
        raise CallCancelled
    call = _running[ident] = Call(ident)
    _local.call = call
    return call


def leave(call: Call) -> bool:
    """Note that the call ended; True if it was cancelled meanwhile.

    An interrupt raised just as the call ended may arrive here: it is
    caught, or cleared before it arrives, so it never reaches the code
    that runs after the call (the worker's own)."""
    while True:
        try:
            with _lock:  # a stop under way finishes first
                call.interruptible = False
                _running.pop(call.ident, None)
            break
        except CallCancelled:
            continue
    _local.call = None
    if call.fired:
        from ..dask_internals import clear_interrupt

        try:
            clear_interrupt(call.thread)
        except CallCancelled:  # it arrived first
            pass
    return call.fired


def current() -> Call | None:
    """The call this thread runs, if any."""
    return getattr(_local, "call", None)


def started(call: Call | None, process) -> None:
    """The call's command runs as ``process`` (a session of its own): a stop
    kills its group from now on; if a stop came while it was starting, now."""
    if call is None:
        return
    with _lock:
        call.process = process
        fired = call.fired
    if fired:
        kill_group(process.pid)


def waiting(wake: Callable[[], None]) -> Call | None:
    """This thread's call now waits for a helper thread: a stop calls
    ``wake`` (an interrupt would arrive only once the wait ends); raise
    ``CallCancelled`` if it was already stopped."""
    call = current()
    if call is None:
        return None
    with _lock:
        call.wake = wake
    if call.fired:
        raise CallCancelled
    return call


def uninterruptible(call: Call | None) -> None:
    """From now on the call is stopped through its process only (an
    interrupt could otherwise land while its process starts, leaving it
    running); raise ``CallCancelled`` if it was already stopped."""
    if call is None:
        return
    with _lock:
        call.interruptible = False
    if call.fired:
        raise CallCancelled


def stop(idents: list[str]) -> int:
    """Stop the calls ``idents`` (those running here; the others are kept so
    that they do not start here). Returns how many were running here."""
    from ..dask_internals import raise_in_thread_id

    stopped = 0
    for ident in idents:
        with _lock:
            call = _running.get(ident)
            if call is None:
                _early[ident] = None
                while len(_early) > KEEP:
                    _early.popitem(last=False)
                continue
            stopped += 1
            call.fired = True
            if call.process is not None:
                kill_group(call.process.pid)
            elif call.wake is not None:
                call.wake()
            elif call.interruptible:
                raise_in_thread_id(call.thread, CallCancelled)
    return stopped


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class StopCalls(WorkerPlugin):
    """A worker's stream handler for ``cancellation.STOP``: stops the calls named."""

    idempotent = True

    def setup(self, worker) -> None:
        from ..cancellation import STOP
        from ..dask_internals import add_worker_stream_handler

        add_worker_stream_handler(worker, STOP, lambda idents, **_: stop(idents))
