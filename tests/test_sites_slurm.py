"""Pools of workers from real Slurm jobs (single-node Slurm on localhost,
started by scripts/start-slurm.sh from the test command)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

import daskflow
from daskflow import python_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sbatch") is None or subprocess.run(
        ["scontrol", "ping"], capture_output=True).returncode != 0,
        reason="Slurm is not running here (scripts/start-slurm.sh starts it, as root)"),
]

MIXED = """
name: mixed
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: login
    provider: local
    workers_per_node: 1
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
  - label: batch
    provider: slurm
    block: {cores: 1, memory: 1GB, walltime: "00:10:00", queue: debug}
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
"""


@python_app
def where(*_):
    import distributed
    return distributed.get_worker().name, os.environ.get("SLURM_JOB_ID")


def _our_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if "daskflow-" in line]


def test_workers_come_from_sbatch_jobs_and_leave_with_the_client(tmp_path):
    with daskflow.Client(profile="slurm-localhost", set_as_default=False) as c, c.as_current():
        c.wait_for_workers(1, timeout=120)
        jobs = _our_jobs()
        assert len(jobs) == 1
        name, job_id = where().result(timeout=60)
        assert job_id == jobs[0] and name.startswith("cpu-0")
    deadline = time.time() + 30
    while _our_jobs():
        assert time.time() < deadline, "the Slurm job outlived the client"
        time.sleep(0.5)


def test_local_and_slurm_pools_on_one_scheduler(tmp_path):
    profile = tmp_path / "mixed.yaml"
    profile.write_text(MIXED)
    on_batch = python_app(executors=["batch"])(where.__wrapped__)
    on_login = python_app(executors=["login"])(where.__wrapped__)
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        c.wait_for_workers(2, timeout=120)
        batch = c.gather([on_batch(i) for i in range(4)])
        login = c.gather([on_login(i) for i in range(4)])
        assert {job for _, job in batch} == set(_our_jobs()) and None not in {j for _, j in batch}
        assert {name for name, _ in login} == {"login-0-0"}
        assert {job for _, job in login} == {None}
