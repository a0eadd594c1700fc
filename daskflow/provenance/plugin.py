"""The provenance plugin: a Dask SchedulerPlugin that records one run.

It sees every task of its run (their keys end with the run's token), what
the client says of each call (``calls``: an annotation on its task), the
tasks' dependency keys and transitions, and the reports the task body sends
(failed tries, memo hits, files, chunked calls); never a task's function or
arguments, so the task body may change its signature freely. The hooks run
in the scheduler's event loop, so they only append to a queue; a writer
thread turns the queue into batches written to the run's SQLite store
(``provenance.ProvenanceStore``) twice a second, off the loop. The thread
sleeps between batches (an event wakes it early only to settle or stop):
woken by each item, it would take the interpreter lock from the loop at
every task. The thread also applies each batch to the run's
``dashboard.state.WorkflowState``, the live aggregate that the dashboard's
Workflow page and ``daskflow run`` read.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from .. import failure_log, worker_fates
from ..dask_internals import blamed_key, drop_annotation, transition_facts
from ..redaction import redact_batch, redact_text
from .calls import ANNOTATION, call_of, rows
from .report import TOPIC, chunk_times

logger = logging.getLogger("daskflow.provenance")

FLUSH_INTERVAL = 0.5  # seconds between batches
STATES = {"memory": "done", "erred": "failed", "processing": "running",
          "forgotten": None, "released": None, "waiting": "pending", "queued": "pending",
          "no-worker": "pending"}


class ProvenancePlugin(SchedulerPlugin):
    """Record the run ``run["run_id"]`` (tasks whose keys end with ``token``) in ``db_path``."""

    def __init__(self, run: dict[str, Any], db_path: str, token: str):
        self.run = run
        self.db_path = db_path
        self.token = token
        self.name = f"daskflow-provenance-{token}"
        self._queue: queue.SimpleQueue | None = None  # made on the scheduler, in start()
        self._wake: threading.Event | None = None  # the writer's batch is due now
        self._thread: threading.Thread | None = None
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
        self._thread = threading.Thread(target=self._write_loop, name=self.name, daemon=True)
        from ..dashboard.register import attach
        from ..dashboard.state import WorkflowState

        self.state = WorkflowState(self.run, self.token)
        self.state.settle = self.settle
        self._fates = worker_fates.ensure(scheduler)
        self._fates.listen(self._fate_learnt)
        try:
            attach(scheduler, self.state)
        except Exception:  # never let monitoring break the run
            logger.exception("daskflow: could not attach the run to the dashboard")
        self._thread.start()

    async def settle(self, timeout: float = 5) -> None:
        """Wait until the events queued so far are applied to ``state``."""
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
        for key, desc in described.items():
            if desc is None or not (isinstance(key, str) and key.endswith(self.token)):
                continue
            ts = scheduler.tasks.get(key)
            deps = []
            if ts is not None:
                deps = [dts.key for dts in ts.dependencies]
                drop_annotation(ts, ANNOTATION)  # read: the worker need not get it
            call = call_of(desc)
            if call is not None:
                self._calls[key] = call
            self._queue.put(("new", key, now, desc, deps))

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        # start == finish: a recommendation that left the task where it was (a
        # queued task goes waiting -> waiting, then waiting -> queued); no row
        if start != finish and isinstance(key, str) and key.endswith(self.token):
            kwargs = transition_facts(kwargs)  # a copy: every plugin gets the same dict
            if finish == "erred":
                kwargs = self._why_erred(key, kwargs)
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
                self._announce(key, _lost(worker, info["fate"]))
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

    def log_event(self, topic, msg) -> None:
        if topic == TOPIC and isinstance(msg, dict) and msg.get("token") == self.token:
            if "shared" in msg:
                self._queue.put(("shared", msg["shared"], time.time()))
            else:
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
            self._queue.put(("end", time.time(), "completed"))
            self._wake.set()
            asyncio.get_running_loop().call_soon(self._leave, scheduler)

    def _leave(self, scheduler) -> None:
        if self.name in scheduler.plugins:
            scheduler.remove_plugin(name=self.name)
        if self._fates is not None:
            self._fates.unlisten(self._fate_learnt)
        self._queue.put(None)  # the writer thread ends after the last batch
        self._wake.set()

    async def close(self) -> None:
        if self._fates is not None:
            self._fates.unlisten(self._fate_learnt)
        self._queue.put(("end", time.time(), "completed"))
        self._queue.put(None)
        if self._wake is not None:
            self._wake.set()
        if self._thread is not None:
            await _until(lambda: not self._thread.is_alive(), 30)

    # --------------------------------------------------------- writer side
    def _write_loop(self) -> None:
        from .store import ProvenanceStore

        store = ProvenanceStore(self.db_path)
        store.start_run(self.run)
        memo_hits: set[str] = set()  # calls answered from the cache stay "memo" when done
        chunks: set[str] = set()  # chunk tasks: their calls have rows, they do not
        bash: set[str] = set()  # bash tasks: done means exit code 0 (failures report theirs)
        lost: dict[str, set[str]] = {}  # worker -> keys lost with it whose cause is not known
        failed: set[str] = set()  # calls whose last state is failed: the run then failed
        ended = False
        try:
            while True:
                items, stop = self._drain()
                if items:
                    batch, end = _to_batch(items, memo_hits, chunks, bash, lost)
                    batch = _private(batch, self.record_arguments)
                    for update in batch["updates"]:
                        if update.get("state") == "failed":
                            failed.add(update["key"])
                        elif update.get("state") in ("done", "memo"):
                            failed.discard(update["key"])
                    if end is not None and failed and end[1] == "completed":
                        end = (end[0], "failed")
                    try:  # the live views first: they need not wait for the disk
                        self.state.apply(batch)
                    except Exception:
                        logger.exception("daskflow: could not update the live run state")
                    try:
                        store.record(batch)
                    except Exception:  # never let provenance break the run
                        logger.exception("daskflow: could not record a provenance batch in %s",
                                         self.db_path)
                    if end is not None and not ended:
                        try:  # else the writer dies here and the live state never ends
                            store.end_run(self.run["run_id"], *end)
                        except Exception:
                            logger.exception("daskflow: could not record the end of run %s in %s",
                                             self.run["run_id"], self.db_path)
                        self.state.ended(*end)
                        ended = True
                    for item in items:
                        if item[0] == "settle":
                            item[1].set()
                if stop:
                    return
        finally:
            store.close()

    def _drain(self) -> tuple[list, bool]:
        """The items queued by the next batch's time (or a wake-up), and
        whether the writer stops after them."""
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


def _to_batch(items: list, memo_hits: set[str], chunks: set[str], bash: set[str],
              lost: dict[str, set[str]] | None = None) -> tuple[dict[str, list], tuple | None]:
    """Queue items → the store's batch (tasks, deps, transitions, updates, tries, files)."""
    batch: dict[str, list] = {"tasks": [], "deps": [], "transitions": [], "updates": [],
                              "tries": [], "files": []}
    end = None
    lost = {} if lost is None else lost
    for item in items:
        kind = item[0]
        if kind == "new":
            _, key, when, desc, deps = item
            new = rows(key, when, desc, deps)
            if new and new[0]["chunk_key"] is not None:
                chunks.add(key)
            if [row.pop("bash") for row in new if "bash" in row][:1] == [True] \
                    and new[0]["chunk_key"] is None:
                bash.add(key)
            batch["tasks"].extend(new)
            for row in new:
                batch["deps"].extend((row["key"], dep) for dep in row.pop("deps"))
                streams = row.pop("streams", None)
                if streams:
                    batch["updates"].append({"key": row["key"], **streams})
        elif kind == "transition":
            _, key, start, finish, when, info = item
            worker = info.get("worker")
            batch["transitions"].append((key, start, finish, when, worker))
            update = None if key in chunks else _update_for(key, finish, when, info)
            if finish == "forgotten":
                chunks.discard(key)
                memo_hits.discard(key)
                bash.discard(key)
            if update and info.get("lost") and not info.get("fate"):
                lost.setdefault(info["lost"], set()).add(key)  # its cause may come later
            if update:
                if update["state"] == "done" and key in memo_hits:
                    update["state"] = "memo"
                if update["state"] == "done" and key in bash:
                    update["exit_code"] = 0
                batch["updates"].append(update)
        elif kind == "times":
            _, msg, worker = item
            host = _host(worker) if worker else None
            done = {"state": "done", "tries": 1, "worker": worker, "host": host}
            if msg.get("exit_code") is not None:
                done["exit_code"] = msg["exit_code"]
            batch["updates"].extend({"key": key, "started": start, "finished": end, **done}
                                    for key, start, end in chunk_times(msg))
        elif kind == "calls":
            _, calls, worker = item
            for call in calls:
                if call.get("memo") == "hit":
                    memo_hits.add(call["ident"])
                _call_rows(call, worker, batch)
        elif kind == "shared":  # in-session cache hits: rows of their own
            _, calls, when = item
            for call in calls:
                batch["tasks"].append({"key": call["key"], "tid": call["tid"], "app": call["app"],
                                       "app_hash": call["app_hash"],
                                       "args": f"(identical to {call['shares']})",
                                       "submitted": when, "chunk_key": None, "index": None})
                batch["updates"].append({"key": call["key"], "state": "memo", "memo": "hit",
                                         "started": when, "finished": when})
                batch["deps"].append((call["key"], call["shares"]))
        elif kind == "fate":  # why a worker left, learnt after its tasks were recorded
            _, worker, cause = item
            for key in sorted(lost.pop(worker, ())):
                batch["updates"].append({"key": key, "exception": _lost(worker, cause)})
        elif kind == "end":
            end = end or (item[1], item[2])
    batch["updates"] = _merged(batch["updates"])
    return batch, end


def _merged(updates: list[dict]) -> list[dict]:
    """One update per key, later fields over earlier ones (the store may apply
    a batch's updates in any order)."""
    merged: dict[str, dict] = {}
    for update in updates:
        known = merged.get(update["key"])
        if known is None:  # most keys: one update (its None fields mean "not known")
            merged[update["key"]] = update
        else:
            merged[update["key"]] = {**known, **{k: v for k, v in update.items()
                                                 if v is not None}}
    return list(merged.values())


def _record_arguments() -> bool:
    """``daskflow.provenance.record-arguments``: keep call arguments as text
    (else as keyed digests: arguments may hold passwords)."""
    import dask

    return bool(dask.config.get("daskflow.provenance.record-arguments", default=False))


def _private(batch: dict[str, list], record_arguments: bool) -> dict[str, list]:
    """What of a batch may be kept, in one place: call arguments as digests
    (unless the run records them) and every text redacted (URL passwords,
    signed query strings; see ``redaction``). Applied before the batch goes
    to the live state and to the store."""
    for row in batch.get("tasks") or ():
        digest = row.pop("args_digest", None)
        if digest is not None and not record_arguments:
            row["args"] = digest
    return redact_batch(batch)


def _update_for(key: str, finish: str, when: float, info: dict) -> dict | None:
    state = STATES.get(finish)
    if state is None:
        return None
    update: dict[str, Any] = {"key": key, "state": state}
    if finish == "processing":
        update["started"] = when
        update["worker"] = info.get("worker")
    elif finish in ("memory", "erred"):
        update["finished"] = when
        startstops = info.get("startstops") or ()
        for ss in startstops:
            if ss.get("action") == "compute":
                update["started"], update["finished"] = ss["start"], ss["stop"]
        if info.get("worker"):
            update["worker"] = info["worker"]
            update["host"] = _host(info["worker"])
        if finish == "erred":
            update["exception"] = _erred_text(info)
            update["traceback"] = info.get("traceback_text")
        elif info.get("nbytes") is not None:
            update["nbytes"] = info["nbytes"]
    return update


def _erred_text(info: dict) -> str:
    """Why a task erred: its own exception, its lost worker, or the dependency blamed."""
    if info.get("exception_text"):
        return info["exception_text"]
    if info.get("lost"):
        return _lost(info["lost"], info.get("fate"))
    blamed = info.get("blamed")
    if blamed:
        app, tid = blamed
        return f"dependency {app} tid {tid} failed" if tid is not None \
            else f"dependency {app} failed"
    return "a dependency failed"


def _lost(worker: str, cause: str | None) -> str:
    return "WorkerLost: " + worker_fates.lost_text(worker, cause)


def _host(address: str) -> str:
    host = address.split("://", 1)[-1]
    return host.rsplit(":", 1)[0]


def _call_rows(call: dict, worker: str | None, batch: dict[str, list]) -> None:
    key = call["ident"]
    tries = len(call["tries"]) + (0 if call.get("error") else 1)
    update = {"key": key, "memo": call.get("memo"), "tries": tries,
              "exit_code": call.get("exit_code"),
              "started": call.get("start"), "finished": call.get("end"), "worker": worker,
              "host": _host(worker) if worker else None}
    if call.get("memo") == "hit":
        update["state"] = "memo"
    if "[" in key:  # a chunked call: the chunk's own transitions do not speak for it
        update["state"] = update.get("state") or ("failed" if call.get("error") else "done")
        update["exception"] = call.get("error")
    if call.get("skipped"):
        update["tries"] = 0
    batch["updates"].append({k: v for k, v in update.items() if v is not None})
    for number, start, end, error in call["tries"]:
        batch["tries"].append({"key": key, "try": number, "start": start, "end": end,
                               "worker": worker, "exception": error})
    for direction, url, size, checksum in call.get("files") or ():
        batch["files"].append({"key": key, "direction": direction, "url": url, "size": size,
                               "checksum": checksum})
