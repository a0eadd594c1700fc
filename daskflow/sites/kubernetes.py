"""Kubernetes pools: each block is one pod running the pool's workers, which
join daskflow's own scheduler (not a scheduler of dask-kubernetes' operator,
so that every pool shares ONE scheduler). The pod spec comes from
dask-kubernetes' ``make_worker_spec``; pods are created and deleted through
the Kubernetes API with kr8s, the client dask-kubernetes itself uses.

The scheduler must be reachable from the pods: run the driver inside the
cluster (e.g. a notebook pod) with ``scheduler.host: 0.0.0.0``.
"""

from __future__ import annotations

import re

from distributed.deploy.spec import ProcessInterface
from distributed.security import Security

from .profile_schema import Pool

LABEL = "daskflow.pool"


def pod_name(pool: Pool, index: int, token: str) -> str:
    """A DNS-1123 name for block ``index`` of ``pool`` (one cluster: ``token``)."""
    raw = f"daskflow-{token}-{pool.label}-{index}".lower()
    return re.sub(r"[^a-z0-9-]", "-", raw)[:63].strip("-")


def pod_manifest(pool: Pool, scheduler: str, name: str, worker_name: str, resources: dict,
                 death_timeout: float, security: Security | None = None) -> dict:
    """The Pod that runs block ``worker_name`` of ``pool`` against ``scheduler``."""
    from dask_kubernetes.operator import make_worker_spec

    command = ["dask", "worker", scheduler,
               "--nthreads", str(pool.threads_per_worker),
               "--nworkers", str(pool.workers_per_node or 1),
               "--death-timeout", str(int(death_timeout))]
    if resources:
        command += ["--resources", ",".join(f"{k}={v}" for k, v in resources.items())]
    if security is not None:
        command += ["--protocol", "tls"]
    limits = {}
    if pool.block.cores:
        limits["cpu"] = str(pool.block.cores)
    if pool.block.memory:
        limits["memory"] = str(pool.block.memory)
    env = {"DASK_WORKER_NAME": worker_name, **_tls_environment(security)}
    spec = make_worker_spec(image=pool.options["image"], n_workers=1, env=env,
                            worker_command=command,
                            resources={"limits": limits, "requests": limits} if limits else None)
    pod_spec = spec["spec"]
    pod_spec["restartPolicy"] = "Never"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": pool.options["namespace"],
                         "labels": {"app.kubernetes.io/name": "daskflow", LABEL: pool.label}},
            "spec": pod_spec}


def _tls_environment(security: Security | None) -> dict:
    """TLS settings for the worker as ``DASK_`` variables: certificates
    travel as PEM text (dask accepts either a path or the PEM itself)."""
    if security is None:
        return {}
    tls = security.get_tls_config_for_role("worker")
    out = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"}
    for key, value in (("CA_FILE", tls["ca_file"]), ("WORKER__CERT", tls["cert"]),
                       ("WORKER__KEY", tls["key"])):
        if value and "\n" not in value:
            with open(value) as f:
                value = f.read()
        if value:
            out[f"DASK_DISTRIBUTED__COMM__TLS__{key}"] = value
    return out


class PodBlock(ProcessInterface):
    """A block of a Kubernetes pool for ``SpecCluster``: creates its pod on
    start and deletes it on close."""

    def __init__(self, scheduler: str, name: str, pool: Pool, resources: dict, token: str,
                 index: int, death_timeout: float, security: Security | None = None):
        super().__init__()
        self.name = name
        self.manifest = pod_manifest(pool, scheduler, pod_name(pool, index, token), name,
                                     resources, death_timeout, security)
        self.pod = None

    async def start(self):
        from kr8s.asyncio.objects import Pod

        self.pod = await Pod(self.manifest)
        await self.pod.create()
        await super().start()

    async def close(self):
        if self.pod is not None:
            await self.pod.delete()
            self.pod = None
        await super().close()
