"""``daskflow.parsl``: Parsl's names and keywords, what ``parsl.load``
translates a ``Config`` into, and what it refuses (naming the option).

Nothing here starts a cluster except the scripts, which run in fresh
interpreters so that the process-wide loaded kernel stays theirs."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import daskflow
from daskflow.parsl import Config, python_app
from daskflow.parsl.dataflow.dflow import DataFlowKernelLoader
from daskflow.parsl.errors import CompatibilityWarning, ConfigurationError, NoDataFlowKernelError
from daskflow.parsl.executors import HighThroughputExecutor, ThreadPoolExecutor, WorkQueueExecutor
from daskflow.parsl.launchers import GnuParallelLauncher, SrunLauncher
from daskflow.parsl.providers import LocalProvider, PBSProProvider, SlurmProvider
from daskflow.parsl.translate import translate
from daskflow.sites.profile import parse_profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_unknown_keywords_fail_naming_them_as_in_parsl():
    with pytest.raises(TypeError, match="Config.. got an unexpected keyword argument 'retires'"):
        Config(retires=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_block'"):
        LocalProvider(max_block=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_thread'"):
        ThreadPoolExecutor(max_thread=2)
    # older Parsl's keywords are still accepted
    assert HighThroughputExecutor(max_workers=3).max_workers == 3
    assert Config(checkpoint_mode="task_exit").checkpoint_mode == "task_exit"


def test_duplicate_labels_are_a_configuration_error():
    with pytest.raises(ConfigurationError, match="unique labels.*label='x'"):
        Config(executors=[ThreadPoolExecutor(label="x"), HighThroughputExecutor(label="x")])


def test_an_app_called_before_load_raises_no_data_flow_kernel_error():
    assert DataFlowKernelLoader._dfk is None

    @python_app
    def inc(x):
        return x + 1

    with pytest.raises(NoDataFlowKernelError, match="Must first load config"):
        inc(1)
    with pytest.raises(NoDataFlowKernelError):
        daskflow.parsl.dfk()
    assert isinstance(inc, daskflow.App)  # a daskflow app, gated by the kernel


def test_executors_with_their_own_scheduler_are_refused_at_load():
    with pytest.raises(ConfigurationError, match="WorkQueueExecutor.*own scheduler"):
        daskflow.parsl.load(Config(executors=[WorkQueueExecutor()]))
    assert DataFlowKernelLoader._dfk is None


def test_a_lone_thread_pool_is_the_local_default_and_its_label_pins_to_it():
    plan = translate(Config(executors=[ThreadPoolExecutor(label="t", max_threads=4)]))
    processes, threads = plan.local["n_workers"], plan.local["threads_per_worker"]
    assert processes <= (os.cpu_count() or 1) and processes * threads >= 4
    assert plan.labels == {"t": "local"} and plan.profile is None


def test_options_without_meaning_are_collected_for_one_warning():
    plan = translate(Config(executors=[ThreadPoolExecutor(thread_name_prefix="x")],
                            garbage_collect=False, usage_tracking=1, retries=2))
    assert plan.unused == ["Config.garbage_collect", "Config.usage_tracking",
                           "ThreadPoolExecutor.thread_name_prefix"]
    assert plan.settings["daskflow.retries"] == 2


def test_slurm_becomes_a_valid_profile_pool():
    config = Config(executors=[HighThroughputExecutor(
        label="cluster-htex", max_workers_per_node=4, address="10.0.0.5",
        provider=SlurmProvider(partition="debug", account="proj", walltime="01:00:00",
                               nodes_per_block=2, worker_init="module load python",
                               scheduler_options="#SBATCH --mail-type=END\n#SBATCH --gres=gpu:1",
                               init_blocks=0, max_blocks=3, launcher=SrunLauncher()))],
        retries=1)
    plan = translate(config)
    profile = parse_profile(plan.profile, "test", "parsl")
    pool = profile.pools[0]
    assert plan.labels == {"cluster-htex": "cluster_htex"} and pool.label == "cluster_htex"
    assert (pool.provider, pool.launcher, pool.workers_per_node) == ("slurm", "srun", 4)
    assert (pool.block.queue, pool.block.account, pool.block.walltime, pool.block.nodes) == (
        "debug", "proj", "01:00:00", 2)
    assert pool.block.worker_init == ("module load python",)
    assert pool.block.job_extra == ("--mail-type=END", "--gres=gpu:1", "--exclusive")
    assert (pool.scaling.init_blocks, pool.scaling.max_blocks) == (0, 3)
    assert profile.scheduler.host == "10.0.0.5" and profile.retries == 1


def test_mpi_executor_and_a_thread_pool_beside_htex_become_local_pools():
    from daskflow.parsl.executors import MPIExecutor

    plan = translate(Config(executors=[
        MPIExecutor(label="mpi", max_workers_per_block=2, mpi_launcher="mpirun"),
        ThreadPoolExecutor(label="threads", max_threads=1), HighThroughputExecutor()],
        strategy=None))
    profile = parse_profile(plan.profile, "test", "parsl")
    mpi, threads, htex = profile.pools
    assert (mpi.provider, mpi.workers_per_node, mpi.mpi.launcher) == ("local", 2, "mpirun")
    assert (threads.label, threads.workers_per_node, threads.threads_per_worker) == (
        "threads", 1, 1)
    assert htex.label == "HighThroughputExecutor" and htex.scaling.strategy == "none"
    assert profile.scheduler.host == "127.0.0.1"  # local pools only: loopback


def test_an_ad_hoc_provider_with_ssh_channels_becomes_an_ssh_pool():
    from daskflow.parsl.channels import SSHChannel
    from daskflow.parsl.providers import AdHocProvider

    with warnings.catch_warnings():  # the channels' one-time warning: tested in a script
        warnings.simplefilter("ignore", CompatibilityWarning)
        channels = [SSHChannel(host, username="me", port=2222, key_filename="/k/id",
                               host_keys_filename="/k/known") for host in ("n1", "n2")]
    plan = translate(Config(executors=[HighThroughputExecutor(
        label="hosts", max_workers_per_node=2, provider=AdHocProvider(channels=channels))]))
    pool = parse_profile(plan.profile, "test", "parsl").pools[0]
    assert (pool.provider, pool.hosts, pool.port, pool.username) == (
        "ssh", ("n1", "n2"), 2222, "me")
    assert pool.connect_options == {"client_keys": ["/k/id"], "known_hosts": "/k/known"}
    assert (pool.scaling.init_blocks, pool.scaling.max_blocks, pool.workers_per_node) == (2, 2, 2)
    with pytest.raises(ConfigurationError, match=r"AdHocProvider\(channels=...\).*usernames differ"):
        translate(Config(executors=[HighThroughputExecutor(provider=AdHocProvider(
            channels=[SSHChannel("n1", username="a"), SSHChannel("n2", username="b")]))]))


@pytest.mark.parametrize("executor, message", [
    (HighThroughputExecutor(provider=PBSProProvider(select_options="ngpus=4")),
     r"PBSProProvider\(select_options=...\) cannot be translated"),
    (HighThroughputExecutor(max_workers_per_node=1, provider=SlurmProvider(
        scheduler_options="--mem=4G")), r"scheduler_options=.*must start with #SBATCH"),
    (HighThroughputExecutor(provider=SlurmProvider()),
     r"must know how many workers a node runs; set max_workers_per_node"),
    (HighThroughputExecutor(provider=LocalProvider(worker_init="source env.sh")),
     r"LocalProvider\(worker_init=...\)"),
    (HighThroughputExecutor(max_workers_per_node=1, provider=SlurmProvider(
        launcher=GnuParallelLauncher())), r"GnuParallelLauncher.*not supported"),
    (HighThroughputExecutor(launch_cmd="my-worker {block_id}"), r"launch_cmd=...\)"),
])
def test_what_cannot_be_translated_fails_naming_the_option(executor, message):
    with pytest.raises((ConfigurationError, ValueError), match=message):
        translate(Config(executors=[executor]))


def _python(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=180)


def test_import_parsl_gives_daskflow_parsl_modules_themselves(tmp_path):
    proc = _python("""
import daskflow.parsl, daskflow.errors
daskflow.parsl.install()
import parsl
import parsl.app.app
from parsl.app.errors import BashExitFailure
from parsl.dataflow.errors import DependencyError
from parsl.configs.local_threads import config
from parsl.executors.threads import ThreadPoolExecutor
assert parsl is daskflow.parsl and parsl.app.app is daskflow.parsl.app.app
assert parsl.app.app.__spec__.name == 'daskflow.parsl.app.app'
assert BashExitFailure is daskflow.errors.BashExitFailure
assert DependencyError is daskflow.errors.DependencyError
assert isinstance(config.executors[0], ThreadPoolExecutor)
print(parsl.__version__)
try:
    import parsl.no_such_module
except ModuleNotFoundError as e:
    print(e)
""", tmp_path)
    assert proc.returncode == 0, proc.stderr
    version, missing = proc.stdout.splitlines()
    assert version == f"2026.10.26+daskflow.{daskflow.__version__}"
    assert missing == "No module named 'parsl.no_such_module'"


def test_install_refuses_when_another_parsl_is_imported(tmp_path):
    proc = _python("""
import sys, types
sys.modules['parsl'] = types.ModuleType('parsl')
import daskflow.parsl
daskflow.parsl.install()
""", tmp_path)
    assert proc.returncode == 1
    assert "ParslAlreadyImported: the real Parsl is already imported in this process" \
        in proc.stderr, proc.stderr


def test_old_channels_warn_once_and_a_thread_pool_config_runs(tmp_path):
    """...with an app from a module of the script's that imports parsl: the
    helper it calls is pickled by reference, so the workers import that
    module, and parsl there."""
    (tmp_path / "mylib.py").write_text(
        "import parsl\n\ndef plus(a, b):\n    return a + b\n\n"
        "@parsl.python_app(executors=['threads'])\ndef add(a, b):\n    return plus(a, b)\n")
    proc = _python("""
import os
import warnings
warnings.simplefilter("default")
import daskflow.parsl
daskflow.parsl.install()
import parsl
from parsl.channels import LocalChannel
from parsl.config import Config
from parsl.executors import ThreadPoolExecutor

LocalChannel(); LocalChannel()
config = Config(executors=[ThreadPoolExecutor(label="threads", max_threads=2)],
                garbage_collect=False, strategy_period=1, retries=1, run_dir="myruns")

@parsl.python_app
def flaky(marker):
    import os
    if not os.path.exists(marker):  # the first try fails: Config(retries=1) tries again
        open(marker, "w").close()
        raise RuntimeError("first try")
    return "second try"

from mylib import add

with parsl.load(config) as dfk:
    print("SUM", add(add(1, 2), 3).result(), dfk is parsl.dfk())
    print("RETRIED", flaky(os.path.abspath("marker")).result())
    print("RUN", os.path.relpath(dfk.run_dir))
""", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SUM 6 True" in proc.stdout.splitlines()
    assert "RETRIED second try" in proc.stdout.splitlines()
    assert "RUN myruns/000" in proc.stdout.splitlines()
    assert proc.stderr.count("CompatibilityWarning") == 2, proc.stderr
    assert proc.stderr.count("parsl.channels was removed from Parsl in 2024") == 1
    assert ("daskflow does not use these options of the Parsl configuration: "
            "Config.garbage_collect, Config.strategy_period") in proc.stderr


def test_options_set_on_the_config_after_it_is_built_count_too(tmp_path):
    config = Config(executors=[ThreadPoolExecutor(label="t")])
    config.retries = 3
    config.run_dir = str(tmp_path / "elsewhere")
    plan = translate(config)
    assert plan.settings["daskflow.retries"] == 3
    assert plan.settings["daskflow.run-dir"] == str(tmp_path / "elsewhere")
    assert "retries" in config.changed() and "run_dir" in config.changed()


def test_a_thread_pool_leaves_the_scripts_log_handlers_alone():
    plan = translate(Config(executors=[ThreadPoolExecutor()]))
    assert plan.local["silence_logs"] is False


def test_monitoring_hub_turns_provenance_on_and_names_its_unused_keywords():
    from daskflow.parsl.monitoring import MonitoringHub

    plan = translate(Config(monitoring=MonitoringHub(
        hub_address="127.0.0.1", workflow_name="wf", resource_monitoring_interval=1)))
    assert plan.settings["daskflow.provenance.enabled"] is True
    assert plan.unused == ["MonitoringHub.hub_address", "MonitoringHub.workflow_name",
                           "MonitoringHub.resource_monitoring_interval"]
    # without a hub, daskflow's own default stands (provenance on unless configured off)
    assert "daskflow.provenance.enabled" not in translate(Config()).settings
    with pytest.raises(ConfigurationError, match=r"Config\(monitoring='yes'\): expected a "
                                                 r"parsl.monitoring.MonitoringHub"):
        translate(Config(monitoring="yes"))


def test_a_wrong_exit_mode_or_executor_is_parsls_type_check_error():
    for bad in (dict(exit_mode="wrongmode"), dict(executors=["htex"])):
        with pytest.raises(TypeError) as info:
            Config(**bad)
        # Parsl's tests recognise typeguard's error by its name
        assert info.type.__name__ == "TypeCheckError" and isinstance(info.value,
                                                                     ConfigurationError)
    assert "Config(executors=[..., 'htex', ...]): expected Parsl executors" in str(info.value)


@pytest.mark.parametrize("config, message", [
    (Config(executors=[HighThroughputExecutor(label="h", provider=LocalProvider(
        init_blocks=3, max_blocks=2))]),
     r"LocalProvider\(init_blocks=3, max_blocks=2\) of executor 'h': init_blocks is above "
     r"max_blocks"),
    (Config(executors=[HighThroughputExecutor(max_workers_per_node=1, provider=SlurmProvider(
        min_blocks=2, max_blocks=1))]), r"SlurmProvider\(min_blocks=2, max_blocks=1\)"),
    (Config(executors=[HighThroughputExecutor(label="h", provider=LocalProvider(
        init_blocks=0))], strategy="none"),
     r"Config\(strategy='none'\) with LocalProvider\(init_blocks=0\) of executor 'h': no "
     r"block would ever start"),
    (Config(executors=[HighThroughputExecutor(max_workers=2, max_workers_per_node=3)]),
     r"max_workers is the old name of max_workers_per_node; give one"),
    (Config(executors=[HighThroughputExecutor(label="h", max_workers_per_node=0)]),
     r"HighThroughputExecutor\(max_workers_per_node=0\) of executor 'h': expected a number > 0"),
    (Config(executors=[HighThroughputExecutor(max_workers_per_node=1, provider=SlurmProvider(
        launcher=SrunLauncher(overrides="--cpu-bind=cores")))]),
     r"SrunLauncher\(overrides=...\) cannot be translated: daskflow's launchers take no extra"),
])
def test_contradictory_options_fail_naming_them(config, message):
    with pytest.raises(ConfigurationError, match=message):
        translate(config)


def test_launcher_and_local_provider_keywords_without_meaning_are_named():
    plan = translate(Config(executors=[
        HighThroughputExecutor(label="a", provider=LocalProvider(cmd_timeout=5)),
        HighThroughputExecutor(label="b", max_workers_per_node=1, provider=SlurmProvider(
            launcher=SrunLauncher(debug=False)))]))
    assert plan.unused == ["LocalProvider.cmd_timeout", "SrunLauncher.debug"]
    from daskflow.parsl.channels import SSHChannel
    from daskflow.parsl.providers import AdHocProvider

    with warnings.catch_warnings():  # the channels' one-time warning: tested in a script
        warnings.simplefilter("ignore", CompatibilityWarning)
        channel = SSHChannel("n1")
    plan = translate(Config(executors=[HighThroughputExecutor(max_workers_per_node=1, provider=(
        AdHocProvider(channels=[channel], cmd_timeout=5, parallelism=0.5)))]))
    assert plan.unused == ["AdHocProvider.cmd_timeout", "AdHocProvider.parallelism"]
    # as in Parsl, blocks started without an elastic strategy are fine
    assert translate(Config(strategy=None)).local is not None


def test_a_monitoring_hub_records_the_run_and_serves_the_workflow_page(tmp_path):
    """...even where the user's dask config turned provenance off."""
    env = dict(os.environ, PYTHONPATH=ROOT, DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0",
               DASK_DASKFLOW__PROVENANCE__ENABLED="false")
    code = """
import os, sys, time, urllib.request
import daskflow.parsl as parsl
from daskflow.parsl import Config, python_app
from daskflow.parsl.monitoring import MonitoringHub

@python_app
def inc(x):
    return x + 1

on = sys.argv[1] == "hub"
with parsl.load(Config(monitoring=MonitoringHub() if on else None, run_dir="runs")) as dfk:
    print("RESULT", inc(1).result())
    print("RECORDED", dfk.run_dir is not None and os.path.exists(
        os.path.join(dfk.run_dir, "provenance.db")))
    url = dfk.client.dashboard_link.replace("/status", "/workflow")
    deadline = time.monotonic() + 30  # the page is added as the run starts
    while on:
        try:
            print("PAGE", urllib.request.urlopen(url).status)
            break
        except OSError as e:
            if time.monotonic() > deadline:
                print("PAGE", getattr(e, "code", e))
                break
            time.sleep(0.2)
"""
    for arg, expected in (("hub", ["RESULT 2", "RECORDED True", "PAGE 200"]),
                          ("none", ["RESULT 2", "RECORDED False"])):
        proc = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=180)
        assert proc.returncode == 0, proc.stderr
        for line in expected:
            assert line in proc.stdout.splitlines(), (proc.stdout, proc.stderr)


def test_exit_modes_skip_and_cleanup(tmp_path):
    """As Parsl's test_context_manager: 'skip' leaves the kernel loaded and its
    tasks running; 'cleanup' (the default) unloads it at the end of the block."""
    proc = _python("""
import os
import daskflow.parsl as parsl
from daskflow.parsl import Config, python_app

@python_app
def wait_for(path):
    import os, time
    while not os.path.exists(path):
        time.sleep(0.05)
    return "released"

flag = os.path.abspath("flag")
with parsl.load(Config(exit_mode="skip")) as dfk:
    fut = wait_for(flag)
print("SKIP", parsl.dfk() is dfk, fut.done())
open(flag, "w").close()
print("LATER", fut.result())
dfk.cleanup()
with parsl.load(Config()) as dfk:
    pass
print("CLEANUP", dfk.cleanup_called, parsl.DataFlowKernelLoader._dfk is None)
""", tmp_path)
    assert proc.returncode == 0, proc.stderr
    for line in ("SKIP True False", "LATER released", "CLEANUP True True"):
        assert line in proc.stdout.splitlines(), (proc.stdout, proc.stderr)


def test_the_migration_guide_maps_every_keyword():
    """docs/migrating-from-parsl.md's mapping names every keyword of every
    Config, executor, provider and launcher class that parsl.load reads."""
    import re

    from daskflow.parsl import executors, launchers, monitoring, providers

    text = open(os.path.join(ROOT, "docs", "migrating-from-parsl.md")).read()
    section = text[text.index("## The Config-to-profile mapping"):]
    section = section[:section.index("\n## ")]
    named = set(re.findall(r"`([A-Za-z_]+)`", section))
    classes = [Config, monitoring.MonitoringHub] + [
        getattr(module, name) for module in (executors, providers, launchers)
        for name in module.__all__]
    missing = []
    for cls in classes:
        if not getattr(cls, "keywords", None) or getattr(cls, "refused", None):
            continue  # a base class, or an executor refused whole
        if cls.__name__ not in named:
            missing.append(cls.__name__)
        missing += [f"{cls.__name__}.{k}" for k in (*cls.keywords, *cls.legacy)
                    if k not in named]
    assert not missing, missing


def test_usage_tracking_values_are_checked_as_in_parsl():
    for level in (0, 1, 2, 3, False, True):
        assert Config(usage_tracking=level).usage_tracking == level
    for level in (12, -1):
        with pytest.raises(ConfigurationError, match=rf"Config\(usage_tracking={level}\)"):
            Config(usage_tracking=level)
    for bad in (dict(usage_tracking="abcd"), dict(usage_tracking=None),
                dict(usage_tracking=1.0), dict(usage_tracking=3, project_name=1)):
        with pytest.raises(TypeError) as info:
            Config(**bad)
        assert info.type.__name__ == "TypeCheckError"
