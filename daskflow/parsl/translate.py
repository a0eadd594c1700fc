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
from .config import Config
from .data_provider.data_manager import storage_settings
from .errors import ConfigurationError

#: Config keywords that load() translates; any other one given is warned about
CONFIG_USED = ("executors", "exit_mode", "retries", "run_dir", "strategy", "max_idletime",
               "monitoring", "dependency_resolver", "memoizer", "app_cache",
               "checkpoint_files", "checkpoint_mode", "checkpoint_period",
               "retry_handler", "std_autopath", "initialize_logging")
# (memoizer to checkpoint_period: dataflow.memoization; retry_handler and std_autopath:
# read by parsl.app; initialize_logging: the kernel's parsl.log)
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
                 "cores_per_worker", "address", "max_workers_per_block", "mpi_launcher",
                 "storage_access")
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


#: the executors daskflow runs as pools
RUN = (ex.ThreadPoolExecutor, ex.HighThroughputExecutor, ex.MPIExecutor)


def translate(config) -> Plan:
    """The plan of ``config`` (a ``parsl.config.Config``)."""
    plan = Plan()
    _refuse_contradictions(config)
    plan.unused += [f"Config.{k}" for k in config.changed() if k not in CONFIG_USED]
    _monitoring(config, plan)
    plan.unused += _unread_keywords(config)
    plan.settings["daskflow.retries"] = config.retries
    if config.run_dir != Config.keywords["run_dir"]:
        plan.settings["daskflow.run-dir"] = os.path.abspath(config.run_dir)
    if config.dependency_resolver is not None:
        plan.settings["daskflow.dependencies"] = _dependencies(config.dependency_resolver)
    for executor in config.executors:
        if executor.refused:
            raise ConfigurationError(f"{type(executor).__name__}(label={executor.label!r}) is "
                                     f"not supported by daskflow: {executor.refused}")
        if not isinstance(executor, RUN):
            raise ConfigurationError(
                f"{type(executor).__name__} is an executor written for Parsl (its own submit); "
                "on daskflow the Dask scheduler runs every app, so configure "
                "ThreadPoolExecutor or HighThroughputExecutor instead")
    plan.settings.update(storage_settings(config.executors))  # Parsl's staging providers
    only = config.executors[0]
    if len(config.executors) == 1 and isinstance(only, ex.ThreadPoolExecutor):
        # as Parsl's: threads of this process, which take the script's objects
        # (locks, events, shared state) by reference; and Parsl leaves the
        # script's log handlers alone, where LocalCluster would mute them
        threads = only.max_threads or min(32, (os.cpu_count() or 1) + 4)  # as Parsl's
        plan.local = {"processes": False, "n_workers": 1, "threads_per_worker": threads,
                      "silence_logs": False}
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


def _dependencies(resolver) -> str:
    """daskflow's ``daskflow.dependencies`` for Parsl's resolvers; one of the
    user's own is refused (Dask, not daskflow, resolves the futures)."""
    from .dataflow.dependency_resolvers import mode_of

    mode = mode_of(resolver)
    if mode is None:
        raise _refuse("Config", "dependency_resolver",
                      f"{resolver!r} is not one of Parsl's resolvers: daskflow hands the "
                      "futures to Dask, which resolves them, so functions of your own cannot "
                      "choose them; use SHALLOW_DEPENDENCY_RESOLVER or "
                      "DEEP_DEPENDENCY_RESOLVER")
    return mode


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


#: launcher keywords with no meaning on Dask (accepted with the warning)
LAUNCHER_IGNORED = ("debug", "fail_on_any", "bind_cmd", "bash_location")
#: MonitoringHub keywords, none with a meaning on Dask: the hub's addresses
#: (unused in Parsl too), the workflow's name and version (a run is named by
#: its id and script), the database URL (each run writes its provenance.db),
#: debug logging and resource sampling (the Dask dashboard shows resources)
MONITORING_IGNORED = ("hub_address", "hub_port", "hub_port_range", "workflow_name",
                      "workflow_version", "logging_endpoint", "monitoring_debug",
                      "resource_monitoring_enabled", "resource_monitoring_interval")


def _monitoring(config, plan: Plan) -> None:
    """``Config(monitoring=MonitoringHub(...))``: record the run's provenance
    (which also feeds the dashboard's Workflow page) even where the user's
    dask config turned it off; the hub's own keywords have no meaning here."""
    from .monitoring import MonitoringHub

    hub = config.monitoring
    if hub is None:
        return  # daskflow's default stands (provenance on unless configured off)
    if not isinstance(hub, MonitoringHub):
        raise ConfigurationError(f"Config(monitoring={hub!r}): expected a "
                                 "parsl.monitoring.MonitoringHub or None")
    plan.settings["daskflow.provenance.enabled"] = True
    plan.unused += [f"MonitoringHub.{k}" for k in hub.changed() if k in MONITORING_IGNORED]


def _unread_keywords(config) -> list[str]:
    """Launcher, local and ad hoc provider keywords that no pool reads (named in the
    warning); a launcher's ``overrides`` would change the command, so it is refused."""
    unread = []
    for executor in config.executors:
        provider = getattr(executor, "provider", None)
        if provider is None:
            continue
        what = type(provider).__name__
        if isinstance(provider, pv.LocalProvider):
            unread += [f"{what}.{k}" for k in provider.changed()
                       if k in PROVIDER_IGNORED or k == "move_files"]
        elif isinstance(provider, pv.AdHocProvider):  # its pool has one block per host
            unread += [f"{what}.{k}" for k in provider.changed()
                       if k in ("cmd_timeout", "move_files", "parallelism")]
        launcher = getattr(provider, "launcher", None)
        if launcher is None:
            continue
        kind = type(launcher).__name__
        if launcher.changed().get("overrides"):
            raise _refuse(kind, "overrides", f"daskflow's launchers take no extra arguments "
                          f"(executor {executor.label!r}); write a site profile and set "
                          "the options with block.worker_init or block.job_extra")
        unread += [f"{kind}.{k}" for k in launcher.changed() if k in LAUNCHER_IGNORED]
    return unread


def _refuse_contradictions(config) -> None:
    """Fail on options that contradict each other, naming them with the
    executor's label (before they become a profile that would name its own fields)."""
    static = config.strategy in (None, "none")
    for executor in config.executors:
        label = f"executor {executor.label!r}"
        kind = type(executor).__name__
        given = executor.changed()
        if {"max_workers", "max_workers_per_node"} <= set(given) \
                and given["max_workers"] != given["max_workers_per_node"]:
            raise ConfigurationError(
                f"{kind}(max_workers={given['max_workers']!r}, max_workers_per_node="
                f"{given['max_workers_per_node']!r}) of {label}: max_workers is the old name "
                "of max_workers_per_node; give one")
        for keyword in ("max_workers_per_node", "max_workers", "max_workers_per_block",
                        "cores_per_worker", "max_threads"):
            value = given.get(keyword)
            if value is not None and not (isinstance(value, (int, float))
                                          and not isinstance(value, bool) and value > 0):
                raise ConfigurationError(f"{kind}({keyword}={value!r}) of {label}: expected "
                                         "a number > 0")
        provider = getattr(executor, "provider", None)
        if provider is None or isinstance(provider, pv.AdHocProvider):
            continue  # ad hoc blocks: one per channel, whatever the counts say
        what = type(provider).__name__
        top = provider.max_blocks
        for keyword in ("init_blocks", "min_blocks"):
            if getattr(provider, keyword) > top:
                raise ConfigurationError(
                    f"{what}({keyword}={getattr(provider, keyword)!r}, max_blocks={top!r}) of "
                    f"{label}: {keyword} is above max_blocks")
        if static and provider.init_blocks == 0:
            raise ConfigurationError(
                f"Config(strategy={config.strategy!r}) with {what}(init_blocks=0) of {label}: "
                "no block would ever start; give init_blocks >= 1 or strategy='simple'")


def translate_to_profile(config) -> Plan:
    """As :func:`translate`, but always with a profile: a lone
    ThreadPoolExecutor, which ``parsl.load`` starts as the local default,
    becomes one local pool of the same size (``daskflow profiles from-parsl``)."""
    plan = translate(config)
    if plan.profile is None:
        only = config.executors[0]
        label = _pool_label(only.label, ())
        pool, _ = _pool(only, label, [])
        pool["scaling"]["strategy"] = "none"  # a fixed size, as the local default
        plan.labels = {only.label: label}
        plan.profile = {"name": "parsl", "description": "translated from a Parsl Config",
                        "retries": config.retries, "pools": [pool],
                        "scheduler": {"host": dask.config.get("daskflow.local.host"),
                                      "dashboard": dask.config.get(
                                          "daskflow.local.dashboard-address")}}
    return plan
