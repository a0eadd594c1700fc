"""Batch blocks drain before their walltime: a long stream of tasks crosses
several block lifetimes on the real Slurm (single-node, on localhost,
started by scripts/start-slurm.sh from the test command) with no task
failed or run twice; and, without Slurm, the profile's drain keys and the
scaler's replacement of a leaving block ahead of time."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import subprocess
import threading
import time

from click.testing import CliRunner
import dask
from distributed import Client, Scheduler, Status, Worker
import pytest
from waiting import until
import yaml

import daskflow
from daskflow import python_app
from daskflow.cli.main import main
from daskflow.dask_internals import stop_taking_tasks
from daskflow.sites.drain import TOPIC, DrainPlan
from daskflow.sites.profile import ProfileError, parse_profile
from daskflow.sites.scaling import PoolScaler, _Arrivals
from daskflow.sites.start import check_pool

slurm = pytest.mark.skipif(shutil.which("sbatch") is None or subprocess.run(
    ["scontrol", "ping"], capture_output=True).returncode != 0,
    reason="Slurm is not running here (scripts/start-slurm.sh starts it, as root)")


def _profile(block: dict, provider: str = "slurm", **scaling):
    return parse_profile({"name": "t", "pools": [
        {"label": "cpu", "provider": provider, "block": block, "scaling": scaling}]}, "test", "t")


# -- the profile's keys --------------------------------------------------------

def test_drain_defaults_fit_the_walltime():
    block = _profile({}).pools[0].block  # walltime 00:10:00
    assert (block.drain, block.drain_stagger) == (None, None)
    assert (block.drain_seconds, block.drain_stagger_seconds) == (180, 60)
    short = _profile({"walltime": "00:01:00"}).pools[0].block
    assert (short.drain_seconds, short.drain_stagger_seconds) == (20, 6)
    given = _profile({"drain": "5m", "drain_stagger": 30}).pools[0].block
    assert (given.drain_seconds, given.drain_stagger_seconds) == (300, 30)


def test_a_drain_that_does_not_fit_the_walltime_is_refused_naming_the_fields(tmp_path):
    """By the profile's own check (``daskflow profiles check`` too), and by the
    pool's start for a profile that was not parsed."""
    too_long = {"walltime": "00:05:00", "drain": "4m", "drain_stagger": "1m"}
    with pytest.raises(ProfileError) as info:
        _profile(too_long)
    assert "pools[0].block.drain (240 s) + block.drain_stagger (60 s) must be less than " \
        "block.walltime ('00:05:00', 300 s), or the workers would stop taking tasks before " \
        "they start; lower them or raise the walltime" in str(info.value)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"pools": [{"label": "cpu", "provider": "slurm",
                                               "block": too_long}]}))
    out = CliRunner().invoke(main, ["profiles", "check", str(path)])
    assert out.exit_code == 1 and "block.drain (240 s)" in out.output
    fits = _profile({"walltime": "00:05:00", "drain": "3m", "drain_stagger": "1m"})
    pool = fits.pools[0]
    object.__setattr__(pool, "block", dataclasses.replace(pool.block, drain=240.0))
    with pytest.raises(ValueError, match=r"^profile 't': pool 'cpu': block\.drain \(240 s\)"):
        check_pool(fits, pool)
    local = _profile(too_long, "local")
    check_pool(local, local.pools[0])  # no walltime kills local workers: ignored


def test_a_drain_that_is_not_a_duration_is_a_profile_error():

    with pytest.raises(ProfileError, match=r"pools\[0\]\.block\.drain: expected a duration "
                                           r"such as '60s' or '5m', got '3 minutes please'"):
        _profile({"drain": "3 minutes please"})


def test_the_drain_plan_comes_from_the_job_scripts_lines():
    block = _profile({"walltime": "00:01:00", "drain": "20s", "drain_stagger": 5}).pools[0].block
    from daskflow.sites.drain import drain_prologue

    lines = drain_prologue(block)
    assert lines == ["export DASKFLOW_JOB_START=`date +%s`", "export DASKFLOW_DRAIN=60,20,5"]
    env = dict(DASKFLOW_JOB_START="1000", DASKFLOW_DRAIN="60,20,5")
    plan = DrainPlan.from_environ(env)
    assert plan == DrainPlan(1000, 60, 20, 5) and plan.end == 1060
    assert plan.moment(lambda: 0) == 1040 and plan.moment(lambda: 1) == 1035
    assert DrainPlan.from_environ({}) is None
    assert DrainPlan.from_environ(dict(env, DASKFLOW_DRAIN="sixty")) is None


# -- the scaler's replacement ahead of time, on a real scheduler without a batch system --

class _Cluster:
    """What ``PoolScaler._step_pool`` uses of a SpecCluster: its worker specs
    (the blocks' workers are started by the test, named as the specs)."""

    def __init__(self):
        self.worker_spec: dict = {}


class _Pool:
    """A scheduler with the scaler's plugin and a client, for one pool ``cpu``."""

    def __init__(self, scheduler, client, pool):
        self.scheduler, self.client = scheduler, client
        self.scaler = PoolScaler(_Cluster(), [pool], lambda p, i: {f"{p.label}-{i}": {}}, {})
        scheduler.add_plugin(_Arrivals(self.scaler.seen, self.scaler.arrived,
                                       self.scaler.drains), name="daskflow-pool-arrivals")

    async def step(self) -> list[int]:
        """One step of the pool's scaling (as ``PoolScaler.step``); its blocks."""
        names = {str(ws.name): ws for ws in self.scheduler.workers.values()}
        self.scaler.seen.update(names)
        await self.scaler._step_pool(self.scheduler, self.scaler.pools[0], names)
        return list(self.scaler.blocks["cpu"])

    async def work(self, n: int) -> list:
        """``n`` tasks no worker can run: work for the pool while they wait."""
        futures = [self.client.submit(int, i, resources={"nowhere": 1}, pure=False)
                   for i in range(n)]
        await _until(lambda: all(f.key in self.scheduler.tasks for f in futures))
        return futures

    async def drains_at(self, worker, at: float) -> None:
        worker.log_event(TOPIC, {"name": str(worker.name), "at": at})  # as drain.py does
        await _until(lambda: self.scaler.drains.get(str(worker.name)) == at)

    async def drain(self, worker) -> None:
        stop_taking_tasks(worker)
        await _until(lambda: self.scheduler.workers[worker.address].status
                     == Status.closing_gracefully)


async def _until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the scheduler did not get there"
        await asyncio.sleep(0.01)


def _with_pool(test, **scaling):
    """Run ``test(pool)`` with a real scheduler, a client, and a slurm pool's scaler."""
    async def main():
        async with Scheduler(dashboard_address=":0", port=0) as scheduler:
            async with Client(scheduler.address, asynchronous=True) as client:
                await test(_Pool(scheduler, client, _profile({}, **scaling).pools[0]))
    asyncio.run(main())


def _worker(pool: _Pool, name: str) -> Worker:
    return Worker(pool.scheduler.address, name=name, nthreads=1, dashboard_address=":0")


def test_a_block_about_to_drain_is_replaced_ahead_and_forgotten_once_gone():
    async def test(pool: _Pool):
        work = await pool.work(5)
        assert await pool.step() == [0]
        pool.scaler.asked[("cpu", 0)] -= 8  # asked for 8 s before it joins
        async with _worker(pool, "cpu-0") as w:
            assert await pool.step() == [0] and 7 < pool.scaler.lead["cpu"] < 10
            await pool.drains_at(w, time.time() + 60)  # later than the 8 s a block takes
            assert await pool.step() == [0]
            await pool.drains_at(w, time.time() + 5)  # sooner: its replacement starts now
            assert await pool.step() == [0, 1]  # above max_blocks while block 0 leaves
            await pool.drain(w)
            assert await pool.step() == [0, 1]  # not replaced twice
        assert await pool.step() == [1]  # gone: forgotten
        assert "cpu-0" not in pool.scaler.drains and list(pool.scaler.cluster.worker_spec) == [
            "cpu-1"]
        del work
    _with_pool(test, max_blocks=1, init_blocks=0)


def test_a_draining_block_without_work_is_not_replaced():
    async def test(pool: _Pool):
        work = await pool.work(1)
        assert await pool.step() == [0]
        await pool.client.cancel(work)
        await _until(lambda: not pool.scheduler.tasks)
        async with _worker(pool, "cpu-0") as w:
            await pool.drain(w)
            assert await pool.step() == [0]
        assert await pool.step() == []
    _with_pool(test, max_blocks=1, init_blocks=0)


def test_a_draining_block_does_not_count_towards_min_blocks():
    async def test(pool: _Pool):
        assert await pool.step() == [0]
        async with _worker(pool, "cpu-0") as w:
            assert await pool.step() == [0]
            await pool.drain(w)
            assert await pool.step() == [0, 1]
    _with_pool(test, max_blocks=1, init_blocks=0, min_blocks=1)


# -- on the real Slurm -------------------------------------------------------------

DRAINING = """
name: slurm-drain
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: cpu
    provider: slurm
    block: {cores: 1, memory: 1GB, walltime: "00:01:00", queue: debug, drain: 20s,
            drain_stagger: 5s}
    scaling: {strategy: simple, init_blocks: 0, min_blocks: 0, max_blocks: 1, max_idletime: 5s}
"""
TASKS = 120


@python_app(batch=False)
def step(i, ledger):
    """Note the call in the ledger as it starts (a second start shows), work a second."""
    import os
    import time

    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{i}\n".encode())
    finally:
        os.close(fd)
    time.sleep(1)
    return os.environ.get("SLURM_JOB_ID")


def _our_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if "daskflow-" in line]


class _Gaps(threading.Thread):
    """The longest times, once a worker had joined, with no worker taking
    tasks (``idle``) and with no worker at all (``empty``)."""

    def __init__(self, client, done):
        super().__init__(daemon=True)
        self.client, self.done = client, done
        self.idle = self.empty = 0.0

    def run(self):
        started, idle_since, empty_since = False, None, None
        while not self.done():
            workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
            now = time.monotonic()
            started = started or bool(workers)
            if any(w["status"] == "running" for w in workers):
                idle_since = None
            elif started:
                idle_since = idle_since or now
                self.idle = max(self.idle, now - idle_since)
            if workers:
                empty_since = None
            elif started:
                empty_since = empty_since or now
                self.empty = max(self.empty, now - empty_since)
            time.sleep(0.25)


@slurm
@pytest.mark.slow
def test_a_stream_of_tasks_crosses_block_lifetimes_with_none_failed_or_run_twice(tmp_path):
    profile = tmp_path / "drain.yaml"
    profile.write_text(DRAINING)
    ledger = str(tmp_path / "ledger")
    run_dir = tmp_path / "runinfo"
    start = time.monotonic()
    # no kept results: a result lost with its worker would run its call again
    with dask.config.set({"daskflow.recovery.max-bytes": 0, "daskflow.run-dir": str(run_dir)}):
        with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
            futures = [step(i, ledger) for i in range(TASKS)]
            gaps = _Gaps(c, lambda: all(f.done() for f in futures))
            gaps.start()
            jobs = c.gather(futures)  # the early ones' results moved off their drained workers
            gaps.join(timeout=10)
    seconds = time.monotonic() - start
    ran = open(ledger).read().split()
    assert sorted(map(int, ran)) == list(range(TASKS)), "a task ran twice or not at all"
    blocks = sorted(set(jobs), key=int)
    print(f"{TASKS} tasks on {len(blocks)} blocks (slurm jobs {', '.join(blocks)}) in "
          f"{seconds:.0f} s; longest time without a worker taking tasks: {gaps.idle:.2f} s")
    assert len(blocks) >= 3 and None not in blocks
    # a drained worker waits for another to take its results: the pool never empties
    assert gaps.empty == 0, f"the pool had no worker for {gaps.empty:.2f} s"
    drained = 0
    for job in blocks:
        err = (run_dir / "blocks" / f"daskflow-cpu-{job}.err").read_text()
        assert "DUE TO TIME LIMIT" not in err, err
        if re.search(r"worker cpu-\d+ drained: its results are on other workers; it leaves "
                     r"\d+ s before its job's walltime", err):
            drained += 1
    assert drained >= 2  # the blocks that did not outlive the stream left by draining
    until(lambda: _our_jobs() == [], "jobs outlived the client", timeout=30)
