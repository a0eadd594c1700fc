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
from daskflow.parsl.errors import (CompatibilityWarning, ConfigurationError,
                                   NoDataFlowKernelError)
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
