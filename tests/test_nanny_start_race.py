"""A worker whose first task ends its process moments after it joined,
while its Nanny still starts: distributed's Nanny then fails its start
(it reads its worker's hello every 50 ms, and a worker that ended first
counts as one that never started). daskflow's worker process starts a new
Nanny, the task fails with the exit status as its worker's cause, and the
next call runs.

Real scheduler, Nanny and worker processes; the Nanny reads the hello
every 2 s instead of every 50 ms, which makes the race certain."""

from __future__ import annotations

import asyncio
import os

import dask
import distributed
import pytest
from distributed import Client, Scheduler
from distributed.nanny import WorkerProcess
from distributed.scheduler import KilledWorker
from packaging.version import Version

from daskflow import worker_fates
from daskflow.sites.nanny_process import serve_nanny


def _exit_now():
    os._exit(3)


@pytest.mark.skipif(
    Version(distributed.__version__) < Version("2026.8.0"),
    reason="distributed 2026.1.1 (the oldest supported) handles this race its own way: the "
           "worker is started again, but its exit status is not learnt and its Nanny never "
           "finishes closing (checked with 2026.1.1; 2026.8.0 is the release this passes on)")
def test_a_worker_that_ends_while_its_nanny_starts_is_started_again(monkeypatch):
    monkeypatch.setattr(WorkerProcess, "_init_msg_interval", 2.0)

    async def main():
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            scheduler = await Scheduler(host="127.0.0.1", port=0, dashboard_address=":0")
        async with scheduler, Client(scheduler.address, asynchronous=True) as client:
            worker_fates.ensure(scheduler)
            crash = client.submit(_exit_now, pure=False)
            stop = asyncio.Event()
            spec = {"scheduler": scheduler.address, "name": "race",
                    "options": {"nthreads": 1, "host": "127.0.0.1", "dashboard_address": None}}
            serving = asyncio.ensure_future(serve_nanny(spec, stop))
            try:
                with pytest.raises(KilledWorker) as lost:
                    await asyncio.wait_for(crash, 60)
                worker = lost.value.last_worker.address
                after = client.submit(lambda: 2, pure=False)
                done, _ = await asyncio.wait([serving, asyncio.ensure_future(after)],
                                             timeout=60, return_when=asyncio.FIRST_COMPLETED)
                assert not serving.done(), f"the worker process gave up: {serving.exception()!r}"
                assert await after == 2
                fate = await client.scheduler.daskflow_worker_fate(worker=worker, wait=5)
                assert fate == f"worker {worker} was lost (process exited with status 3)"
            finally:
                stop.set()
                await asyncio.wait_for(serving, 30)

    asyncio.run(main())


def test_a_worker_that_never_joined_is_a_start_failure(monkeypatch):
    """The scheduler never knew the worker: the Nanny's start failure is
    raised, not retried."""
    async def main():
        scheduler = await Scheduler(host="127.0.0.1", port=0, dashboard_address=":0")
        async with scheduler:
            worker_fates.ensure(scheduler)
            plugin = scheduler.plugins[worker_fates.NAME]
            assert plugin.nanny_exit("tcp://127.0.0.1:1", 1) is False
            spec = {"scheduler": scheduler.address, "name": "bad",
                    "options": {"nthreads": 1, "host": "127.0.0.1", "dashboard_address": None,
                                "preload": ["daskflow_no_such_module_for_the_test"]}}
            with pytest.raises(Exception):
                await asyncio.wait_for(serve_nanny(spec, asyncio.Event()), 60)

    asyncio.run(main())
