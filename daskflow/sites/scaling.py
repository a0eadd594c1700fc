"""Elastic blocks, per pool, driven from the scheduler's state.

Dask's ``adapt()`` is global: it counts all work and retires any idle
worker, so it would shrink one pool to grow another. ``PoolScaler`` runs in
the cluster's event loop beside the scheduler and, every ``interval``
seconds, for each pool whose strategy is ``simple`` (Parsl's name):

* counts the unfinished tasks that may run on the pool (no pool
  restriction, or one that names this pool) and wants
  ``ceil(tasks * parallelism / slots per block)`` blocks, kept within
  ``min_blocks``..``max_blocks``;
* adds blocks while fewer are wanted than exist;
* removes a block once its workers have had nothing to do for
  ``max_idletime``, down to ``min_blocks``;
* forgets a block whose workers joined and then all left (a job killed
  with ``scancel``, a walltime reached): it is replaced while work remains;
* does not count a block that is leaving: one whose workers drain before
  their job's walltime (``sites.drain``), or will within ``lead`` seconds,
  the longest a block of the pool took from being asked for to its first
  worker joining (plus ``interval``). Its replacement is thus asked for in time to join when
  it starts draining, and the pool may have ``max_blocks`` blocks besides
  the leaving ones for that while.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Callable

from distributed import Status
from distributed.diagnostics.plugin import SchedulerPlugin

from ..dask_internals import (correct_cluster_state, processing_tasks, queued_tasks,
                              unrunnable_tasks)
from ..pool_resources import labels_of, worker_resources
from .drain import TOPIC
from .profile import Pool

logger = logging.getLogger("daskflow.sites")

UNFINISHED = ("queued", "no-worker", "processing", "waiting")
EXTENSION = "daskflow-pools"  # the scheduler extension under which the scaler is found
STOP_TIMEOUT = 10  # seconds stop() waits for the scaling task
LEAD = 30.0  # seconds a block is assumed to take to start before one of its pool has


class PoolScaler:
    """Keep each elastic pool of ``cluster`` (a SpecCluster) at the size its work needs.

    ``make_block(pool, index)`` returns the worker specs (name → spec) of a
    new block; the names of a block's workers start with ``"{label}-{index}"``.
    """

    def __init__(self, cluster, pools: list[Pool], make_block: Callable[[Pool, int], dict],
                 initial: dict[str, dict[int, list[str]]], interval: float = 1.0):
        self.cluster = cluster
        self.labels = [p.label for p in pools]
        self.pools = [p for p in pools if p.scaling.strategy == "simple"]
        self.make_block = make_block
        self.interval = interval
        self.blocks = {p.label: dict(initial.get(p.label, {})) for p in self.pools}
        self.seen: set[str] = set()  # worker names that have joined once
        self.arrived: dict[str, float] = {}  # worker name -> when it first joined (monotonic)
        self.drains: dict[str, float] = {}  # worker name -> when it drains (epoch)
        now = time.monotonic()
        self.asked = {(label, index): now for label, blocks in self.blocks.items()
                      for index in blocks}  # blocks not joined yet -> when asked for
        self.lead: dict[str, float] = {}  # pool -> longest start of its blocks so far
        self.idle_since: dict[str, float] = {}
        self.next_index = {p.label: len(self.blocks[p.label]) for p in self.pools}
        self._task: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> None:
        self.cluster.loop.add_callback(self._start)

    async def _start(self) -> None:
        if self._stopping:  # stopped before the loop ran this
            return
        scheduler = self.cluster.scheduler
        scheduler.extensions[EXTENSION] = self  # the Workflow page shows its blocks
        # a worker may join and die between two steps: note every arrival
        scheduler.add_plugin(_Arrivals(self.seen, self.arrived, self.drains),
                             name="daskflow-pool-arrivals")
        if self.pools:
            self._task = asyncio.ensure_future(self._run())

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop scaling; return once the scaling task has ended.

        Called from the caller's thread, before the cluster is closed:
        ``SpecCluster._close`` asserts that every worker it created is closed,
        and a scaling task still running could start one the close does not
        see. A step under way starts no further block, and a block it was
        starting finishes starting (see ``step``), so that the close closes it.
        Calling it again does nothing.

        Parameters
        ----------
        timeout : float
            Seconds to wait for the task; past them a warning is logged and
            the cluster is left to close what it has.
        """
        if self._stopping:
            return
        self._stopping = True  # seen at once by a step running in the loop's thread
        self.cluster.sync(self._stop, timeout)

    async def _stop(self, timeout: float) -> None:
        self.cluster.scheduler.extensions.pop(EXTENSION, None)
        if self._task is None:
            return
        self._task.cancel()
        done, _ = await asyncio.wait([self._task], timeout=timeout)
        if not done:
            logger.warning("daskflow: pool scaling did not stop within %s s", timeout)

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep scaling alive; say what went wrong
                logger.exception("daskflow: pool scaling step failed")
            await asyncio.sleep(self.interval)

    async def step(self) -> None:
        """Bring every elastic pool one step towards the size its work needs.

        Each pool's step is its own: one that raises is logged, naming the
        pool, and the pools after it still scale (and the blocks the pools
        before it asked for still start)."""
        scheduler = self.cluster.scheduler
        names = {str(ws.name): ws for ws in scheduler.workers.values()}
        self.seen.update(names)
        changed = False
        for pool in self.pools:
            try:
                changed |= await self._step_pool(scheduler, pool, names)
            except asyncio.CancelledError:
                raise
            except Exception:  # the other pools go on scaling
                logger.exception("daskflow: pool scaling step failed for pool %s", pool.label)
                changed = True  # it may have added blocks before it failed
        if changed:
            # shielded: cancelling it (stop) would abandon the workers it is
            # starting, outside ``cluster.workers``, where no close reaches
            # them; left to finish, the cluster's lock makes a close wait for it
            await asyncio.shield(correct_cluster_state(self.cluster))

    async def _step_pool(self, scheduler, pool: Pool, names: dict) -> bool:
        """One pool's step; True if its blocks changed."""
        changed = False
        blocks = self.blocks[pool.label]
        for index, workers in list(blocks.items()):
            if _members(workers, self.seen) and not _members(workers, names):
                logger.info("daskflow: block %s-%d of pool %s is gone", pool.label, index,
                            pool.label)
                self._drop(workers)
                del blocks[index]
                changed = True
        self._note_starts(pool)
        staying = {i: w for i, w in blocks.items() if not self._leaving(pool, w, names)}
        demand = self._demand(scheduler, pool)
        slots = _slots(pool)
        wanted = math.ceil(demand * pool.scaling.parallelism / slots) if demand else 0
        wanted = max(pool.scaling.min_blocks, min(pool.scaling.max_blocks, wanted))
        while len(staying) < wanted and not self._stopping:
            index = self.next_index[pool.label]
            self.next_index[pool.label] += 1
            spec = self.make_block(pool, index)
            self.cluster.worker_spec.update(spec)
            blocks[index] = staying[index] = list(spec)
            self.asked[(pool.label, index)] = time.monotonic()
            changed = True
        if demand == 0 and len(staying) > pool.scaling.min_blocks:
            changed |= await self._shrink(scheduler, pool, names, staying)
        return changed

    def _note_starts(self, pool: Pool) -> None:
        """The pool's ``lead``: how long its blocks took to start, at most."""
        for index, workers in self.blocks[pool.label].items():
            asked = self.asked.get((pool.label, index))
            joined = [self.arrived[w] for w in _members(workers, self.arrived)]
            if asked is not None and joined:
                took = min(joined) - asked
                self.lead[pool.label] = max(self.lead.get(pool.label, 0.0), took)
                del self.asked[(pool.label, index)]

    def _leaving(self, pool: Pool, workers: list[str], names: dict) -> bool:
        """Whether a block drains, or will before a replacement could start."""
        if any(names[w].status == Status.closing_gracefully for w in _members(workers, names)):
            return True
        drains = [self.drains[w] for w in _members(workers, self.drains)]
        # a step comes once per interval: one may come that late
        lead = self.lead.get(pool.label, LEAD) + self.interval
        return bool(drains) and min(drains) - lead <= time.time()

    def _demand(self, scheduler, pool: Pool) -> int:
        mine = set(worker_resources(pool.label, self.labels))
        count = 0
        for state in UNFINISHED:
            for ts in _tasks_in(scheduler, state):
                restrictions = ts.resource_restrictions or {}
                pools = [r for r in restrictions if labels_of(r) is not None]
                if not pools or any(r in mine for r in pools):
                    count += 1
        return count

    async def _shrink(self, scheduler, pool: Pool, names: dict, staying: dict) -> bool:
        """Retire idle blocks among ``staying`` (leaving ones go by themselves)."""
        now = time.monotonic()
        blocks = self.blocks[pool.label]
        changed = False
        for index, workers in sorted(staying.items(), reverse=True):
            if len(staying) <= pool.scaling.min_blocks:
                break
            live = [names[w] for w in _members(workers, names)]
            busy = any(processing_tasks(ws) for ws in live)
            key = f"{pool.label}-{index}"
            if busy or not live:
                self.idle_since.pop(key, None)
                continue
            since = self.idle_since.setdefault(key, now)
            if now - since >= pool.scaling.max_idletime:
                await scheduler.retire_workers(workers=[ws.address for ws in live],
                                               close_workers=True, stimulus_id="daskflow-idle")
                self._drop(workers)
                del blocks[index], staying[index]
                self.idle_since.pop(key, None)
                changed = True
        return changed

    def _drop(self, workers: list[str]) -> None:
        for name in workers:
            self.cluster.worker_spec.pop(name, None)
        for name in _members(workers, list(self.drains)):
            del self.drains[name]


class _Arrivals(SchedulerPlugin):
    """Notes every worker that joins (its name in ``seen``, the time in
    ``arrived``) and the drain moment each batch worker tells (``drains``)."""

    def __init__(self, seen: set[str], arrived: dict[str, float], drains: dict[str, float]):
        self.seen, self.arrived, self.drains = seen, arrived, drains

    def add_worker(self, scheduler, worker: str) -> None:
        name = str(scheduler.workers[worker].name)
        self.seen.add(name)
        self.arrived.setdefault(name, time.monotonic())

    def log_event(self, topic, msg) -> None:
        if topic == TOPIC and isinstance(msg, dict) and "name" in msg:
            self.drains[str(msg["name"])] = float(msg["at"])


def _slots(pool: Pool) -> int:
    return max(1, (pool.workers_per_node or 1) * pool.block.nodes * pool.threads_per_worker)


def _members(block: list[str], names) -> list[str]:
    """Worker names of a block: its spec names, or those plus a suffix when
    one spec runs several workers (``-I`` per process, ``-nR`` per node)."""
    return [n for n in names if n in block or any(n.startswith(b + "-") for b in block)]


def _tasks_in(scheduler, state: str):
    if state == "queued":
        return queued_tasks(scheduler)
    if state == "no-worker":
        return unrunnable_tasks(scheduler)
    if state == "processing":
        return (ts for ws in scheduler.workers.values() for ts in processing_tasks(ws))
    return (ts for ts in scheduler.tasks.values() if ts.state == "waiting")
