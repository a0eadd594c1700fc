"""A Parsl ``Config`` as what daskflow starts: the local default for a lone
ThreadPoolExecutor, else a site profile with one pool per executor.

Each executor keeps its label: ``labels`` maps it to its pool's label (an
identifier, as profiles require), so ``executors=["label"]`` pins as in
Parsl. A keyword daskflow has no use for is named in ``unused`` (one
warning at load); one whose effect it cannot give fails here, naming it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import dask

from ..launchers import launcher_for_parsl
from ..sites.providers import provider_for_parsl
from . import executors as ex
from . import providers as pv
from .addresses import address_by_hostname
from .errors import ConfigurationError

#: Config keywords that load() translates; any other one given is warned about
CONFIG_USED = ("executors", "exit_mode", "retries", "run_dir", "strategy", "max_idletime",
               "retry_handler", "std_autopath")  # the last two: read by the apps (parsl.app)
#: executor keywords whose effect daskflow cannot give: refused when given
EXECUTOR_REFUSED = {
    "launch_cmd": "daskflow starts its own worker command",
    "interchange_launch_cmd": "daskflow has no interchange: the Dask scheduler takes its place",
    "available_accelerators": "pinning workers to accelerators is not translated yet; "
                              "write a site profile with the pool's resources",
    "enable_mpi_mode": "use MPIExecutor",
}
#: executor keywords read below (the rest are accepted with the warning)
EXECUTOR_USED = ("label", "provider", "max_threads", "max_workers_per_node", "max_workers",
                 "cores_per_worker", "address", "max_workers_per_block", "mpi_launcher")
#: provider keywords read below, for every provider (each also has its own)
PROVIDER_USED = ("init_blocks", "min_blocks", "max_blocks", "parallelism", "nodes_per_block",
                 "walltime", "worker_init", "scheduler_options", "launcher", "channel")
#: per Parsl provider: keyword -> (block key, or a function giving job directives)
BATCH_KEYS = {
    "SlurmProvider": {
        "partition": "queue", "account": "account", "cores_per_node": "cores",
        "mem_per_node": "memory",
        "qos": lambda v: [f"--qos={v}"], "constraint": lambda v: [f"--constraint={v}"],
        "clusters": lambda v: [f"--clusters={v}"],
        "gpus_per_node": lambda v: [f"--gpus-per-node={v}"], "gres": lambda v: [f"--gres={v}"],
        "exclusive": lambda v: ["--exclusive"] if v else []},
    "PBSProProvider": {"account": "account", "queue": "queue", "cpus_per_node": "cores"},
    "TorqueProvider": {"account": "account", "queue": "queue"},
    "LSFProvider": {"project": "account", "queue": "queue", "cores_per_node": "cores"},
    "GridEngineProvider": {"queue": "queue"},
    "CondorProvider": {"cores_per_slot": "cores",
                       "requirements": lambda v: [f"requirements = {v}"] if v else []},
}
#: the prefix of a scheduler_options line, per Parsl provider
DIRECTIVE = {"SlurmProvider": "#SBATCH", "PBSProProvider": "#PBS", "TorqueProvider": "#PBS",
             "LSFProvider": "#BSUB", "GridEngineProvider": "#$", "CondorProvider": ""}
#: provider keywords with no meaning on Dask (accepted with the warning)
PROVIDER_IGNORED = ("cmd_timeout", "move_files", "regex_job_id", "status_batch_size",
                    "cmd_chunk_size", "bsub_redirection", "request_by_nodes", "init_cpu",
                    "init_mem")


@dataclass
class Plan:
    """What ``parsl.load`` starts: ``local`` (``daskflow.Client`` keywords
    for the local default) or ``profile`` (a site profile's data)."""

    local: dict | None = None
    profile: dict | None = None
    labels: dict[str, str] = field(default_factory=dict)  #: Parsl label -> pool label
    settings: dict = field(default_factory=dict)  #: dask config while loaded
    unused: list[str] = field(default_factory=list)  #: "Class.keyword" accepted unused


def translate(config) -> Plan:
    """The plan of ``config`` (a ``parsl.config.Config``)."""
    plan = Plan()
    plan.unused += [f"Config.{k}" for k in config.changed() if k not in CONFIG_USED]
    plan.settings["daskflow.retries"] = config.retries
    if "run_dir" in config.given:
        plan.settings["daskflow.run-dir"] = os.path.abspath(config.run_dir)
    for executor in config.executors:
        if executor.refused:
            raise ConfigurationError(f"{type(executor).__name__}(label={executor.label!r}) is "
                                     f"not supported by daskflow: {executor.refused}")
    only = config.executors[0]
    if len(config.executors) == 1 and isinstance(only, ex.ThreadPoolExecutor):
        processes, threads = _slots(only.max_threads)
        plan.local = {"n_workers": processes, "threads_per_worker": threads}
        plan.labels[only.label] = "local"
        plan.unused += _unused(only, EXECUTOR_USED)
        return plan
    strategy = _strategy(config.strategy)
    pools, hosts = [], []
    for executor in config.executors:
        label = _pool_label(executor.label, plan.labels.values())
        plan.labels[executor.label] = label
        pool, host = _pool(executor, label, plan.unused)
        pool["scaling"].update(strategy=strategy, max_idletime=float(config.max_idletime))
        pools.append(pool)
        hosts.append(host)
    local = all(p["provider"] == "local" for p in pools)
    host = next((h for h in hosts if h), None) or (
        dask.config.get("daskflow.local.host") if local else address_by_hostname())
    plan.profile = {"name": "parsl", "description": "translated from a Parsl Config",
                    "retries": config.retries, "pools": pools,
                    "scheduler": {"host": host,
                                  "dashboard": dask.config.get("daskflow.local.dashboard-address")}}
    return plan


def _slots(n: int | None) -> tuple[int, int]:
    """``n`` task slots as (processes, threads each): at most one process per core."""
    cores = os.cpu_count() or 1
    n = n or min(32, cores + 4)  # concurrent.futures' default
    processes = min(n, cores)
    return processes, math.ceil(n / processes)


def _strategy(strategy) -> str:
    if strategy in ("simple", "htex_auto_scale"):
        return "simple"
    if strategy in (None, "none"):
        return "none"
    raise ConfigurationError(f"Config(strategy={strategy!r}): expected 'simple', "
                             "'htex_auto_scale', 'none' or None")


def _pool_label(label, taken) -> str:
    """An identifier for the pool of executor ``label``, unique among ``taken``."""
    base = re.sub(r"\W", "_", str(label)) or "pool"
    base = "_" + base if base[0].isdigit() else base
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _unused(holder, used, prefix: str | None = None) -> list[str]:
    name = prefix or type(holder).__name__
    return [f"{name}.{k}" for k in holder.changed() if k not in used]


def _refuse(what: str, keyword: str, why: str):
    return ConfigurationError(f"{what}({keyword}=...) cannot be translated: {why}")


def _pool(executor, label: str, unused: list[str]) -> tuple[dict, str | None]:
    """A pool of ``executor`` and the scheduler host it asks for (its address)."""
    kind = type(executor).__name__
    for keyword, why in EXECUTOR_REFUSED.items():
        if keyword in executor.changed():
            raise _refuse(kind, keyword, why)
    unused += _unused(executor, (*EXECUTOR_USED, *EXECUTOR_REFUSED))
    provider = executor.provider if getattr(executor, "provider", None) is not None \
        else pv.LocalProvider()
    if isinstance(executor, ex.ThreadPoolExecutor):
        processes, threads = _slots(executor.max_threads)
        pool = _local_pool(label, pv.LocalProvider(), processes, kind)
        pool["threads_per_worker"] = threads
        return pool, None
    per_node = executor.max_workers_per_node if isinstance(
        executor, ex.HighThroughputExecutor) else executor.max_workers_per_block
    per_node = per_node or getattr(executor, "max_workers", None)
    cores_per_worker = getattr(executor, "cores_per_worker", 1.0)
    if isinstance(provider, pv.LocalProvider):
        if per_node is None:
            per_node = max(1, int((os.cpu_count() or 1) / cores_per_worker))
        pool = _local_pool(label, provider, per_node, kind)
    else:
        if isinstance(executor, ex.MPIExecutor):
            raise ConfigurationError(
                f"MPIExecutor(label={executor.label!r}) with {type(provider).__name__} is not "
                "translated yet; write a site profile with the pool's mpi section")
        pool = _remote_pool(label, provider, kind, unused)
        cores = pool.get("block", {}).get("cores")
        if per_node is None and cores:
            per_node = max(1, int(cores / cores_per_worker))
        if per_node is None and pool["provider"] != "ssh":
            raise ConfigurationError(
                f"{kind}(label={executor.label!r}): daskflow must know how many workers a node "
                f"runs; set max_workers_per_node, or the cores per node of "
                f"{type(provider).__name__}")
        pool["workers_per_node"] = per_node
    if isinstance(executor, ex.MPIExecutor):
        pool["mpi"] = {"launcher": executor.mpi_launcher}
    return pool, executor.address


def _scaling(provider) -> dict:
    if not 0 < provider.parallelism <= 1:
        raise _refuse(type(provider).__name__, "parallelism",
                      f"daskflow takes a parallelism p with 0 < p <= 1, got {provider.parallelism!r}")
    return {"init_blocks": provider.init_blocks, "min_blocks": provider.min_blocks,
            "max_blocks": provider.max_blocks, "parallelism": float(provider.parallelism)}


def _channel(provider) -> None:
    from .channels import LocalChannel

    channel = getattr(provider, "channel", None)
    if channel is not None and not isinstance(channel, LocalChannel):
        raise _refuse(type(provider).__name__, "channel",
                      "daskflow submits jobs from this machine; run the script on the "
                      "cluster's login node instead of through an SSH channel")


def _local_pool(label: str, provider, per_node: int, kind: str) -> dict:
    """A pool of ``per_node`` × ``nodes_per_block`` workers on this machine."""
    what = "LocalProvider"
    _channel(provider)
    if provider.worker_init:
        raise _refuse(what, "worker_init", "local workers are processes daskflow starts with "
                      "this Python and environment; prepare the environment before the script")
    launcher = type(provider.launcher).__name__
    if launcher not in ("SingleNodeLauncher", "SimpleLauncher"):
        raise _refuse(what, "launcher", f"{launcher} applies to batch systems; local blocks "
                      "start their workers directly")
    return {"label": label, "provider": "local",
            "workers_per_node": per_node * provider.nodes_per_block, "threads_per_worker": 1,
            "scaling": _scaling(provider)}


def _remote_pool(label: str, provider, kind: str, unused: list[str]) -> dict:
    """A pool of a batch system, Kubernetes or hosts over SSH."""
    what = type(provider).__name__
    target = provider_for_parsl(what)  # ValueError naming it when none stands for it
    _channel(provider)
    pool = {"label": label, "provider": target.name, "threads_per_worker": 1}
    if isinstance(provider, pv.AdHocProvider):
        return {**pool, **_adhoc(provider)}
    block: dict = {"nodes": provider.nodes_per_block}
    if provider.worker_init:
        if not target.batch:
            raise _refuse(what, "worker_init", f"{target.name} pools do not run a prologue")
        block["worker_init"] = [provider.worker_init]
    if "walltime" in provider.keywords:
        block["walltime"] = provider.walltime
    pool["scaling"] = _scaling(provider)
    if isinstance(provider, pv.KubernetesProvider):
        unused += [f"{what}.{k}" for k in provider.changed() if k in PROVIDER_IGNORED]
        return {**pool, **_kubernetes(provider, block)}
    pool["launcher"] = launcher_for_parsl(type(provider.launcher).__name__).name
    extra = _directives(what, provider.scheduler_options)
    own = BATCH_KEYS.get(what, {})
    for keyword, value in provider.changed().items():
        if keyword in PROVIDER_USED:
            continue
        if keyword in PROVIDER_IGNORED:
            unused.append(f"{what}.{keyword}")
        elif keyword not in own:
            raise _refuse(what, keyword, "not translated yet; write a site profile "
                          "(daskflow profiles show) with the job's options")
    for keyword, target_key in own.items():
        value = getattr(provider, keyword)
        if callable(target_key):
            extra += target_key(value) if value is not None else []
        elif value is not None and value != "":
            block[target_key] = int(value * 2**30) if target_key == "memory" else value
    if extra:
        block["job_extra"] = extra
    pool["block"] = block
    return pool


def _directives(what: str, options: str) -> list[str]:
    """The lines of ``scheduler_options`` without their ``#SBATCH``-like prefix."""
    prefix, out = DIRECTIVE[what], []
    for line in (options or "").splitlines():
        line = line.strip()
        if not line:
            continue
        if prefix and not line.startswith(prefix):
            raise _refuse(what, "scheduler_options", f"each line must start with {prefix}, "
                          f"got {line!r}")
        out.append(line[len(prefix):].strip())
    return out


def _kubernetes(provider, block: dict) -> dict:
    refused = [k for k in ("extra_requests", "extra_limits", "pod_name", "user_id", "group_id",
                           "run_as_non_root", "secret", "persistent_volumes",
                           "service_account_name", "annotations") if k in provider.changed()]
    if refused:
        raise _refuse("KubernetesProvider", refused[0], "not translated yet; write a site "
                      "profile with a kubernetes pool")
    memory = str(provider.max_mem)
    memory = memory + "B" if memory.endswith("i") else memory
    return {"image": provider.image, "namespace": provider.namespace,
            "block": {**block, "cores": max(1, math.ceil(float(provider.max_cpu))),
                      "memory": memory}}


def _adhoc(provider) -> dict:
    from .channels import SSHChannel

    channels = list(provider.channels)
    if not channels or not all(isinstance(c, SSHChannel) for c in channels):
        raise _refuse("AdHocProvider", "channels", "expected a list of SSHChannel, one per host")
    if provider.worker_init:
        raise _refuse("AdHocProvider", "worker_init", "ssh pools do not run a prologue")
    for key in ("username", "port"):
        if len({getattr(c, key) for c in channels}) > 1:
            raise _refuse("AdHocProvider", "channels", f"the channels' {key}s differ; an ssh "
                          "pool has one")
    pool = {"hosts": [c.hostname for c in channels], "port": channels[0].port,
            "scaling": {"init_blocks": len(channels), "min_blocks": 0,
                        "max_blocks": len(channels)}}
    if channels[0].username:
        pool["username"] = channels[0].username
    options = {}
    if channels[0].key_filename:
        options["client_keys"] = [channels[0].key_filename]
    if channels[0].host_keys_filename:  # else asyncssh's default: ~/.ssh/known_hosts
        options["known_hosts"] = channels[0].host_keys_filename
    if options:
        pool["connect_options"] = options
    return pool
