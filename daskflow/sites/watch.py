"""Fail fast instead of waiting forever for workers that will not come.

A task waits in the scheduler until some worker can run it. When the
workers of a pool cannot start (a broken environment, a preload that exits,
a batch job whose ``worker_init`` fails) or are all gone, that wait never
ends. ``WorkerWatch`` runs every half second in the scheduler's event loop
and follows the *members* of each pool: the worker processes daskflow
started on this machine (``_Process``) and the batch jobs of batch-system
pools (``_Job``: one per block, whose state it asks the batch system about,
see ``job_status``). SSH and Kubernetes blocks are not watched. Per pool:

* at start-up, declares the pool failed when every member ended before any
  worker joined, or when none joined within ``daskflow.workers.startup-timeout``
  of the last member's start; a batch job starts when it leaves the queue,
  and while one is queued the pool is not failed (a queue may hold a job
  for hours);
* once it had workers, declares it failed when it has had none for
  ``daskflow.workers.lost-timeout`` (counted from the start of any member
  started since, and not while one is queued);
* while a pool is failed, every task that could run only on failed pools
  errs with ``WorkersUnavailable``, which quotes what became of each member
  with the end of its stderr: ``result()``, ``gather`` and ``wait`` return at
  once, and the provenance record says why. A worker that joins again
  clears the failure.

The batch system is asked at most every ``daskflow.workers.batch-poll-interval``,
from a thread, and only about the jobs of pools that have no worker: a
healthy pool costs it nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Callable, Protocol
import weakref

import dask
from distributed.diagnostics.plugin import SchedulerPlugin
from tornado.ioloop import PeriodicCallback

from ..errors import WorkersUnavailable
from ..pool_resources import labels_of, worker_resources
from .job_status import ENDED, PENDING, job_states
from .provider_registry import PROVIDERS
from .nanny_process import NannyProcess, messages

logger = logging.getLogger("daskflow")

CALLBACK = "daskflow-worker-watch"  # its name as a plugin and periodic callback
INTERVAL_MS = 500
TAIL_BYTES = 16384  # of a job's stderr log, enough for its last messages


class Member(Protocol):
    """What the watch needs of a pool's member (a worker process or a batch job)."""

    handle: object  # the object ``cluster.workers`` holds for it (None once it is gone)
    running_since: float | None  # when it was first seen running; None: queued (or not asked yet)

    @property
    def ended(self) -> bool: ...

    def describe(self) -> str: ...

    def joined(self) -> None: ...


class _Process:
    """A worker process on this machine (``NannyProcess``): it runs from the
    moment the watch first sees it."""

    def __init__(self, process: NannyProcess, now: float):
        self.handle = process
        self.running_since: float | None = now

    @property
    def ended(self) -> bool:
        return self.handle.exited

    def describe(self) -> str:
        return self.handle.describe()

    def joined(self) -> None:
        self.handle.joined()


class _Job:
    """A batch job running a block's workers (a dask-jobqueue Job), as the
    batch system last described it (``observe``): queued until it is listed
    as running, ended once it is listed as ended or no longer listed. Only
    the jobs of pools without workers are asked about, so a pool that loses
    its workers waits one poll more before its lost-timeout starts."""

    def __init__(self, job, provider):
        # only a weak reference: SpecCluster's close asserts that every job
        # object still alive is closed, which dask-jobqueue's Job.close never
        # marks; what the watch needs of the job is copied
        self._job = weakref.ref(job)
        self.provider = provider.name
        self.name, self.job_id = job.name, job.job_id  # None: its submission failed
        self.log = provider.stderr_log(job)
        self.running_since: float | None = None
        self.ended = False
        self.state = ""  # the batch system's own word for it
        self.tail: list[str] = []  # the end of its stderr log

    @property
    def handle(self):
        return self._job()

    def observe(self, phase: str, state: str, tail: list[str] | None, now: float) -> None:
        self.state, self.ended = state, phase == ENDED
        if phase == PENDING:
            self.running_since = None  # queued again (requeued): waiting is no failure
        elif self.running_since is None and not self.ended:
            self.running_since = now
        if tail is not None:
            self.tail = tail

    def describe(self) -> str:
        what = f"{self.provider} job {self.job_id or '(not submitted)'}"
        word = f" ({self.state})" if self.state else ""
        state = f"ended{word}" if self.ended else \
            f"is running{word}" if self.running_since is not None else f"is queued{word}"
        text = f"block {self.name!r} ({what}) {state}"
        lines = messages(self.tail)
        if lines:
            text += f"; the end of its stderr ({self.log}):\n    " + "\n    ".join(lines)
        elif self.log:
            text += f"; nothing in its stderr log {self.log}"
        return text

    def joined(self) -> None:
        """Nothing to do: a job's output goes to its log files, not to ours."""


def _observe(provider: str, jobs: list[_Job]) -> list[tuple[str, str, list[str] | None]]:
    """(phase, state, tail of the stderr log) of each job, asked in a thread:
    the batch system's command may take seconds, and the logs may sit on a
    slow shared file system. The log of a queued job is not read."""
    states = job_states(PROVIDERS[provider].status, [job.job_id for job in jobs])
    seen = []
    for job in jobs:
        phase, state = states[job.job_id]
        seen.append((phase, state, _tail(job.log) if phase != PENDING and job.log else None))
    return seen


def _tail(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - TAIL_BYTES))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:  # not written yet, or not visible from here
        return []
    return lines[1:] if size > TAIL_BYTES else lines  # the first may be cut


class _Pool:
    def __init__(self, label: str):
        self.label = label
        self.members: dict[object, Member] = {}  # by worker_spec key
        self.ever_joined = False
        self.empty_since: float | None = None
        self.failure: WorkersUnavailable | None = None


class WorkerWatch(SchedulerPlugin):
    """Watches the worker processes and batch jobs of one cluster (see the
    module docstring).

    Parameters
    ----------
    pool_of : callable
        Maps a worker name to its pool's label.
    labels : list of str
        Every pool of the cluster (to tell where a task may run).
    providers : dict, optional
        Pool label -> provider, to know a batch pool's batch system; pools
        not in it hold only local worker processes.
    startup_timeout, lost_timeout, poll_interval : float, optional
        Seconds; default from ``daskflow.workers``.
    """

    def __init__(self, pool_of: Callable[[object], str], labels: list[str],
                 providers: dict[str, str] | None = None,
                 startup_timeout: float | None = None, lost_timeout: float | None = None,
                 poll_interval: float | None = None):
        def seconds(value, key):
            return value if value is not None else \
                dask.utils.parse_timedelta(dask.config.get(f"daskflow.workers.{key}"))

        self.pool_of = pool_of
        self.labels = list(labels)
        self.providers = dict(providers or {})
        self.startup_timeout = seconds(startup_timeout, "startup-timeout")
        self.lost_timeout = seconds(lost_timeout, "lost-timeout")
        self.poll_interval = seconds(poll_interval, "batch-poll-interval")
        self.pools: dict[str, _Pool] = {}
        self.members: dict[object, Member] = {}  # by worker_spec key
        self._names: dict[str, object] = {}  # address -> name of the workers that joined
        self._pool_resources = {label: set(worker_resources(label, self.labels))
                                for label in self.labels}
        self._poll_task: asyncio.Task | None = None  # a query under way
        self._next_poll = 0.0
        self._unanswered: set[str] = set()  # providers whose status command failed (logged)

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
        # the pool is not empty now, even if the worker leaves before the
        # next check: its emptiness (lost-timeout) counts from a later check
        pool.ever_joined, pool.empty_since = True, None
        self._register(time.monotonic())  # its member may be newer than the last check
        member = self._member_of(name)
        if member is not None:
            member.joined()

    def _register(self, now: float) -> None:
        """Follow the members of the blocks the cluster started since the last call."""
        for name, handle in list(self.cluster.workers.items()):
            known = self.members.get(name)
            if known is not None and known.handle is handle:
                continue
            if isinstance(handle, NannyProcess):
                member: Member = _Process(handle, now)
            elif getattr(PROVIDERS.get(self.providers.get(self.pool_of(name))), "status", None):
                member = _Job(handle, PROVIDERS[self.providers[self.pool_of(name)]])
            else:
                continue  # SSH and Kubernetes blocks are not watched
            self.members[name] = self._pool(name).members[name] = member

    def _member_of(self, name) -> Member | None:
        """The member of a worker: its block's, named NAME or NAME-SUFFIX when
        a block runs several workers (see ``launchers.node_suffixes``)."""
        if name in self.members:
            return self.members[name]
        keys = [k for k in self.members if str(name).startswith(f"{k}-")]
        return self.members[max(keys, key=lambda k: len(str(k)))] if keys else None

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
        self._register(now)
        for pool in self.pools.values():
            self._update(pool, live.get(pool.label, 0), now)
        self._poll_jobs([m for pool in self.pools.values() if not live.get(pool.label)
                         for m in self._expected(pool)
                         if isinstance(m, _Job) and m.job_id and not m.ended], now)
        failed = {p.label for p in self.pools.values() if p.failure is not None}
        if failed:
            self._fail_stranded_tasks(failed)

    def _expected(self, pool: _Pool) -> list[Member]:
        """The pool's members that should be running (a block the scaler
        retired is not missed)."""
        return [m for name, m in pool.members.items() if name in self.cluster.worker_spec]

    def _update(self, pool: _Pool, joined: int, now: float) -> None:
        if joined:
            pool.empty_since, pool.failure = None, None
            return
        expected = self._expected(pool)
        if pool.failure is not None or not expected:
            pool.empty_since = None if not expected else pool.empty_since
            return
        if pool.empty_since is None:
            pool.empty_since = now
        if any(m.running_since is None and not m.ended for m in expected):
            return  # a job in the queue may start in hours: waiting is no failure
        since = max([pool.empty_since, *(m.running_since for m in expected
                                         if m.running_since is not None)])
        waited = now - since
        if not pool.ever_joined:
            if all(m.ended for m in expected):
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
        pool.failure = WorkersUnavailable(pool.label, why, [m.describe() for m in expected])

    def _poll_jobs(self, jobs: list[_Job], now: float) -> None:
        """Ask the batch systems about ``jobs``, in a thread, unless a query is
        under way or the last one is less than ``poll_interval`` old."""
        if not jobs or self._poll_task is not None or now < self._next_poll:
            return
        self._next_poll = now + self.poll_interval
        self._poll_task = asyncio.ensure_future(self._poll(jobs))

    async def _poll(self, jobs: list[_Job]) -> None:
        try:
            by_provider: dict[str, list[_Job]] = {}
            for job in jobs:
                by_provider.setdefault(job.provider, []).append(job)
            for provider, group in by_provider.items():
                try:
                    seen = await asyncio.to_thread(_observe, provider, group)
                except Exception as exc:
                    # told once: the same failure would repeat every poll
                    if provider not in self._unanswered:
                        self._unanswered.add(provider)
                        logger.warning(
                            "daskflow: cannot tell whether the %s jobs of pool(s) %s are still "
                            "queued or running, so their pools are not failed while this "
                            "lasts: %s", provider,
                            ", ".join(sorted({self.pool_of(j.name) for j in group})), exc)
                    continue
                now = time.monotonic()
                for job, (phase, state, tail) in zip(group, seen):
                    job.observe(phase, state, tail, now)
        finally:
            self._poll_task = None

    async def close(self) -> None:
        """The scheduler closes: a query under way is abandoned (its thread
        ends with its command), not left pending in a loop about to stop."""
        if self._poll_task is not None:
            self._poll_task.cancel()

    def _fail_stranded_tasks(self, failed: set[str]) -> None:
        """Err the waiting tasks that only failed pools could run."""
        from ..dask_internals import err_waiting_tasks

        def stranded(ts) -> WorkersUnavailable | None:
            pools = [r for r in (ts.resource_restrictions or {}) if labels_of(r) is not None]
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
