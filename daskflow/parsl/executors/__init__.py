"""``parsl.executors``: Parsl's executor classes with their keywords.
``parsl.load`` turns ThreadPoolExecutor, HighThroughputExecutor and
MPIExecutor into pools; the others are refused there, saying why."""

from __future__ import annotations

from ..holders import REQUIRED, Holder
from ..providers import LocalProvider

_HTEX_COMMON = {
    "provider": None, "launch_cmd": None, "interchange_launch_cmd": None, "address": None,
    "loopback_address": "127.0.0.1", "worker_port": None, "worker_port_range": (54000, 55000),
    "interchange_port_range": (55000, 56000), "storage_access": None, "working_dir": None,
    "worker_debug": False}
_HTEX_TAIL = {
    "prefetch_capacity": 0, "heartbeat_threshold": 120, "heartbeat_period": 30,
    "drain_period": None, "poll_period": 10, "address_probe_timeout": None,
    "worker_logdir_root": None}


class ParslExecutor(Holder):
    """Parsl's executor base; ``label`` names the pool (``executors=`` pins to it)."""

    #: why daskflow does not run this executor (None: it does)
    refused: str | None = None
    label: str = "undefined"  #: of a subclass written for a script, without the keyword


class ThreadPoolExecutor(ParslExecutor):
    keywords = {"label": "threads", "max_threads": 2, "thread_name_prefix": None,
                "storage_access": None, "working_dir": None, "remote_monitoring_radio": None}


class HighThroughputExecutor(ParslExecutor):
    keywords = {"label": "HighThroughputExecutor", **_HTEX_COMMON, "cores_per_worker": 1.0,
                "mem_per_worker": None, "max_workers_per_node": None, "cpu_affinity": "none",
                "available_accelerators": (), **_HTEX_TAIL, "manager_selector": None,
                "block_error_handler": True, "encrypted": True, "remote_monitoring_radio": None}
    legacy = {"max_workers": None, "worker_ports": None, "enable_mpi_mode": False,
              "mpi_launcher": "mpiexec"}


class MPIExecutor(ParslExecutor):
    keywords = {"label": "MPIExecutor", **_HTEX_COMMON, "max_workers_per_block": 1,
                **_HTEX_TAIL, "mpi_launcher": "mpiexec", "block_error_handler": True,
                "encrypted": False, "remote_monitoring_radio": None}


_OWN_SCHEDULER = ("it has its own scheduler; daskflow runs every app on the Dask scheduler. "
                  "Use HighThroughputExecutor with the same provider instead")


class WorkQueueExecutor(ParslExecutor):
    refused = _OWN_SCHEDULER
    keywords = {"label": "WorkQueueExecutor", "provider": LocalProvider(), "working_dir": ".",
                "project_name": None, "project_password_file": None, "address": None,
                "port": 9123, "env": None, "shared_fs": False, "storage_access": None,
                "use_cache": False, "source": False, "pack": False, "extra_pkgs": None,
                "autolabel": False, "autolabel_window": 1, "autocategory": True,
                "max_retries": 1, "init_command": "", "worker_options": "", "full_debug": True,
                "worker_executable": "work_queue_worker", "function_dir": None,
                "coprocess": False, "scaling_cores_per_worker": 1,
                "remote_monitoring_radio": None}


class TaskVineExecutor(ParslExecutor):
    refused = _OWN_SCHEDULER
    keywords = {"label": "TaskVineExecutor", "worker_launch_method": "factory",
                "function_exec_mode": "regular", "manager_config": None, "factory_config": None,
                "provider": None, "storage_access": None, "remote_monitoring_radio": None}


class FluxExecutor(ParslExecutor):
    refused = _OWN_SCHEDULER
    keywords = {"provider": None, "working_dir": None, "label": "FluxExecutor",
                "flux_executor_kwargs": {}, "flux_path": None, "launch_cmd": None}


class RadicalPilotExecutor(ParslExecutor):
    refused = _OWN_SCHEDULER
    keywords = {"resource": REQUIRED, "label": "RPEX", "bulk_mode": False, "working_dir": None,
                "rpex_cfg": None}


class GlobusComputeExecutor(ParslExecutor):
    refused = ("its tasks run on a Globus Compute endpoint, outside the Dask cluster; "
               "use a site profile's pool for that machine instead")
    keywords = {"executor": REQUIRED, "label": "GlobusComputeExecutor", "storage_access": None,
                "working_dir": None}


__all__ = ["FluxExecutor", "GlobusComputeExecutor", "HighThroughputExecutor", "MPIExecutor",
           "ParslExecutor", "RadicalPilotExecutor", "TaskVineExecutor", "ThreadPoolExecutor",
           "WorkQueueExecutor"]
