"""Fail fast instead of waiting forever for workers that will not come.

A task waits in the scheduler until some worker can run it. When the worker
processes daskflow started on this machine cannot start (a broken
environment, a preload that exits) or are all gone, that wait never ends.
``WorkerWatch`` runs every half second in the scheduler's event loop and,
per pool of local processes:

* at start-up, declares the pool failed when every one of its processes
  exited before any worker joined, or when none joined within
  ``daskflow.workers.startup-timeout``;
* once it had workers, declares it failed when it has had none for
  ``daskflow.workers.lost-timeout``;
* while a pool is failed, every task that could run only on failed pools
  errs with ``WorkersUnavailable``, which quotes the end of the processes'
  stderr: ``result()``, ``gather`` and ``wait`` return at once, and the
  provenance record says why. A worker that joins again clears the failure.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import dask
from distributed.diagnostics.plugin import SchedulerPlugin
from tornado.ioloop import PeriodicCallback

from ..errors import WorkersUnavailable
from .nanny_process import NannyProcess
from .pools import worker_resources

logger = logging.getLogger("daskflow")

CALLBACK = "daskflow-worker-watch"  # its name as a plugin and periodic callback
INTERVAL_MS = 500


class _Pool:
    def __init__(self, label: str):
        self.label = label
        self.processes: dict[object, NannyProcess] = {}  # by worker_spec key
        self.ever_joined = False
        self.empty_since: float | None = None
        self.failure: WorkersUnavailable | None = None


class WorkerWatch(SchedulerPlugin):
    """Watches the local worker processes of one cluster (see module docstring).

    Parameters
    ----------
    pool_of : callable
        Maps a worker name to its pool's label.
    labels : list of str
        Every pool of the cluster (to tell where a task may run).
    startup_timeout, lost_timeout : float, optional
        Seconds; default from ``daskflow.workers``.
    """

    def __init__(self, pool_of: Callable[[object], str], labels: list[str],
                 startup_timeout: float | None = None, lost_timeout: float | None = None):
        cfg = dask.config.get
        self.pool_of = pool_of
        self.labels = list(labels)
        self.startup_timeout = startup_timeout if startup_timeout is not None else \
            dask.utils.parse_timedelta(cfg("daskflow.workers.startup-timeout"))
        self.lost_timeout = lost_timeout if lost_timeout is not None else \
            dask.utils.parse_timedelta(cfg("daskflow.workers.lost-timeout"))
        self.pools: dict[str, _Pool] = {}
        self._names: dict[str, object] = {}  # address -> name of the workers that joined
        self._pool_resources = {label: set(worker_resources(label, self.labels))
                                for label in self.labels}

    def _pool(self, name) -> _Pool:
        label = self.pool_of(name)
        if label not in self.pools:
            self.pools[label] = _Pool(label)
        return self.pools[label]

    def install(self, scheduler, cluster) -> None:
        """Start watching, in the scheduler's event loop (stopped with the scheduler)."""
        self.scheduler, self.cluster = scheduler, cluster
        scheduler.add_plugin(self, name=CALLBACK)
        pc = PeriodicCallback(self.check, INTERVAL_MS)
        scheduler.periodic_callbacks[CALLBACK] = pc
        pc.start()

    def add_worker(self, scheduler, worker: str) -> None:
        """A worker joined: noted at once (it may be gone before the next check)."""
        name = self._names[worker] = scheduler.workers[worker].name
        pool = self._pool(name)
        pool.ever_joined, pool.empty_since, pool.failure = True, None, None
        process = self.cluster.workers.get(name)
        if isinstance(process, NannyProcess):
            process.joined()

    def remove_worker(self, scheduler, worker: str, **kwargs) -> None:
        """The lost-timeout counts from the moment the pool's last worker left."""
        if worker not in self._names:
            return
        label = self.pool_of(self._names.pop(worker))  # (already gone from scheduler.workers)
        if not any(self.pool_of(ws.name) == label for ws in scheduler.workers.values()):
            self.pools[label].empty_since = time.monotonic()

    def check(self) -> None:
        now = time.monotonic()
        live: dict[str, int] = {}
        for ws in self.scheduler.workers.values():
            label = self.pool_of(ws.name)
            live[label] = live.get(label, 0) + 1
        for name, process in list(self.cluster.workers.items()):
            if isinstance(process, NannyProcess):
                self._pool(name).processes[name] = process
        for pool in self.pools.values():
            self._update(pool, live.get(pool.label, 0), now)
        failed = {p.label for p in self.pools.values() if p.failure is not None}
        if failed:
            self._fail_stranded_tasks(failed)

    def _update(self, pool: _Pool, joined: int, now: float) -> None:
        if joined:
            pool.empty_since, pool.failure = None, None
            return
        # the pool's processes that should be running (a block the scaler
        # retired is not missed)
        expected = [p for name, p in pool.processes.items() if name in self.cluster.worker_spec]
        if pool.failure is not None or not expected:
            pool.empty_since = None if not expected else pool.empty_since
            return
        if pool.empty_since is None:
            pool.empty_since = now
        waited = now - pool.empty_since
        if not pool.ever_joined:
            if all(p.exited for p in expected):
                why = "no worker could start"
            elif waited >= self.startup_timeout:
                why = (f"no worker joined within {self.startup_timeout:g} s "
                       "(daskflow.workers.startup-timeout)")
            else:
                return
        elif waited >= self.lost_timeout:
            why = (f"every worker was lost and none came back within {self.lost_timeout:g} s "
                   "(daskflow.workers.lost-timeout)")
        else:
            return
        pool.failure = WorkersUnavailable(pool.label, why, [p.describe() for p in expected])

    def _fail_stranded_tasks(self, failed: set[str]) -> None:
        """Err the waiting tasks that only failed pools could run."""
        from ..dask_internals import err_waiting_tasks

        def stranded(ts) -> WorkersUnavailable | None:
            pools = [r for r in (ts.resource_restrictions or {}) if r.startswith("pool:")]
            candidates = [label for label in self.labels
                          if not pools or any(r in self._pool_resources[label] for r in pools)]
            if candidates and all(label in failed for label in candidates):
                return self.pools[candidates[0]].failure
            return None

        err_waiting_tasks(self.scheduler, stranded, "daskflow-workers-unavailable")

    def failure(self, label: str) -> WorkersUnavailable | None:
        pool = self.pools.get(label)
        return pool.failure if pool is not None else None


def wait_for_processes(cluster, watch: WorkerWatch, names, poll: float = 0.05) -> None:
    """Block until every worker process named ``names`` joined or ended (some
    joined), or raise its pool's ``WorkersUnavailable`` when the watch gives up.

    Reads the in-process scheduler's state from the caller's thread (plain
    dict reads, no round trip)."""
    names = {str(n) for n in names}
    labels = {watch.pool_of(n) for n in names}
    deadline = time.monotonic() + watch.startup_timeout
    while True:
        joined = {str(ws.name) for ws in list(cluster.scheduler.workers.values())} & names
        if joined and (joined == names or time.monotonic() > deadline):
            return
        ended = {n for n in names - joined
                 if getattr(cluster.workers.get(_key(cluster, n)), "exited", False)}
        if joined and joined | ended == names:
            for name in sorted(ended):
                logger.warning("daskflow: %s", cluster.workers[_key(cluster, name)].describe())
            return
        for label in labels:
            failure = watch.failure(label)
            if failure is not None:
                raise failure
        time.sleep(poll)


def _key(cluster, name: str):
    """The worker_spec key of a worker name (the local default's are ints)."""
    return next((k for k in cluster.workers if str(k) == name), name)
