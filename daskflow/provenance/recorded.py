"""The Workflow page of recorded runs, read from their provenance databases.

A live run's page reads the aggregate its writer keeps; once the script has
exited, its scheduler and that aggregate are gone, but the run's
``provenance.db`` holds everything the page shows. ``RecordedRuns`` rebuilds
the aggregate of each run from its database (``recorded_state``) when the
page asks for it, and again whenever the database changed (a run still
going on, written by its writer process): counts per app and state, their
compute time, the last task intervals, the app graph, the last failures, and
the pools and blocks of the workers that took part.

Reading costs what ``daskflow show`` costs (the counts come from the blocks'
tallies) plus the last intervals and the dependencies; a million-call run
reads in a few seconds, and only when it changed, at most a fifth of the
time while it goes on.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ..dashboard.pools import DEFAULT_POOL, block_of, in_order
from ..dashboard.state import (FAILURES, INTERVALS, MESSAGE_LIMIT, STATES, USAGE, WorkflowState,
                               app_of_key)
from .store import DB_NAME, ProvenanceStore, run_status

RELOAD_AFTER = 1.0  # seconds between two looks at a database for changes


def recorded_state(store: ProvenanceStore, intervals: int = INTERVALS) -> WorkflowState:
    """The aggregate of the run recorded in ``store``, as its live page had it."""
    summary = store.summary()
    run = summary["run"] or {}
    state = WorkflowState({"run_id": run.get("run_id", "?"), "script": run.get("script"),
                           "start": run.get("start_time")}, intervals=intervals)
    state.status = run_status(run) if run else "unknown"
    state.end = run.get("end_time")
    for app, counts in summary["apps"].items():
        app = app if app is not None else "?"
        state.counts[app] = {s: counts["states"].get(s, 0) for s in STATES}
        state.compute[app] = counts["duration_total"] or 0.0
        if counts.get("peak_memory") is not None or counts.get("cpu_user"):
            state.usage[app] = [counts.get(name) or 0 for name in USAGE]
    state.n_failed = summary["states"].get("failed", 0)
    state.intervals.extend((r["worker"] or "?", r["started"], r["finished"], r["app"] or "?",
                            r["tid"], r["state"]) for r in store.recent(intervals))
    for key, upstream in store.dependencies(by="key"):
        edge = (app_of_key(upstream), app_of_key(key))
        state.edges[edge] = state.edges.get(edge, 0) + 1
    state.failures.extend({"key": f["key"], "app": f["app"] or "?", "tid": f["tid"],
                           "worker": f["worker"], "time": f["finished"] or state.start,
                           "message": str(f["exception"] or "(no message)")[:MESSAGE_LIMIT]}
                          for f in store.last_failures(FAILURES))
    state.version = 1
    return state


def recorded_pools(store: ProvenanceStore, running: bool) -> list[dict[str, Any]]:
    """One row per block of the workers that took part: ``pool, block,
    state, workers, processing`` as the live page has them. ``state`` is
    ``up`` while a worker of the block is still in the run, else ``gone``;
    ``processing`` counts the block's calls still running."""
    busy = store.running_by_worker() if running else {}
    blocks: dict[tuple[str, str], dict[str, Any]] = {}
    for w in store.workers():
        pool = w["pool"] or DEFAULT_POOL
        key = (pool, w["block"] or block_of(w["name"] or w["address"], pool))
        row = blocks.setdefault(key, {"pool": key[0], "block": key[1], "state": "gone",
                                      "workers": 0, "processing": 0})
        row["workers"] += 1
        row["processing"] += busy.get(w["address"], 0)
        if running and w["left"] is None:
            row["state"] = "up"
    return in_order(blocks.values())


class RecordedRuns:
    """The runs a post-run dashboard serves: one run directory, or every run
    under a runinfo directory (``choices``); each read from its database when
    shown, and read again once the database changed."""

    def __init__(self, directories: list[str], shown: str | None = None):
        self.directories = list(directories)
        self.shown = shown or (self.directories[-1] if self.directories else None)
        self._lock = threading.Lock()
        # run dir -> (stamp, checked, state, pools, seconds its reading took)
        self._loaded: dict[str, tuple] = {}

    def choices(self) -> list[tuple[str, str]]:
        """``(label, run directory)`` of each run, newest first."""
        return [(os.path.basename(d), d) for d in reversed(self.directories)]

    def get(self, directory: str | None = None) -> WorkflowState | None:
        """The aggregate of the run in ``directory`` (default: the one shown first)."""
        loaded = self._load(directory or self.shown)
        return loaded[2] if loaded else None

    def pools(self, directory: str | None = None) -> list[dict[str, Any]]:
        """The pools and blocks of the run in ``directory``'s workers."""
        loaded = self._load(directory or self.shown)
        return loaded[3] if loaded else []

    def _load(self, directory: str | None) -> tuple | None:
        if directory is None or directory not in self.directories:
            return None
        path = os.path.join(directory, DB_NAME)
        now = time.monotonic()
        with self._lock:
            known = self._loaded.get(directory)
            # a run that takes long to read is read less often: at most a fifth of the time
            if known is not None and now - known[1] < max(RELOAD_AFTER, 5 * known[4]):
                return known
            stamp = _stamp(path)
            if known is not None and stamp == known[0]:
                self._loaded[directory] = (stamp, now, *known[2:])
                return self._loaded[directory]
            try:
                with ProvenanceStore(path, readonly=True) as store:
                    state = recorded_state(store)
                    pools = recorded_pools(store, running=state.end is None)
            except (OSError, ValueError) as exc:  # gone, or not a provenance database
                state = WorkflowState({"run_id": os.path.basename(directory)})
                state.status = f"unreadable: {exc}"
                pools = []
            state.token = directory
            state.version = (known[2].version + 1) if known is not None else 1
            took = time.monotonic() - now
            self._loaded[directory] = (stamp, time.monotonic(), state, pools, took)
            return self._loaded[directory]


def _stamp(path: str) -> tuple:
    """What changes when a run's database does (its write-ahead log included)."""
    found = []
    for name in (path, path + "-wal"):
        try:
            st = os.stat(name)
            found.append((st.st_mtime_ns, st.st_size))
        except OSError:
            found.append(None)
    return tuple(found)
