"""SSH pools (Parsl's ad hoc provider): each block is one host of the pool's
``hosts`` list, whose workers are started over asyncssh by distributed's own
SSH worker class (``distributed.deploy.ssh.Worker``, as ``SSHCluster`` does),
one SSH connection per worker process.

A new block goes to the host holding the fewest blocks, so a block replaced
after its host's workers died lands on a host with room first.
"""

from __future__ import annotations

import shlex
import sys
from collections import Counter

from distributed.deploy import ssh
from distributed.security import Security

from .profile_schema import Pool

SSH_WORKER = "daskflow.sites.ssh.SSHWorker"


class SSHWorker(ssh.Worker):
    """distributed's SSH worker, whose start failures name the host and port."""

    async def start(self):
        try:
            await super().start()
        except Exception as e:
            port = self.connect_options.get("port", 22)
            raise RuntimeError(f"could not start Dask worker {self.name!r} over SSH on "
                               f"{self.address}:{port}: {type(e).__name__}: {e}") from e


def pick_host(pool: Pool, worker_spec: dict) -> str:
    """The host of ``pool`` with the fewest blocks in ``worker_spec`` (first wins ties)."""
    hosts = pool.options["hosts"]
    used = Counter(spec["options"]["address"] for name, spec in worker_spec.items()
                   if name.startswith(f"{pool.label}-") and spec.get("cls") == SSH_WORKER)
    return min(hosts, key=lambda h: (used[h], hosts.index(h)))


def ssh_block(pool: Pool, index: int, host: str, resources: dict, first: dict,
              death_timeout: float, security: Security | None) -> dict:
    """Worker specs (name -> spec) of block ``index`` of ``pool`` on ``host``;
    the first worker also carries ``first`` (the block's MPI slots).

    With TLS, the workers read their certificates from files given to them
    through the environment (the SSH worker passes its options as JSON, which
    cannot carry a ``Security``); the files must be readable on the host
    (the same path: a shared file system, or the local machine)."""
    opts = pool.options
    connect = {"port": opts["port"], **opts["connect_options"]}
    if opts["username"]:
        connect["username"] = opts["username"]
    python = opts["remote_python"] or sys.executable
    worker_kwargs = {"nthreads": pool.threads_per_worker, "resources": resources,
                     "death_timeout": death_timeout}
    if security is not None:
        worker_kwargs["protocol"] = "tls"
        python = f"env {_tls_environment(security)} {shlex.quote(python)}"
    count = pool.workers_per_node or 1
    specs = {}
    for i in range(count):
        name = f"{pool.label}-{index}-{i}"
        kwargs = {**worker_kwargs, "name": name}
        if i == 0:
            kwargs["resources"] = {**resources, **first}
        specs[name] = {"cls": SSH_WORKER, "options": {
            "address": host, "connect_options": connect, "remote_python": python,
            "kwargs": kwargs}}
    return specs


def _tls_environment(security: Security) -> str:
    """``DASK_...=value`` words that give a worker process its TLS files."""
    tls = security.get_tls_config_for_role("worker")
    settings = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
                "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": tls["ca_file"],
                "DASK_DISTRIBUTED__COMM__TLS__WORKER__CERT": tls["cert"],
                "DASK_DISTRIBUTED__COMM__TLS__WORKER__KEY": tls["key"],
                "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": tls["cert"],
                "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": tls["key"]}
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in settings.items() if v)
