"""The contract every provider that can run here keeps, checked on each with
real components: local worker processes, real Slurm on this machine, and
a real sshd on 127.0.0.1:2222 (all started by the test command).

The batch systems that cannot run here (PBS, LSF, SGE, HTCondor, OAR) are
held to the job scripts they write (tests/test_sites_families.py) and to
their status commands' output formats (tests/test_job_status.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import psutil
import pytest
from waiting import until

import daskflow
from daskflow import python_app


def _slurm_up() -> bool:
    return shutil.which("sbatch") is not None and subprocess.run(
        ["scontrol", "ping"], capture_output=True).returncode == 0


def _sshd_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 2222), timeout=1).close()
        return True
    except OSError:
        return False


def _slurm_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if "daskflow-pool" in line]


POOLS = {  # provider -> (its pool's own lines, is it here, what it may leave behind)
    "local": ("    workers_per_node: 1\n", lambda: True, lambda: []),
    "slurm": ('    block: {cores: 1, memory: 1GB, walltime: "00:10:00", queue: debug}\n',
              _slurm_up, _slurm_jobs),
    "ssh": ("    hosts: [127.0.0.1]\n    port: 2222\n    connect_options: {known_hosts: null}\n",
            _sshd_up, lambda: []),
}

pytestmark = pytest.mark.slow


@pytest.fixture(params=sorted(POOLS))
def provider(request):
    lines, here, _ = POOLS[request.param]
    if not here():
        pytest.skip(f"{request.param} is not running here (the test command starts it)")
    return request.param


def _profile(tmp_path, provider: str, scaling: str) -> str:
    path = tmp_path / f"{provider}.yaml"
    path.write_text(f"name: contract-{provider}\nscheduler: {{dashboard: 127.0.0.1:0}}\n"
                    f"pools:\n  - label: pool\n    provider: {provider}\n"
                    f"{POOLS[provider][0]}    scaling: {scaling}\n")
    return str(path)


def _where_app():
    """An app pinned to the pool that says where it ran (made in a function:
    its code travels by value, since test modules are not on the workers)."""
    @python_app(executors=["pool"])
    def where():
        import distributed
        return distributed.get_worker().name, os.getpid()
    return where


def _workers(client) -> dict:
    return client.scheduler_info()["workers"]


def test_a_pinned_call_starts_a_block_and_the_idle_block_retires(provider, tmp_path):
    """No work, no block; a call pinned to the pool starts one and runs on
    one of its workers, in a process of its own; once idle, it retires."""
    profile = _profile(tmp_path, provider, "{strategy: simple, init_blocks: 0, min_blocks: 0, "
                                           "max_blocks: 1, max_idletime: 2s}")
    pinned = _where_app()
    with daskflow.Client(profile=profile, set_as_default=False) as client, client.as_current():
        assert _workers(client) == {}
        name, pid = pinned().result(timeout=120)
        assert name.startswith("pool-0") and pid != os.getpid()
        until(lambda: _workers(client) == {}, f"the idle {provider} block did not retire",
              timeout=60)


def test_closing_the_client_ends_every_worker(provider, tmp_path):
    """What the pool started (worker processes, batch jobs) is gone once the
    client that owns the cluster is closed."""
    profile = _profile(tmp_path, provider, "{strategy: none, init_blocks: 1, max_blocks: 1}")
    pinned = _where_app()
    with daskflow.Client(profile=profile, set_as_default=False) as client, client.as_current():
        assert pinned().result(timeout=120)[0].startswith("pool-0")
        pids = set(client.run(os.getpid).values())
    assert pids and os.getpid() not in pids

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    until(lambda: all(gone(pid) for pid in pids),
          f"{provider} worker processes outlived the client", timeout=60)
    until(lambda: POOLS[provider][2]() == [], f"{provider} left jobs behind", timeout=60)
