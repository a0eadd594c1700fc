"""``AppFuture.cancel()``: the call stops, and what waits on it fails.

Dask's own cancel releases a task: a running one keeps its worker's thread
(or its command) busy to the end, and its dependents are cancelled too, not
told why. Here a cancelled call instead *fails* with ``AppCancelled``, so
that its dependents fail with ``DependencyError`` naming it and provenance
records it (state ``cancelled``), and its work stops where it runs:

* the client asks the scheduler (handler ``daskflow_cancel`` of the
  ``Cancellations`` plugin, registered with the workers' ``StopCalls`` by
  the client's first cancel, ``client.cancels``: a run that cancels
  nothing pays nothing);
* the scheduler errs a call that has not finished at once, and tells every
  worker (and those that join later, while the call may still start) to
  stop it: ``worker.cancel`` kills a command's process group or interrupts
  a Python app;
* a member of a chunk (``map(chunksize=K)``) is stopped alone: its chunk
  goes on with the other calls and the member's outcome is ``AppCancelled``.

A call that finished before the request arrived keeps its outcome.
"""

from __future__ import annotations

import asyncio
import time

from distributed.diagnostics.plugin import SchedulerPlugin

from .dask_internals import err_task, scheduler_to_worker_stream
from .errors import AppCancelled
from .shipped import ORIGIN

NAME = "daskflow-cancellation"
HANDLER = "daskflow_cancel"
STOP = "daskflow-stop-calls"  # the workers' stream handler (``worker.cancel.StopCalls``)
FINISHED = ("memory", "erred", "forgotten")
ARRIVAL = 5  # seconds the scheduler waits for a call it does not know yet


class Cancellations(SchedulerPlugin):
    """The scheduler's side (see the module docstring)."""

    name = NAME
    idempotent = True

    def __init__(self):
        self.scheduler = None
        self.pending: dict[str, str] = {}  # ident of a member to stop -> its chunk's key

    async def start(self, scheduler) -> None:
        self.scheduler = scheduler
        scheduler.handlers[HANDLER] = self.cancel

    async def cancel(self, calls: list) -> list[str]:
        """The handler: ``"stopped"`` or ``"finished"`` per call."""
        scheduler = self.scheduler
        # the calls' graph comes on the client's stream, which this request
        # may overtake: wait for it (the client holds the futures)
        deadline = time.monotonic() + ARRIVAL
        while any(key not in scheduler.tasks for key, *_ in calls) \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        answers, stop = [], []
        for key, ident, app, tid in calls:
            ts = scheduler.tasks.get(key)
            if ts is None or ts.state in FINISHED:
                answers.append("finished")
                continue
            answers.append("stopped")
            if ident != key:  # a chunk's member: its chunk goes on
                self.pending[ident] = key
                stop.append(ident)
                continue
            if ts.state == "processing":
                stop.append(ident)
            exc = AppCancelled(app, tid)
            setattr(exc, ORIGIN, (app, tid, ident))
            err_task(scheduler, key, exc, f"daskflow-cancel-{ident}")
        if stop:
            for address in list(scheduler.workers):
                self._tell(address, stop)
        return answers

    def add_worker(self, scheduler, worker: str) -> None:
        """A worker that joins learns of the members whose chunks may still start."""
        for ident, key in list(self.pending.items()):
            ts = scheduler.tasks.get(key)
            if ts is None or ts.state in FINISHED:
                del self.pending[ident]
        if self.pending:
            self._tell(worker, list(self.pending))

    def _tell(self, address: str, idents: list[str]) -> None:
        stream = scheduler_to_worker_stream(self.scheduler, address)
        if stream is not None:
            stream.send({"op": STOP, "idents": idents})
