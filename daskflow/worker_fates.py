"""Why each worker left: a small scheduler plugin, and the client's question.

When a worker dies while running a task, distributed's scheduler fails the
task with ``KilledWorker``, which says only that workers died. Why it died is
known elsewhere: a Nanny that stops its worker for using too much memory logs
the event ``worker-restart-memory`` (``{worker, pid, rss}``) with the
scheduler, and daskflow's own worker processes (``sites.nanny_process``) log
``daskflow-worker-exit`` (``{worker, pid, exitcode}``) when their worker's
process ended (or, when it ended while its Nanny still started, call the
handler ``daskflow_nanny_exit`` with the Nanny's address). ``WorkerFates`` keeps those causes per worker address, so that

* the provenance plugin records "worker tcp://... was lost (process exited
  with status 1)" instead of a bare failure, and
* ``AppFuture`` turns a ``KilledWorker`` of its own task into a
  ``WorkerLost`` that says the same, through the scheduler handler
  ``daskflow_worker_fate``.

The events race the worker's removal (the scheduler may notice the closed
connection before the Nanny's message arrives), so a question about a
removed worker whose cause is not known yet waits up to ``FATE_WAIT``
seconds (once per worker: a cluster whose Nannies do not report exits
costs that wait once, not once per lost task), and listeners are told of a
cause that arrives late.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Callable

from dask.utils import format_bytes
from distributed.diagnostics.plugin import SchedulerPlugin

from .dask_internals import worker_memory_limit

NAME = "daskflow-worker-fates"
HANDLER = "daskflow_worker_fate"
NANNY_HANDLER = "daskflow_nanny_exit"
MEMORY_TOPIC = "worker-restart-memory"  # logged by distributed's Nanny (worker_memory.py)
EXIT_TOPIC = "daskflow-worker-exit"  # logged by daskflow's Nanny processes
FATE_WAIT = 3.0  # seconds a question waits for the cause of a removed worker
KEEP = 10_000  # workers remembered


def lost_text(worker: str, cause: str | None) -> str:
    """``worker tcp://... was lost (cause)``."""
    return f"worker {worker} was lost ({cause or 'cause unknown: see the worker log'})"


def exit_cause(exitcode: int) -> str:
    """What an exit status says, as distributed's Nanny words it."""
    if exitcode < 0:
        try:
            name = f" ({signal.Signals(-exitcode).name})"
        except ValueError:
            name = ""
        return f"process was killed by signal {-exitcode}{name}"
    return f"process exited with status {exitcode}"


class WorkerFates(SchedulerPlugin):
    """Remember why workers left (see the module docstring)."""

    name = NAME
    idempotent = True

    def __init__(self):
        self.limits: dict[str, int] = {}  # worker -> memory limit (bytes), while known
        self.causes: dict[str, str] = {}  # worker -> why it left
        self._listeners: list[Callable[[str, str], None]] = []
        self._waited: dict[str, None] = {}  # workers whose cause was waited for in vain
        self.nannies: dict[str, str] = {}  # Nanny address -> its latest worker
        self._changed: asyncio.Event | None = None

    async def start(self, scheduler) -> None:
        self._changed = asyncio.Event()
        self.serve(scheduler)

    def serve(self, scheduler) -> None:
        """Answer the handlers, and know the workers already there."""
        scheduler.handlers[HANDLER] = self.fate
        scheduler.handlers[NANNY_HANDLER] = self.nanny_exit
        for address in list(scheduler.workers):
            self.add_worker(scheduler, address)

    def add_worker(self, scheduler, worker: str) -> None:
        limit = worker_memory_limit(scheduler, worker)
        if limit:
            self.limits[worker] = limit
        state = scheduler.workers.get(worker)
        if state is not None and state.nanny:
            self.nannies[state.nanny] = worker
            _trim(self.nannies)

    def nanny_exit(self, nanny: str, exitcode: int) -> bool:
        """The handler a Nanny process calls when its worker ended before the
        Nanny finished starting: the exit becomes the cause of the worker
        that Nanny had (True), or there was none: it never joined (False)."""
        worker = self.nannies.get(nanny)
        if worker is None:
            return False
        self.log_event(EXIT_TOPIC, {"worker": worker, "exitcode": int(exitcode)})
        return True

    def log_event(self, topic, msg) -> None:
        if topic not in (MEMORY_TOPIC, EXIT_TOPIC) or not isinstance(msg, dict):
            return
        worker = msg.get("worker")
        if not isinstance(worker, str):
            return
        if topic == MEMORY_TOPIC:
            cause = self._memory_cause(worker, msg.get("rss"))
        elif worker in self.causes:
            return  # the memory cause came first: the exit status is its consequence
        else:
            cause = exit_cause(int(msg.get("exitcode") or 0))
        self.causes[worker] = cause
        _trim(self.causes)
        if self._changed is not None:
            self._changed.set()
        for listener in list(self._listeners):
            try:
                listener(worker, cause)
            except Exception:  # a listener must not stop the others
                pass

    def _memory_cause(self, worker: str, rss) -> str:
        limit = self.limits.get(worker)
        if not limit or not rss:
            return "killed by the nanny: its memory use passed the worker's limit"
        return (f"killed by the nanny: memory use reached {100 * rss / limit:.0f}% of its "
                f"{format_bytes(limit)} limit")

    def listen(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(worker, cause)`` in the event loop for each cause learnt."""
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[str, str], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def known(self, worker: str) -> str | None:
        return self.causes.get(worker)

    async def fate(self, worker: str, wait: float = FATE_WAIT) -> str:
        """The handler: ``worker ... was lost (cause)``, waiting up to ``wait``
        seconds for a cause not known yet (never longer: an unknown cause is
        said to be unknown)."""
        if worker not in self.causes and worker not in self._waited:
            deadline = time.monotonic() + min(float(wait), 30.0)
            while worker not in self.causes and time.monotonic() < deadline:
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
                except asyncio.TimeoutError:
                    break
            if worker not in self.causes:  # the next question about it does not wait
                self._waited[worker] = None
                _trim(self._waited)
        return lost_text(worker, self.causes.get(worker))


def _trim(table: dict) -> None:
    while len(table) > KEEP:
        del table[next(iter(table))]


def ensure(scheduler) -> WorkerFates:
    """The scheduler's ``WorkerFates``, added now if it has none (in its event loop)."""
    plugin = scheduler.plugins.get(NAME)
    if plugin is None:
        plugin = WorkerFates()
        scheduler.add_plugin(plugin)
        # add_plugin does not await start(): set up what start() would, now
        plugin._changed = asyncio.Event()
        plugin.serve(scheduler)
    return plugin


def ask(client, worker: str, wait: float = FATE_WAIT) -> str | None:
    """Ask the scheduler why ``worker`` left (None if it cannot say: no
    ``WorkerFates`` on that scheduler, or the question failed)."""
    try:
        return client.sync(client.scheduler.daskflow_worker_fate, worker=worker, wait=wait,
                           callback_timeout=wait + 10)
    except Exception:
        return None
