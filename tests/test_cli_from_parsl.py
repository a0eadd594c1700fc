"""``daskflow profiles from-parsl CONFIG``: a Parsl configuration file (run
with ``import parsl`` giving daskflow.parsl) becomes a site profile that
validates and starts; what a profile cannot hold is named, not dropped.

The command runs as users start it (the ``daskflow`` executable); the local
profiles it writes are then started for real with ``daskflow.Client``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

import daskflow
from daskflow.sites.profile import validate_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASKFLOW = os.path.join(os.path.dirname(sys.executable), "daskflow")

THREADS = """\
from parsl.config import Config
from parsl.executors.threads import ThreadPoolExecutor

config = Config(executors=[ThreadPoolExecutor(label="local_threads", max_threads=4)])
"""

HTEX_LOCAL = """\
import parsl
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.monitoring import MonitoringHub
from parsl.providers import LocalProvider


def patient(exception, task_record):  # Parsl's retry handler: a Python function
    return 0.5


config = Config(
    executors=[HighThroughputExecutor(label="htex-local", max_workers_per_node=2,
                                      heartbeat_period=15,
                                      provider=LocalProvider(init_blocks=1, max_blocks=1))],
    monitoring=MonitoringHub(workflow_name="wf"), exit_mode="wait", run_dir="myruns",
    retries=2, retry_handler=patient, garbage_collect=False)
"""

SLURM = """\
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.launchers import SrunLauncher
from parsl.providers import SlurmProvider


def fresh_config():
    return Config(executors=[HighThroughputExecutor(
        label="slurm_htex", max_workers_per_node=4,
        provider=SlurmProvider(partition="debug", account="proj", nodes_per_block=2,
                               cores_per_node=8, mem_per_node=16, walltime="01:30:00",
                               worker_init="module load python; source env/bin/activate",
                               init_blocks=0, min_blocks=0, max_blocks=4, exclusive=False,
                               launcher=SrunLauncher(),
                               scheduler_options="#SBATCH --qos=low"))],
        strategy="htex_auto_scale", max_idletime=30)
"""


def from_parsl(tmp_path, source: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "config.py").write_text(source)
    # the dashboard address the local profiles get: any free port (tests run side by side)
    env = dict(os.environ, PYTHONPATH=ROOT, DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0")
    return subprocess.run([DASKFLOW, "profiles", "from-parsl", "config.py", *args],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def comments(path) -> str:
    """The profile's comment lines, joined (wrapped lines become one text)."""
    lines = [line.strip()[1:].strip() for line in path.read_text().splitlines()
             if line.strip().startswith("#")]
    return " ".join(lines)


def test_a_thread_pool_becomes_a_local_pool_that_runs_apps(tmp_path):
    proc = from_parsl(tmp_path, THREADS, "-o", "threads.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "wrote threads.yaml (profile 'threads': local_threads:local)" in proc.stderr
    profile = validate_file(tmp_path / "threads.yaml")
    (pool,) = profile.pools
    assert (pool.label, pool.provider, pool.scaling.strategy) == ("local_threads", "local", "none")
    assert pool.workers_per_node * pool.threads_per_worker >= 4
    assert pool.workers_per_node <= (os.cpu_count() or 1)

    @daskflow.python_app(executors=["local_threads"])
    def where():
        from distributed import get_worker
        return get_worker().name

    with daskflow.Client(profile=str(tmp_path / "threads.yaml"), set_as_default=False) as c, \
            c.as_current():
        assert c.pools == ["local_threads"]
        assert where().result().startswith("local_threads")


def test_htex_local_keeps_what_it_can_and_names_the_rest(tmp_path):
    proc = from_parsl(tmp_path, HTEX_LOCAL, "-o", "htex.yaml", "--name", "mine")
    assert proc.returncode == 0, proc.stderr
    # the Python function cannot be written: a warning, and a comment, name it
    assert ("warning: Config.retry_handler=<function patient>: a Python object, which a YAML "
            "profile cannot hold") in proc.stderr, proc.stderr
    path = tmp_path / "htex.yaml"
    text = comments(path)
    assert "Config.retry_handler=<function patient>: a Python object" in text
    assert "Config.exit_mode='wait': with daskflow.Client(profile=...) as client" in text
    assert "Config.monitoring=MonitoringHub(workflow_name='wf'): provenance is recorded" in text
    assert "Config.run_dir='myruns': dask config daskflow.run-dir" in text
    lines = path.read_text().splitlines()
    start = lines.index("# The same behaviour as dask config (~/.config/dask/daskflow.yaml, or "
                        "dask.config.set):") + 1
    settings = lines[start:lines.index("#", start)]
    assert yaml.safe_load("\n".join(line[4:] for line in settings)) == {
        "daskflow": {"provenance": {"enabled": True}, "run-dir": "myruns"}}
    assert ("Accepted, without meaning on Dask (parsl.load warns about them too): "
            "Config.garbage_collect, MonitoringHub.workflow_name, "
            "HighThroughputExecutor.heartbeat_period") in text
    assert "# HighThroughputExecutor(label='htex-local') with LocalProvider" in path.read_text()

    profile = validate_file(path)
    (pool,) = profile.pools
    assert (profile.name, profile.retries) == ("mine", 2)
    assert (pool.label, pool.provider, pool.workers_per_node) == ("htex_local", "local", 2)
    assert (pool.scaling.init_blocks, pool.scaling.max_blocks) == (1, 1)

    @daskflow.python_app(executors=["htex_local"])
    def double(x):
        return 2 * x

    with daskflow.Client(profile=str(path), set_as_default=False) as c, c.as_current():
        assert [f.result() for f in [double(i) for i in range(4)]] == [0, 2, 4, 6]
        assert len(c.scheduler_info()["workers"]) == 2


def test_htex_slurm_with_launcher_walltime_worker_init_and_blocks(tmp_path):
    proc = from_parsl(tmp_path, SLURM, "-o", "slurm.yaml")  # fresh_config(), as Parsl's tests
    assert proc.returncode == 0, proc.stderr
    raw = (tmp_path / "slurm.yaml").read_text()
    assert 'walltime: "01:30:00"' in raw  # quoted: YAML 1.1 would read 1:30:00 as a number
    assert "memory: 16GiB" in raw
    assert "scheduler.host is the address of the machine this was written on" in comments(
        tmp_path / "slurm.yaml")
    profile = validate_file(tmp_path / "slurm.yaml")
    (pool,) = profile.pools
    assert (pool.provider, pool.launcher, pool.workers_per_node) == ("slurm", "srun", 4)
    block = pool.block
    assert (block.nodes, block.cores, block.memory, block.walltime) == (2, 8, 16 * 2**30,
                                                                        "01:30:00")
    assert (block.queue, block.account, block.job_extra) == ("debug", "proj", ("--qos=low",))
    assert block.worker_init == ("module load python; source env/bin/activate",)
    scaling = pool.scaling
    assert (scaling.strategy, scaling.init_blocks, scaling.min_blocks, scaling.max_blocks,
            scaling.max_idletime) == ("simple", 0, 0, 4, 30.0)


def test_to_standard_output_with_the_config_files_name(tmp_path):
    proc = from_parsl(tmp_path, THREADS)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["name"] == "config"
    assert not list(tmp_path.glob("*.yaml"))


@pytest.mark.parametrize("source, message", [
    ("x = 1\n", "config.py: ConfigurationError: config.py: expected a variable 'config' "
                "holding a parsl.config.Config, or a function fresh_config() returning one; "
                "found nothing"),
    ("config = 'htex'\n", "found str"),
    ("from parsl.config import Config\nfrom parsl.executors import HighThroughputExecutor\n"
     "config = Config(executors=[HighThroughputExecutor(launch_cmd='w')])\n",
     "HighThroughputExecutor(launch_cmd=...) cannot be translated"),
    ("from parsl.config import Config\nfrom parsl.providers import LocalProvider\n"
     "LocalProvider(max_block=2)\n", "unexpected keyword argument 'max_block'"),
])
def test_what_cannot_be_written_fails_naming_it(tmp_path, source, message):
    proc = from_parsl(tmp_path, source, "-o", "out.yaml")
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_an_existing_file_is_kept_without_force(tmp_path):
    (tmp_path / "out.yaml").write_text("mine\n")
    proc = from_parsl(tmp_path, THREADS, "-o", "out.yaml")
    assert proc.returncode == 2 and "out.yaml exists; give --force" in proc.stderr
    assert (tmp_path / "out.yaml").read_text() == "mine\n"
    assert from_parsl(tmp_path, THREADS, "-o", "out.yaml", "--force").returncode == 0
    assert validate_file(tmp_path / "out.yaml").name == "out"


def test_the_config_file_imports_its_own_modules(tmp_path):
    (tmp_path / "site_bits.py").write_text(
        "from parsl.providers import LocalProvider\n"
        "PROVIDER = LocalProvider(init_blocks=1, max_blocks=2)\n")
    proc = from_parsl(tmp_path, (
        "from parsl.config import Config\nfrom parsl.executors import HighThroughputExecutor\n"
        "from site_bits import PROVIDER\n"
        "config = Config(executors=[HighThroughputExecutor(max_workers_per_node=1, "
        "provider=PROVIDER)])\n"), "-o", "bits.yaml")
    assert proc.returncode == 0, proc.stderr
    assert validate_file(tmp_path / "bits.yaml").pools[0].scaling.max_blocks == 2
