"""Workers of a batch job leave before the job's walltime, losing nothing.

A batch system kills a job at its walltime: its workers' running tasks
would run again elsewhere and the results they hold be computed again.
So each worker of a batch block drains first, at a moment drawn in
``[end - drain - drain_stagger, end - drain]`` (the stagger spreads the
leaving of blocks started together): it takes no new task (the scheduler
places none on it, and it starts none of those queued on it, which go
elsewhere when it leaves), lets its running tasks finish, has the scheduler
copy the results only it holds to other workers, and closes with its nanny,
which ends the job. Dask's own ``--lifetime`` does not wait for running
tasks: the scheduler runs them again elsewhere.

The job script's first lines (``drain_prologue``) export the job's start
and the block's walltime, drain and stagger; the worker runs this module
as a ``--preload`` (``dask_setup``). On joining, it tells the scheduler its
drain moment (a Dask event, topic ``TOPIC``), from which the pool scaler
starts the replacement block in time (``sites.scaling``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import logging
import os
import random
import time

from ..dask_internals import executing_keys, retire_self, stop_taking_tasks

logger = logging.getLogger("daskflow.sites")

DRAIN_PRELOAD = __name__  #: the ``--preload`` of batch jobs' workers
JOB_START = "DASKFLOW_JOB_START"  #: the job's start, seconds since the epoch
PLAN = "DASKFLOW_DRAIN"  #: "WALLTIME,DRAIN,STAGGER", seconds
TOPIC = "daskflow-drain"  #: the event telling the scheduler a worker's drain moment
POLL = 0.2  # seconds between looks at the running tasks
RETRY = 1.0  # seconds between tries to move the results (no other worker yet)
LAST_MARGIN = 10.0  # seconds before the walltime at which the worker leaves whatever runs


def drain_prologue(block) -> list[str]:
    """The job script's first lines: the job's start and the drain plan of
    ``block`` (a profile's ``Block``) for its workers. Backquotes, not
    ``$(...)``, which HTCondor's submit files read as a macro."""
    plan = (block.walltime_seconds, block.drain_seconds, block.drain_stagger_seconds)
    return [f"export {JOB_START}=`date +%s`", f"export {PLAN}={','.join(f'{v:g}' for v in plan)}"]


@dataclass(frozen=True)
class DrainPlan:
    """When one worker's job started and how long it may run (seconds)."""

    start: float
    walltime: float
    drain: float
    stagger: float

    @property
    def end(self) -> float:
        """The job's walltime, as a time (seconds since the epoch)."""
        return self.start + self.walltime

    def moment(self, draw=random.random) -> float:
        """A drain moment in the plan's window: the worker's own, random."""
        return self.end - self.drain - draw() * self.stagger

    @classmethod
    def from_environ(cls, environ=os.environ) -> DrainPlan | None:
        """The plan the job script exported; None outside a batch job of daskflow."""
        start, plan = environ.get(JOB_START), environ.get(PLAN)
        if not start or not plan:
            return None
        try:
            walltime, drain, stagger = (float(v) for v in plan.split(","))
            return cls(float(start), walltime, drain, stagger)
        except ValueError:
            logger.warning("daskflow: this worker will not drain before its job's walltime: "
                           "%s=%r, %s=%r are not the numbers the job script writes",
                           JOB_START, start, PLAN, plan)
            return None


_DRAINS: dict[int, asyncio.Task] = {}  # id(worker) -> its drain
_LEAVING: set[int] = set()  # id(worker) of drains moving results: they end with the worker


def dask_setup(worker) -> None:
    """The preload's start, in the worker's event loop: plan its drain."""
    plan = DrainPlan.from_environ()
    if plan is None:
        return
    _DRAINS[id(worker)] = asyncio.ensure_future(drain(worker, plan, plan.moment()))


def dask_teardown(worker) -> None:
    """The worker closes: its drain, unless it is what closes it, stops."""
    task = _DRAINS.pop(id(worker), None)
    if task is not None and id(worker) not in _LEAVING and task is not asyncio.current_task():
        task.cancel()


async def drain(worker, plan: DrainPlan, at: float, clock=time.time) -> None:
    """Drain ``worker`` at ``at`` (seconds since the epoch), then close it
    and its nanny; every wait ends ``LAST_MARGIN`` s (at most half the
    drain) before the walltime."""
    last = plan.end - min(LAST_MARGIN, plan.drain / 2)
    name = worker.name
    await _announce(worker, at, clock)
    await asyncio.sleep(max(0.0, at - clock()))
    running = executing_keys(worker)
    logger.info("daskflow: worker %s drains, %.0f s before its job's walltime: it takes no new "
                "task and leaves once its %d running task(s) end and its results are on other "
                "workers", name, plan.end - clock(), len(running))
    stop_taking_tasks(worker)
    while executing_keys(worker) and clock() < last:
        await asyncio.sleep(POLL)
    running = executing_keys(worker)
    if running:
        logger.warning("daskflow: worker %s leaves with %d task(s) still running, %.0f s before "
                       "its job's walltime; they will run again elsewhere: %s", name,
                       len(running), plan.end - clock(), ", ".join(map(str, running[:5])))
    _LEAVING.add(id(worker))  # the scheduler forgetting it may close it before the answer
    try:
        while not await _retired(worker, last, clock):
            if worker.status.name in ("closing", "closed"):
                return
            if clock() >= last:
                logger.warning("daskflow: worker %s leaves, %.0f s before its job's walltime, "
                               "while no other worker could take its results; they will be "
                               "computed again", name, plan.end - clock())
                break
            await asyncio.sleep(RETRY)
        else:
            logger.info("daskflow: worker %s drained: its results are on other workers; it "
                        "leaves %.0f s before its job's walltime", name, plan.end - clock())
    finally:
        _LEAVING.discard(id(worker))
    await worker.close(nanny=True, reason="daskflow-drained")


async def _announce(worker, at: float, clock) -> None:
    """Tell the scheduler the drain moment once the worker has joined."""
    while worker.status.name != "running" and clock() < at:
        await asyncio.sleep(0.5)
    worker.log_event(TOPIC, {"name": str(worker.name), "at": at})


async def _retired(worker, last: float, clock) -> bool:
    """Results moved and the worker forgotten by the scheduler; False if not (yet)."""
    try:
        return await asyncio.wait_for(retire_self(worker), timeout=max(1.0, last - clock()))
    except (OSError, asyncio.TimeoutError) as e:
        logger.warning("daskflow: worker %s could not ask the scheduler to move its results: "
                       "%r", worker.name, e)
        return False
