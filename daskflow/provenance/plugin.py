"""The provenance plugin: a Dask SchedulerPlugin that records one run.

It sees every task of its run (their keys end with the run's token), what
the client says of each call (``calls``: an annotation on its task), the
tasks' dependency keys and transitions, and the reports the task body sends
(failed tries, memo hits, files, chunked calls); never a task's function or
arguments, so the task body may change its signature freely. The hooks run
in the scheduler's event loop, so they only append to a queue. Twice a
second a thread sends what was queued, as it is, to the run's writer: a
process of its own (``provenance.writer``) that writes the run's SQLite
store and keeps the run's live aggregate, whose snapshots come back to
``state`` (a ``dashboard.state.MirroredState``), what the dashboard's
Workflow page and ``daskflow run`` read. The thread sleeps between batches
(an event wakes it early only to settle or stop): woken by each item, it
would take the interpreter lock from the loop at every task. The writer
is the thread itself for the first two seconds of the run, so that the
process's start does not slow the cluster's and a short run needs none;
then the writer's state goes to a process of its own. A writer process that
cannot be started leaves the writing to that thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from .. import failure_log, worker_fates
from ..dashboard.pools import worker_facts
from ..dask_internals import blamed_key, drop_annotation, finished_metadata, transition_facts
from ..redaction import redact_text
from . import writer
from .batches import CANCELLED, lost_error
from .calls import ANNOTATION
from .report import TOPIC, USAGE

logger = logging.getLogger("daskflow.provenance")

FLUSH_INTERVAL = 0.5  # seconds between batches
HANDOVER_AFTER = 2.0  # seconds into a run: the plugin's thread hands the writing to a process
WRITER_EXIT_WAIT = 30.0  # seconds the plugin waits for its writer to finish at the end
END_HANDLER = "daskflow_end_run"  # scheduler handler: end a run, once it is all recorded


class ProvenancePlugin(SchedulerPlugin):
    """Record the run ``run["run_id"]`` (tasks whose keys end with ``token``) in ``db_path``."""

    def __init__(self, run: dict[str, Any], db_path: str, token: str):
        self.run = run
        self.db_path = db_path
        self.token = token
        self.name = f"daskflow-provenance-{token}"
        self._queue: queue.SimpleQueue | None = None  # made on the scheduler, in start()
        self._wake: threading.Event | None = None  # the writer's batch is due now
        self._thread: threading.Thread | None = None  # sends the queue to the writer
        self._writer = None  # the writer process (subprocess.Popen)
        self._local: writer.Writer | None = None  # the writer, when no process could start
        self._spec: dict | None = None  # what the writer is told first
        self._local_only = False  # no writer process could start
        self._dismissed = False  # the writer process was stopped before it had the run
        self._settling: dict[int, threading.Event] = {}  # settle id -> set once applied
        self._described = 0  # calls of the run whose description update_graph brought
        self._writer_gone: threading.Event | None = None  # the writer process ended
        self._writer_ready: threading.Event | None = None  # its imports are done
        self._left = False  # the run ended and the plugin left the scheduler
        self._client: str | None = None
        self.scheduler = None
        self.state = None  # the live aggregate (dashboard.state.WorkflowState)
        self.record_arguments = _record_arguments()  # read here, on the client
        self._fates: worker_fates.WorkerFates | None = None
        self._announced = 0  # console lines sent to the client
        self._pending: set = set()  # console lines waiting for a lost worker's cause
        self._calls: dict[str, tuple] = {}  # key -> (app, tid) of the run's live app calls

    # ---------------------------------------------------------------- hooks
    async def start(self, scheduler) -> None:
        self.scheduler = scheduler
        self._queue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._writer_gone = threading.Event()
        self._writer_ready = threading.Event()
        from ..dashboard.register import attach
        from ..dashboard.state import MirroredState

        spec = {"run": self.run, "db_path": os.path.abspath(self.db_path), "token": self.token,
                "record_arguments": self.record_arguments}
        self._spec = spec
        self.state = MirroredState(self.run, self.token)
        self.state.settle = self.settle
        self._fates = worker_fates.ensure(scheduler)
        self._fates.listen(self._fate_learnt)
        now = time.time()
        for address in list(scheduler.workers):  # those there before the run: joined at its start
            self._queue.put(("worker", worker_facts(scheduler, address, now)))
        try:
            attach(scheduler, self.state)
        except Exception:  # never let monitoring break the run
            logger.exception("daskflow: could not attach the run to the dashboard")
        scheduler.handlers[END_HANDLER] = _end_run_handler(scheduler)
        self._thread = threading.Thread(target=self._send_loop, name=self.name, daemon=True)
        self._thread.start()

    def _launch_writer(self) -> None:
        """Start the writer process; it says when it is ready (its imports
        done), and this thread writes until then (``_hand_over``)."""
        try:
            self._writer = writer.start()
        except Exception:  # never let provenance stop the run: go on writing from here
            logger.exception("daskflow: could not start the provenance writer process; "
                             "writing from the scheduler's process")
            self._local_only = True
            return
        threading.Thread(target=self._read_loop, name=f"{self.name}-answers",
                         daemon=True).start()

    def _hand_over(self) -> None:
        """The writer process is ready: it takes over from this thread."""
        try:
            writer.send(self._writer.stdin, {**self._spec, "resume": self._local.handover()})
        except Exception:  # the process is gone: go on writing from here
            logger.exception("daskflow: could not hand the provenance writer over to its "
                             "process; writing from the scheduler's process")
            self._dismissed = True
            self._writer.kill()
            self._writer_gone.wait(10)
            self._writer = None
            self._local_only = True
            self._local.resume()
            return
        self._local = None

    async def settle(self, timeout: float = 5, described: int = 0) -> None:
        """Wait until the events queued so far are applied to ``state``;
        first, until ``described`` calls came with their descriptions (what
        the client sent: its update-graph messages travel on its stream and
        are handled as tasks of their own, so this call may overtake them)."""
        if not await _until(lambda: self._described >= described, timeout):
            logger.warning("daskflow: run %s: %d of the %d calls the client described reached "
                           "the scheduler in %.0f s", self.run.get("run_id"), self._described,
                           described, timeout)
        if self._thread is None or not self._thread.is_alive():
            return
        applied = threading.Event()
        self._queue.put(("settle", applied))
        self._wake.set()
        await _until(applied.is_set, timeout)

    def update_graph(self, scheduler, *, client=None, annotations=None, **kwargs) -> None:
        """New tasks: those the client described (``calls``) get their rows."""
        now = time.time()
        if self._client is None and client is not None:
            self._client = client
        described = (annotations or {}).get(ANNOTATION)
        if not described:
            return
        for key, sealed in described.items():
            if sealed is None or not (isinstance(key, str) and key.endswith(self.token)):
                continue
            ts = scheduler.tasks.get(key)
            deps = []
            if ts is not None:
                deps = [dts.key for dts in ts.dependencies]
                drop_annotation(ts, ANNOTATION)  # read: the worker need not get it
            self._described += 1
            call, desc = sealed  # the description stays pickled (``calls.described``)
            if call is not None:
                self._calls[key] = call
            self._queue.put(("new", key, now, desc, deps))

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        # start == finish: a recommendation that left the task where it was (a
        # queued task goes waiting -> waiting, then waiting -> queued); no row
        if start != finish and isinstance(key, str) and key.endswith(self.token):
            used = None
            if finish == "memory":  # a chunk's report comes with it (``report.send_chunk``)
                report = finished_metadata(self.scheduler, key, kwargs, TOPIC)
                if report is not None:
                    self._reported(report)
                used = finished_metadata(self.scheduler, key, kwargs, USAGE)
            kwargs = transition_facts(kwargs)  # a copy: every plugin gets the same dict
            if used is not None:  # a plain call's usage (``report.send_finished``)
                kwargs["usage"] = used
            if finish == "erred":
                kwargs = self._why_erred(key, kwargs)
                kwargs.pop("exception", None)  # the writer needs its text, not the pickle
            elif finish == "forgotten":
                self._calls.pop(key, None)
            self._queue.put(("transition", key, start, finish, time.time(), kwargs))

    def _why_erred(self, key: str, info: dict) -> dict:
        """What the writer needs to say why ``key`` erred, and the console
        line of a call's own failure. distributed passes the exception text
        of an app's own error; a task whose worker died gets a pickled
        ``KilledWorker`` with itself as cause and no text; a dependent gets
        nothing, and the scheduler knows which task it blames."""
        info = dict(info)  # the scheduler hands the same kwargs to every plugin
        scheduler = self.scheduler
        if info.get("exception_text"):
            if not info["exception_text"].startswith(CANCELLED):  # asked for: not a failure
                self._announce(key, info["exception_text"])
        elif info.get("exception") is not None and info.get("cause") == key \
                and info.get("worker"):
            info["lost"] = worker = info["worker"]
            info["fate"] = self._fates.known(worker) if self._fates is not None else None
            if info["fate"] is None and self._fates is not None:
                task = asyncio.ensure_future(
                    self._announce_when_known(key, worker, self._calls.get(key)))
                self._pending.add(task)  # the loop keeps only a weak reference
                task.add_done_callback(self._pending.discard)
            else:
                self._announce(key, lost_error(worker, info["fate"]))
        elif scheduler is not None:
            try:
                blamed = blamed_key(scheduler, key)
                if blamed is not None:
                    info["blamed"] = self._calls.get(blamed) or (str(blamed), None)
            except Exception:  # never let provenance break the run
                logger.debug("daskflow: no blame for %s", key, exc_info=True)
        return info

    def _announce(self, key: str, error: str, call: tuple | None = None) -> None:
        """Tell the run's client (its console) that a call failed."""
        scheduler = self.scheduler
        if scheduler is None or self._announced > failure_log.MAX_LINES:
            return  # the client shows that many, then says where the rest are
        if call is None:
            call = self._calls.get(key)
        if call is None:
            return
        self._announced += 1
        msg = {"app": call[0], "tid": str(call[1]), "error": redact_text(error[:2000])}
        try:  # now: the line then reaches the client before the task's own error does
            scheduler.log_event(failure_log.topic(self.token), msg)
        except Exception:  # never let the console line break the run
            logger.debug("daskflow: could not announce the failure of %s", key, exc_info=True)

    async def _announce_when_known(self, key: str, worker: str, call: tuple | None) -> None:
        """The console line of a call whose worker was lost, once the cause
        is known (it often arrives just after the worker's removal)."""
        if call is None:
            return
        try:
            text = await self._fates.fate(worker)
        except Exception:
            text = worker_fates.lost_text(worker, None)
        self._announce(key, "WorkerLost: " + text, call)

    def _fate_learnt(self, worker: str, cause: str) -> None:
        self._queue.put(("fate", worker, cause))

    def add_worker(self, scheduler, worker: str) -> None:
        self._queue.put(("worker", worker_facts(scheduler, worker, time.time())))

    def remove_worker(self, scheduler, worker: str, **kwargs) -> None:
        self._queue.put(("worker", {"address": worker, "left": time.time()}))

    def log_event(self, topic, msg) -> None:
        if topic == TOPIC and isinstance(msg, dict) and msg.get("token") == self.token:
            if "shared" in msg:
                self._queue.put(("shared", msg["shared"], time.time()))
            else:
                self._reported(msg)

    def _reported(self, msg: dict) -> None:
        """A task body's report (``report.send``, ``report.send_chunk``)."""
        if "times" in msg:  # a chunk's plain calls (report.send_chunk)
            self._queue.put(("times", msg, msg.get("worker")))
        self._queue.put(("calls", msg["calls"], msg.get("worker")))
        for call in msg["calls"]:  # calls of a chunk: the chunk does not err
            if call.get("error") and not call.get("skipped") and "[" in call["ident"]:
                self._announce(call["ident"], call["error"],
                               (call.get("app") or call["ident"].rsplit("-", 2)[0],
                                call.get("tid")))

    def remove_client(self, scheduler, client: str) -> None:
        """The run's client left: finish the record and leave the scheduler
        (which may serve other clients for a long time)."""
        if client == self._client:
            asyncio.get_running_loop().call_soon(self._leave, scheduler, time.time())

    def _leave(self, scheduler, when: float) -> None:
        if self._left:
            return
        self._left = True
        self._queue.put(("end", when, "completed"))
        if self.name in scheduler.plugins:
            scheduler.remove_plugin(name=self.name)
        if self._fates is not None:
            self._fates.unlisten(self._fate_learnt)
        self._queue.put(None)  # the sender ends after the last batch
        self._wake.set()

    async def finish(self) -> None:
        """End the run now and wait until its writer recorded all of it
        (``daskflow.Client.close``, before the client leaves)."""
        if self.scheduler is not None:
            self._leave(self.scheduler, time.time())
        if self._thread is not None:
            await _until(lambda: not self._thread.is_alive(), WRITER_EXIT_WAIT)
        if self._writer is not None:
            await _until(self._writer_gone.is_set, WRITER_EXIT_WAIT)

    async def close(self) -> None:
        if self._fates is not None:
            self._fates.unlisten(self._fate_learnt)
        if self._queue is not None and not self._left:
            self._left = True
            self._queue.put(("end", time.time(), "completed"))
            self._queue.put(None)
            self._wake.set()
        if self._thread is not None:
            await _until(lambda: not self._thread.is_alive(), WRITER_EXIT_WAIT)
        if self._writer is not None:
            await _until(self._writer_gone.is_set, WRITER_EXIT_WAIT)
            if self._writer.poll() is None:
                logger.error("daskflow: the provenance writer of run %s did not finish in %.0f s;"
                             " stopping it", self.run.get("run_id"), WRITER_EXIT_WAIT)
                self._writer.kill()

    # --------------------------------------------------------- sender side
    def _send_loop(self) -> None:
        """Send the queued events to the writer, a batch at a time."""
        try:
            try:
                self._local = writer.Writer(self.run, self._spec["db_path"], self.token,
                                            self.record_arguments)
            except Exception:  # nothing can be recorded: the run goes on without
                logger.exception("daskflow: could not open the provenance store %s; run %s "
                                 "is not recorded", self.db_path, self.run.get("run_id"))
                self._writer_gone.set()
            else:
                # the run is in the store at once (``daskflow runs`` lists it), as the
                # scheduler's: a run whose scheduler process is gone before its end reads
                # "killed?"
                try:
                    self._local.store.start_run(self.run)
                except Exception:  # the writer says so again at each batch it cannot record
                    logger.exception("daskflow: could not record the start of run %s in %s",
                                     self.run.get("run_id"), self.db_path)
            handover = time.monotonic() + HANDOVER_AFTER
            while True:
                items, stop = self._drain()
                if self._local is not None and not stop and not self._local_only:
                    if self._writer is None and time.monotonic() >= handover:
                        self._launch_writer()  # the run goes on: its writer gets a process
                    elif self._writer is not None and self._writer_ready.is_set():
                        self._hand_over()
                    elif self._writer is not None and self._writer_gone.is_set():
                        self._writer, self._local_only = None, True  # it died starting
                if items:
                    self._deliver(items)
                if stop:
                    return
        finally:
            if self._writer is None and self._local is None:
                self._writer_gone.set()  # nothing was ever to be written
            if self._local is not None:
                self._local.close()
            if self._writer is not None and self._local is not None:
                self._dismissed = True  # started, never handed the run: not needed
                self._writer.kill()
            elif self._writer is not None:
                try:
                    writer.send(self._writer.stdin, None)
                    self._writer.stdin.close()
                except OSError:
                    pass

    def _deliver(self, items: list) -> None:
        if self._local is not None:  # the writer in this thread
            events = [item for item in items if item[0] != "settle"]
            if events:
                self._local.write(events)
                self.state.take(self._local.state.snapshot(intervals=True))
            for item in items:
                if item[0] == "settle":
                    item[1].set()
            return
        sent = []
        for item in items:
            if item[0] == "settle":
                self._settling[id(item[1])] = item[1]
                item = ("settle", id(item[1]))
            sent.append(item)
        if not self._writer_gone.is_set():
            try:
                writer.send(self._writer.stdin, sent)
                return
            except OSError:  # the writer is gone: its reader says so
                self._writer_gone.wait(5)
        self._release_settling()
        for item in sent:  # nothing records the run now, but its live state still ends
            if item[0] == "end":
                self.state.ended(item[1], item[2])

    def _read_loop(self) -> None:
        """Take the writer's answers: live snapshots, settled events."""
        source = self._writer.stdout
        try:
            while True:
                try:
                    kind, *value = writer.receive(source)
                    value = value[0] if len(value) == 1 else value
                except EOFError:
                    return
                if kind == "ready":
                    self._writer_ready.set()
                elif kind == "state":
                    self.state.take(value)
                elif kind == "log":
                    logger.log(value[0], "%s", value[1])
                elif kind == "settled":
                    for n in value:
                        event = self._settling.pop(n, None)
                        if event is not None:
                            event.set()
        except Exception:
            logger.exception("daskflow: could not read the provenance writer's answers")
        finally:
            code = self._writer.wait()
            if code != 0 and not self._dismissed:
                logger.error("daskflow: the provenance writer of run %s exited with code %s: "
                             "what happens after is not recorded in %s",
                             self.run.get("run_id"), code, self.db_path)
            self._writer_gone.set()
            self._release_settling()

    def _release_settling(self) -> None:
        for event in list(self._settling.values()):
            event.set()
        self._settling.clear()

    def _drain(self) -> tuple[list, bool]:
        """The items queued by the next batch's time (or a wake-up), and
        whether the sender stops after them."""
        self._wake.wait(FLUSH_INTERVAL)
        self._wake.clear()  # an item put before a later set() is taken now or next time
        items: list = []
        stop = False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items, stop
            if item is None:
                stop = True  # take what is left, then stop
            else:
                items.append(item)


def _end_run_handler(scheduler):
    """The scheduler handler ``END_HANDLER``."""
    async def daskflow_end_run(token: str) -> bool:
        """End run ``token`` and wait until it is recorded; False if no run
        of that token records here."""
        plugin = scheduler.plugins.get(f"daskflow-provenance-{token}")
        if not isinstance(plugin, ProvenancePlugin):
            return False
        await plugin.finish()
        return True

    return daskflow_end_run


async def _until(condition, timeout: float) -> bool:
    """Wait in the event loop (no helper thread: at interpreter exit,
    ``asyncio.to_thread`` can no longer start one) until ``condition()`` holds
    or ``timeout`` seconds passed; returns whether it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _record_arguments() -> bool:
    """``daskflow.provenance.record-arguments``: keep call arguments as text
    (else as keyed digests: arguments may hold passwords)."""
    import dask

    return bool(dask.config.get("daskflow.provenance.record-arguments", default=False))


