"""``parsl.providers``: Parsl's provider classes with their keywords;
``parsl.load`` turns each into a pool of the daskflow provider that stands
for it (``daskflow.sites.providers.provider_for_parsl``)."""

from __future__ import annotations

from ..holders import REQUIRED, Holder
from ..launchers import AprunLauncher, SingleNodeLauncher

_BLOCKS = {"init_blocks": 1, "min_blocks": 0, "max_blocks": 1, "parallelism": 1}
_OLD = {"channel": None, "move_files": None}  # older Parsl: submitting over a channel


class ExecutionProvider(Holder):
    """Parsl's provider base."""


class LocalProvider(ExecutionProvider):
    keywords = {"nodes_per_block": 1, "launcher": SingleNodeLauncher(), "init_blocks": 1,
                "min_blocks": 0, "max_blocks": 1, "worker_init": "", "cmd_timeout": 30,
                "parallelism": 1}
    legacy = _OLD


class SlurmProvider(ExecutionProvider):
    keywords = {"partition": None, "account": None, "qos": None, "constraint": None,
                "clusters": None, "nodes_per_block": 1, "cores_per_node": None,
                "mem_per_node": None, "gpus_per_node": None, "gres": None, **_BLOCKS,
                "walltime": "00:10:00", "scheduler_options": "",
                "regex_job_id": r"Submitted batch job (?P<id>\S*)", "worker_init": "",
                "cmd_timeout": 10, "status_batch_size": 50, "exclusive": True,
                "launcher": SingleNodeLauncher()}
    legacy = _OLD


class PBSProProvider(ExecutionProvider):
    keywords = {"account": None, "queue": None, "scheduler_options": "", "select_options": "",
                "worker_init": "", "nodes_per_block": 1, "cpus_per_node": 1, **_BLOCKS,
                "launcher": SingleNodeLauncher(), "walltime": "00:20:00", "cmd_timeout": 120}
    legacy = _OLD


class TorqueProvider(ExecutionProvider):
    keywords = {"account": None, "queue": None, "scheduler_options": "", "worker_init": "",
                "nodes_per_block": 1, **_BLOCKS, "launcher": AprunLauncher(),
                "walltime": "00:20:00", "cmd_timeout": 120}
    legacy = _OLD


class LSFProvider(ExecutionProvider):
    keywords = {"nodes_per_block": 1, "cores_per_block": None, "cores_per_node": None,
                **_BLOCKS, "walltime": "00:10:00", "scheduler_options": "", "worker_init": "",
                "project": None, "queue": None, "cmd_timeout": 120, "bsub_redirection": False,
                "request_by_nodes": True, "launcher": SingleNodeLauncher()}
    legacy = _OLD


class GridEngineProvider(ExecutionProvider):
    keywords = {"nodes_per_block": 1, **_BLOCKS, "walltime": "00:10:00",
                "scheduler_options": "", "worker_init": "", "launcher": SingleNodeLauncher(),
                "cmd_timeout": 60, "queue": None}
    legacy = _OLD


class CondorProvider(ExecutionProvider):
    keywords = {"nodes_per_block": 1, "cores_per_slot": None, "mem_per_slot": None, **_BLOCKS,
                "environment": None, "project": "", "scheduler_options": "",
                "transfer_input_files": [], "walltime": "00:10:00", "worker_init": "",
                "launcher": SingleNodeLauncher(), "requirements": "", "cmd_timeout": 60,
                "cmd_chunk_size": 100}
    legacy = _OLD


class KubernetesProvider(ExecutionProvider):
    keywords = {"image": REQUIRED, "namespace": "default", "nodes_per_block": 1,
                "init_blocks": 4, "min_blocks": 0, "max_blocks": 10, "max_cpu": 2,
                "max_mem": "500Mi", "init_cpu": 1, "init_mem": "250Mi", "extra_requests": None,
                "extra_limits": None, "parallelism": 1, "worker_init": "", "pod_name": None,
                "user_id": None, "group_id": None, "run_as_non_root": False, "secret": None,
                "persistent_volumes": [], "service_account_name": None, "annotations": None}


class AdHocProvider(ExecutionProvider):
    """Parsl's ad hoc provider (removed in 2025): one block per channel's host."""

    keywords = {"channels": [], "worker_init": "", "cmd_timeout": 30, "parallelism": 1,
                "move_files": None}


__all__ = ["AdHocProvider", "CondorProvider", "ExecutionProvider", "GridEngineProvider",
           "KubernetesProvider", "LSFProvider", "LocalProvider", "PBSProProvider",
           "SlurmProvider", "TorqueProvider"]
