"""SSH pools with a real sshd on 127.0.0.1:2222 (started by scripts/start-sshd.sh
from the test command): workers started over asyncssh join the profile's
scheduler."""

from __future__ import annotations

import os
import signal
import socket

import pytest
from waiting import until

import daskflow
from daskflow import python_app

PORT = 2222


def _sshd_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
        return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _sshd_up(), reason="no sshd on 127.0.0.1:2222 "
                       "(scripts/start-sshd.sh starts it, as root)"),
]


def _profile(tmp_path, text: str) -> str:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return str(path)


SSH_POOL = """
  - label: remote
    provider: ssh
    hosts: [127.0.0.1, localhost]
    port: 2222
    connect_options: {known_hosts: null}
    scaling: {strategy: simple, init_blocks: 0, min_blocks: 0, max_blocks: 2, max_idletime: 2s}
"""


@python_app
def where(seconds=0):
    import time

    import distributed
    time.sleep(seconds)
    return distributed.get_worker().name, os.getpid(), os.getppid()


def _names(c) -> set[str]:
    return {w["name"] for w in c.scheduler_info()["workers"].values()}


def test_ssh_blocks_spread_over_the_hosts_and_retire_when_idle(tmp_path):
    profile = _profile(tmp_path, "name: ssh\nscheduler: {dashboard: 127.0.0.1:0}\npools:"
                       + SSH_POOL)
    with daskflow.Client(profile=profile, set_as_default=False) as c, c.as_current():
        assert _names(c) == set()  # no work, no block
        results = c.gather([where(1) for _ in range(6)])
        assert {name for name, _, _ in results} <= {"remote-0-0", "remote-1-0"}
        hosts = {spec["options"]["address"] for spec in c.cluster.worker_spec.values()}
        assert hosts == {"127.0.0.1", "localhost"}  # one block on each host
        assert os.getpid() not in {pid for _, pid, _ in results}
        until(lambda: _names(c) == set(), "idle SSH blocks were not retired")


def test_ssh_and_local_pools_share_one_tls_scheduler(tmp_path):
    profile = _profile(tmp_path, """
name: mixed-ssh
scheduler: {dashboard: 127.0.0.1:0, security: tls}
pools:
  - label: here
    provider: local
    workers_per_node: 1
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
""" + SSH_POOL.replace("strategy: simple, init_blocks: 0", "strategy: none, init_blocks: 1"))
    on_remote = python_app(executors=["remote"])(where.__wrapped__)
    on_here = python_app(executors=["here"])(where.__wrapped__)
    with daskflow.Client(profile=profile, set_as_default=False) as c, c.as_current():
        assert c.scheduler.address.startswith("tls://")
        assert {n for n, _, _ in c.gather([on_remote() for _ in range(4)])} == {"remote-0-0"}
        assert {n for n, _, _ in c.gather([on_here() for _ in range(4)])} == {"here-0-0"}
        workers = c.scheduler_info()["workers"]
        assert len(workers) == 2 and all(a.startswith("tls://") for a in workers)


def test_a_killed_ssh_block_is_replaced_and_its_tasks_complete(tmp_path):
    profile = _profile(tmp_path, "name: ssh\nscheduler: {dashboard: 127.0.0.1:0}\npools:"
                       + SSH_POOL.replace("max_blocks: 2", "max_blocks: 1"))
    with daskflow.Client(profile=profile, set_as_default=False) as c, c.as_current():
        futures = [where(0.5) for _ in range(10)]
        until(lambda: any(f.done() for f in futures), "no task finished on the first block")
        name, worker_pid, nanny_pid = next(f.result() for f in futures if f.done())
        for pid in (nanny_pid, worker_pid):  # the whole block dies at once
            os.kill(pid, signal.SIGKILL)
        results = c.gather(futures)
        assert len(results) == 10
        assert any(pid != worker_pid for _, pid, _ in results)  # a new block ran the rest


def test_an_unreachable_ssh_host_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    profile = _profile(tmp_path, "name: ssh\nscheduler: {dashboard: 127.0.0.1:0}\npools:"
                       + SSH_POOL.replace("port: 2222", f"port: {free}")
                       .replace("strategy: simple, init_blocks: 0", "strategy: none, init_blocks: 1"))
    with pytest.raises(RuntimeError, match=f"could not start Dask worker 'remote-0-0' over SSH "
                                           f"on 127.0.0.1:{free}: ConnectionRefusedError"):
        daskflow.Client(profile=profile, set_as_default=False)
