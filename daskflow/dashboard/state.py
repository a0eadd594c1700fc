"""The live aggregate of a run that the Workflow page and ``daskflow run`` read.

The provenance plugin's writer thread applies every batch it writes to the
SQLite store to a ``WorkflowState`` too, so the live views never read the
database. Each event costs O(1) (a chunk's start costs one step per call in
it), and what is kept for drawing is bounded: per-app counters, the last
``intervals`` task intervals for the Gantt chart, app-to-app edge counts and
the last ``failures`` failures. The only structure that grows with the run
is the current state of each task the scheduler still holds (keys leave it
when the scheduler forgets them), which the counters need to move a task
from one state to the next.
"""

from __future__ import annotations

from collections import deque
import threading
import time
from typing import Any, Callable

EXTENSION = "daskflow-workflow"  # scheduler.extensions key of the run registry

STATES = ("pending", "running", "done", "failed", "memo", "cancelled")
FINAL = ("done", "failed", "memo")
#: what calls used, per app: summed, but ``peak_memory`` (the largest call's)
USAGE = ("cpu_user", "cpu_system", "peak_memory", "read_bytes", "write_bytes")
INTERVALS = 2000  # task intervals kept for the Gantt chart
FAILURES = 50  # failures kept with their messages
MESSAGE_LIMIT = 1000  # characters of a failure's message


def app_of_key(key: str) -> str:
    """The app of a key ``"{app}-{tid}-{token}"`` (a call of a chunk: ``"...[i]"``)."""
    base = key.split("[", 1)[0]
    parts = base.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else base


class WorkflowState:
    """Per-app counts, recent task intervals, the app graph and recent
    failures of one run, updated from the plugin's batches.

    ``apply`` runs in the plugin's writer thread, ``snapshot`` wherever a
    view runs (the scheduler's event loop); a lock keeps each consistent.
    """

    def __init__(self, run: dict[str, Any], token: str | None = None,
                 intervals: int = INTERVALS, failures: int = FAILURES):
        self.run_id: str = run.get("run_id", "?")
        self.token = token or self.run_id  # unique on the scheduler (run ids are per directory)
        self.script: str | None = run.get("script")
        self.start: float = run.get("start") or time.time()
        self.end: float | None = None
        self.status: str = "running"
        self.version = 0  # bumped by every change: views redraw only when it moved
        self.lock = threading.Lock()
        self.settle: Callable | None = None  # async (timeout) -> None, set by the plugin
        self._tasks: dict[str, list] = {}  # key -> [app, state, tid]
        self._chunks: dict[str, int] = {}  # chunk key -> calls in it
        # a block's calls, together until one has its own story: chunk key ->
        # [app, state, tids, indexes still in that state, indexes with an entry of their own]
        self._packs: dict[str, list] = {}
        self.counts: dict[str, dict[str, int]] = {}  # app -> state -> tasks
        self.compute: dict[str, float] = {}  # app -> seconds of finished tries
        self.usage: dict[str, list] = {}  # app -> what its calls used, as ``USAGE``
        self.intervals: deque = deque(maxlen=intervals)  # (worker, start, end, app, tid, state)
        self.edges: dict[tuple[str, str], int] = {}  # (upstream app, app) -> dependencies
        self.failures: deque = deque(maxlen=failures)
        self.n_failed = 0

    def __getstate__(self) -> dict[str, Any]:  # handed from a writer to the next
        state = dict(self.__dict__)
        state.pop("lock")
        state["settle"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("usage", {})
        self.lock = threading.Lock()

    # ------------------------------------------------------------ writer side
    def apply(self, batch: dict[str, list]) -> None:
        """Take one batch as the plugin writes it (``plugin._to_batch``)."""
        with self.lock:
            for row in batch.get("tasks") or ():
                self._new(row)
            for block in batch.get("blocks") or ():
                self._block(block)
            for key, dep in batch.get("deps") or ():
                edge = (self._app(dep), self._app(key))
                self.edges[edge] = self.edges.get(edge, 0) + 1
            for update in batch.get("updates") or ():
                self._update(update)
            for key, _start, finish, _when, _worker in batch.get("transitions") or ():
                pack = self._packs.get(key) if finish == "processing" else None
                if pack is not None and pack[1] == "pending":
                    self._move_many(pack[0], "pending", "running", len(pack[3]))
                    pack[1] = "running"
                if finish == "processing" and key in self._chunks:
                    for i in range(self._chunks[key]):
                        entry = self._tasks.get(f"{key}[{i}]")
                        if entry is not None and entry[1] == "pending":
                            self._move(entry, "running")
                elif finish == "forgotten":
                    self._forget(key)
            self.version += 1

    def ended(self, when: float, status: str) -> None:
        """The run ended: keep its counts, drop its per-task map (no more events come)."""
        with self.lock:
            self.end, self.status = when, status
            self._tasks.clear()
            self._chunks.clear()
            self._packs.clear()
            self.version += 1

    def _new(self, row: dict) -> None:
        key = row["key"]
        if key in self._tasks:
            return
        app = row.get("app") or app_of_key(key)
        self._tasks[key] = entry = [app, None, row.get("tid")]
        self._move(entry, "pending")
        if row.get("chunk_key") is not None:
            self._chunks[row["chunk_key"]] = self._chunks.get(row["chunk_key"], 0) + 1

    def _block(self, block) -> None:
        """A chunk's plain calls (``provenance.blocks.CallBlock``): new, and
        done once it carries their times. A block comes once or twice; its
        calls are counted together, in O(1) steps per block but for its
        finished calls' times, until one has an update of its own
        (``_detach``)."""
        pack = self._packs.get(block.chunk_key)
        if pack is None:
            pack = self._packs[block.chunk_key] = [block.app, "pending", block.tids,
                                                   set(range(len(block.tids))), set()]
            self._move_many(block.app, None, "pending", len(block.tids))
        if block.times is None:
            return
        still = pack[3]
        finished = [(i, span) for i, span in enumerate(block.times)
                    if span is not None and i in still]
        still.difference_update(i for i, _ in finished)
        self._move_many(block.app, pack[1], "done", len(finished))
        self.compute[block.app] = self.compute.get(block.app, 0.0) + sum(
            end - start for _, (start, end) in finished)
        if block.usage:
            for i, _ in finished:
                if block.usage[i] is not None:
                    self._used(block.app, block.usage[i])
        self.intervals.extend((block.worker or "?", start, end, block.app, block.tids[i], "done")
                              for i, (start, end) in finished[-(self.intervals.maxlen or 1):])

    def _detach(self, key: str) -> list | None:
        """The entry of call ``key`` of a block, now counted on its own."""
        chunk, bracket, index = key.rpartition("[")
        pack = self._packs.get(chunk) if bracket and index[:-1].isdigit() else None
        i = int(index[:-1]) if pack is not None else -1
        if pack is None or i >= len(pack[2]) or i in pack[4]:
            return None
        state = pack[1] if i in pack[3] else "done"  # else its block's times said so
        pack[3].discard(i)
        pack[4].add(i)
        entry = self._tasks[key] = [pack[0], state, pack[2][i]]
        return entry

    def _update(self, update: dict) -> None:
        key = update["key"]
        entry = self._tasks.get(key) or self._detach(key)
        if entry is None:  # its row came in an earlier run of the plugin's queue
            self._new({"key": key})
            entry = self._tasks[key]
        if update.get("cpu_user") is not None:
            self._used(entry[0], [update.get(name) or 0 for name in USAGE])
        state = update.get("state")
        if state is None or state == entry[1]:
            return
        self._move(entry, state)
        if state not in FINAL:
            return
        started, finished = update.get("started"), update.get("finished")
        if started is not None and finished is not None and state != "memo":
            self.compute[entry[0]] = self.compute.get(entry[0], 0.0) + (finished - started)
            self.intervals.append((update.get("worker") or "?", started, finished, entry[0],
                                   entry[2], state))
        if state == "failed":
            self.n_failed += 1
            message = str(update.get("exception") or "(no message)")
            self.failures.append({"key": key, "app": entry[0], "tid": entry[2],
                                  "worker": update.get("worker"), "time": finished or time.time(),
                                  "message": message[:MESSAGE_LIMIT]})

    def _forget(self, key: str) -> None:
        entry = self._tasks.pop(key, None)
        if entry is not None and entry[1] in ("pending", "running"):
            self._move(entry, "cancelled")  # released before it finished
        for i in range(self._chunks.pop(key, 0)):
            member = self._tasks.pop(f"{key}[{i}]", None)
            if member is not None and member[1] in ("pending", "running"):
                self._move(member, "cancelled")
        pack = self._packs.pop(key, None)
        if pack is not None:  # its calls not finished were released with it
            self._move_many(pack[0], pack[1], "cancelled", len(pack[3]))
            for i in pack[4]:
                member = self._tasks.pop(f"{key}[{i}]", None)
                if member is not None and member[1] in ("pending", "running"):
                    self._move(member, "cancelled")

    def _used(self, app: str, used) -> None:
        total = self.usage.get(app)
        if total is None:
            self.usage[app] = list(used)
            return
        for n in (0, 1, 3, 4):
            total[n] += used[n]
        total[2] = max(total[2], used[2])

    def _move_many(self, app: str, state: str | None, to: str, n: int) -> None:
        """Move ``n`` calls of ``app`` from ``state`` (None: new) to ``to``."""
        counts = self.counts.get(app)
        if counts is None:
            counts = self.counts[app] = dict.fromkeys(STATES, 0)
        if state is not None:
            counts[state] -= n
        counts[to] = counts.get(to, 0) + n

    def _move(self, entry: list, state: str) -> None:
        self._move_many(entry[0], entry[1], state, 1)
        entry[1] = state

    def _app(self, key: str) -> str:
        entry = self._tasks.get(key)
        return entry[0] if entry is not None else app_of_key(key)

    # -------------------------------------------------------------- readers
    def snapshot(self, intervals: bool = False) -> dict[str, Any]:
        """A copy of the aggregate (plain types, so it can travel over a comm).

        Its cost depends on the number of apps, edges and kept intervals and
        failures, never on the number of tasks in the run.
        """
        with self.lock:
            apps = {app: {**counts, "total": sum(counts.values()),
                          "compute": round(self.compute.get(app, 0.0), 6)}
                    for app, counts in self.counts.items()}
            for app, used in self.usage.items():
                if app in apps:
                    apps[app]["usage"] = dict(zip(USAGE, used))
            snap = {"run_id": self.run_id, "token": self.token, "script": self.script, "start": self.start,
                    "end": self.end, "status": self.status, "version": self.version,
                    "apps": apps, "n_failed": self.n_failed,
                    "edges": [[a, b, n] for (a, b), n in self.edges.items()],
                    "failures": list(self.failures)}
            if intervals:
                snap["intervals"] = [list(i) for i in self.intervals]
        return snap

    def sizes(self) -> dict[str, int]:
        """How many entries each structure holds (for tests and benchmarks)."""
        with self.lock:
            return {"tasks": len(self._tasks) + sum(len(p[3]) for p in self._packs.values()),
                    "chunks": len(self._chunks) + len(self._packs),
                    "intervals": len(self.intervals), "failures": len(self.failures),
                    "edges": len(self.edges), "apps": len(self.counts)}


class MirroredState:
    """The live aggregate of a run whose writer is a process of its own
    (``provenance.writer``): the last snapshot it sent, read as a
    ``WorkflowState`` is (``snapshot``, ``version``, ``status``, ...)."""

    def __init__(self, run: dict[str, Any], token: str | None = None):
        self.run_id: str = run.get("run_id", "?")
        self.token = token or self.run_id
        self.script: str | None = run.get("script")
        self.start: float = run.get("start") or time.time()
        self.end: float | None = None
        self.status: str = "running"
        self.version = 0
        self.lock = threading.Lock()
        self.settle: Callable | None = None
        self._snapshot: dict[str, Any] = {"apps": {}, "n_failed": 0, "edges": [],
                                          "failures": [], "intervals": []}

    def take(self, snapshot: dict[str, Any]) -> None:
        """The writer's newest snapshot (``WorkflowState.snapshot(intervals=True)``)."""
        with self.lock:
            self._snapshot = snapshot
            self.end, self.status = snapshot.get("end"), snapshot.get("status", self.status)
            self.version += 1

    def ended(self, when: float, status: str) -> None:
        """The run ended without its writer saying so (it is gone)."""
        with self.lock:
            if self.end is None:
                self.end, self.status = when, status
                self.version += 1

    def snapshot(self, intervals: bool = False) -> dict[str, Any]:
        with self.lock:
            snap = {**self._snapshot, "run_id": self.run_id, "token": self.token,
                    "script": self.script, "start": self.start, "end": self.end,
                    "status": self.status, "version": self.version}
        if not intervals:
            snap.pop("intervals", None)
        return snap


class WorkflowRegistry:
    """The runs a scheduler has seen, newest last (a scheduler extension:
    ``scheduler.extensions["daskflow-workflow"]``). Finished runs stay
    visible until ``keep`` newer runs pushed them out."""

    def __init__(self, keep: int = 8):
        self.keep = keep
        self.runs: dict[str, WorkflowState] = {}

    def add(self, state: WorkflowState) -> None:
        self.runs.pop(state.token, None)
        self.runs[state.token] = state
        while len(self.runs) > self.keep:
            finished = [r for r, s in self.runs.items() if s.end is not None]
            del self.runs[finished[0] if finished else next(iter(self.runs))]

    def get(self, run_id: str | None = None) -> WorkflowState | None:
        """The run ``run_id`` (or token); without one, the newest live run
        (else the newest)."""
        if run_id is not None:
            found = [s for s in self.runs.values() if run_id in (s.run_id, s.token)]
            return found[-1] if found else None
        live = [s for s in self.runs.values() if s.end is None]
        if live:
            return live[-1]
        return next(reversed(self.runs.values()), None)
