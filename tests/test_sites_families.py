"""Providers and launchers as families: each provider member's declared
defaults reach the block it makes (the job script dask-jobqueue writes, the
Nanny, SSH worker or pod spec), each launcher row builds its commands, the
Parsl names map to members and rows, and a provider defined in a test is
usable by a profile with no other edit."""

from __future__ import annotations

import os
import sys
import textwrap

import distributed
import pytest
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

import daskflow
from daskflow import python_app
from daskflow.launchers import LAUNCHERS, launcher_for_parsl, mpi_template
from daskflow.pool_resources import labels_of, pool_of, resource_name
from daskflow.sites import onnode
from daskflow.sites.nanny_process import NannyProcess
from daskflow.sites.profile import ProfileError, parse_profile
from daskflow.sites.providers import (PROVIDERS, BlockContext, LocalProvider, Pool,
                                      provider_for_parsl)
from daskflow.sites.ssh import SSH_WORKER
from daskflow.sites.start import check_pool
from daskflow.worker.mpi import NODES, RANKS, PoolMpi

CONTEXT = BlockContext(host="127.0.0.1", tls={}, file_tls={}, security=None, token="t",
                       log_directory=None, death_timeout=30, worker_spec=dict)


def _profile(**pool):
    return parse_profile({"name": "t", "pools": [{"label": "big", **pool}]}, "test", "t")


def _block(pool, resources=None, slots=None) -> dict:
    pool.provider_class.prepare()
    return pool.provider_class.block(pool, 0, resources or {"pool:big": 1}, slots or {},
                                     CONTEXT)


def _job_script(pool) -> str:
    ((name, spec),) = _block(pool).items()
    job = spec["cls"](scheduler="tcp://127.0.0.1:8786", name=name, **spec["options"])
    return job.job_script()


# --- providers -------------------------------------------------------------------

#: batch member -> lines its job script has from the pool's defaults (walltime
#: 00:10:00, one core, 1 GiB) and from block.account (each system's own keyword)
BATCH = {
    "slurm": ["#SBATCH -t 00:10:00", "#SBATCH --cpus-per-task=1", "#SBATCH --mem=1G",
              "#SBATCH -A acct"],
    "pbs": ["#PBS -l walltime=00:10:00", "#PBS -l select=1:ncpus=1:mem=1024MB",
            "#PBS -A acct"],
    "lsf": ["#BSUB -W 00:10:00", "#BSUB -n 1", "#BSUB -M 1073742", "#BSUB -P \"acct\""],
    "sge": ["#$ -l h_rt=00:10:00", "#$ -P acct"],
    "oar": ["walltime=00:10:00", "#OAR --project acct"],
    "htcondor": ["MY.DaskWorkerDisk = 1073741824",  # its own key `disk`, default 1 GiB
                 "periodic_remove = (JobStatus == 2) && (time() - EnteredCurrentStatus > 600)",
                 "MY.DaskWorkerCores = 1", "MY.DaskWorkerMemory = 1073741824"],
}


def test_every_batch_member_is_checked_here():
    assert set(BATCH) == {name for name, p in PROVIDERS.items() if p.batch}


@pytest.mark.parametrize("name", sorted(BATCH))
def test_a_batch_members_defaults_reach_its_job_script(name):
    block = {} if name == "htcondor" else {"account": "acct"}
    pool = _profile(provider=name, block=block).pools[0]
    check_pool(_profile(provider=name, block=block), pool)
    script = _job_script(pool)
    for line in BATCH[name]:
        assert line in script, f"{name}: {line!r} not in\n{script}"
    assert "--name big-0" in script and "--resources pool:big=1" in script
    assert "--death-timeout 30" in script and "--nthreads 1" in script


def test_htcondor_refuses_what_it_has_not_and_passes_submit_commands():
    profile = _profile(provider="htcondor", block={"queue": "q"})
    with pytest.raises(ValueError, match="pool 'big': provider 'htcondor' has no queues"):
        check_pool(profile, profile.pools[0])
    profile = _profile(provider="htcondor", block={"job_extra": ["+Flavour"]})
    with pytest.raises(ValueError, match="'\\+Flavour' is not an HTCondor submit command"):
        check_pool(profile, profile.pools[0])
    pool = _profile(provider="htcondor", disk="5GB",
                    block={"job_extra": ['requirements = (OpSys == "LINUX")']}).pools[0]
    script = _job_script(pool)
    assert 'requirements = (OpSys == "LINUX")' in script
    assert "MY.DaskWorkerDisk = 5000000000" in script
    with pytest.raises(ProfileError, match="disk: applies only to provider 'htcondor'"):
        _profile(provider="slurm", disk="5GB")


def test_the_local_members_defaults_reach_its_block():
    pool = _profile(provider="local").pools[0]
    block = _block(pool, slots={RANKS: 4})
    assert list(block) == ["big-0-0"]  # workers_per_node 1, one node
    (spec,) = block.values()
    assert spec["cls"] is NannyProcess
    options = spec["options"]["options"]
    assert options["nthreads"] == 1 and options["host"] == "127.0.0.1"
    assert options["resources"] == {"pool:big": 1, RANKS: 4}
    assert PoolMpi.of(pool) == PoolMpi("big", RANKS, os.cpu_count() or 1,
                                       LAUNCHERS["mpiexec"].mpi)


def test_the_ssh_members_defaults_reach_its_block():
    pool = _profile(provider="ssh", hosts=["h1", "h2"], workers_per_node=2).pools[0]
    first = _block(pool)
    assert list(first) == ["big-0-0", "big-0-1"]
    spec = first["big-0-0"]
    assert spec["cls"] == SSH_WORKER and spec["options"]["address"] == "h1"
    assert spec["options"]["connect_options"] == {"port": 22}  # no username: the current user
    assert spec["options"]["remote_python"] == sys.executable
    # the next block goes to the host with the fewest blocks
    busy = BlockContext(**{**CONTEXT.__dict__, "worker_spec": lambda: first})
    second = pool.provider_class.block(pool, 1, {}, {}, busy)
    assert second["big-1-0"]["options"]["address"] == "h2"
    assert PoolMpi.of(pool).unit == RANKS and PoolMpi.of(pool).slots == 0


def test_the_kubernetes_members_defaults_reach_its_pod():
    pool = _profile(provider="kubernetes").pools[0]
    ((name, spec),) = _block(pool, slots={NODES: 1}).items()
    pod = spec["cls"]("tcp://10.0.0.5:8786", name=name, **spec["options"]).manifest
    assert pod["metadata"]["namespace"] == "default"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "ghcr.io/dask/dask:latest"
    assert container["args"][container["args"].index("--resources") + 1] == \
        "pool:big=1,mpi-nodes=1"
    assert PoolMpi.of(pool).unit == NODES and "group" not in spec


@pytest.mark.parametrize("pool, unit, launcher", [
    ({"provider": "slurm"}, NODES, "srun"),
    ({"provider": "slurm", "launcher": "mpiexec"}, NODES, "srun"),
    ({"provider": "pbs"}, NODES, "mpiexec"),
    ({"provider": "pbs", "launcher": "aprun"}, NODES, "aprun"),
    ({"provider": "pbs", "launcher": "mpirun"}, NODES, "mpirun"),
    ({"provider": "lsf", "mpi": {"launcher": "aprun"}}, NODES, "aprun"),
    ({"provider": "local"}, RANKS, "mpiexec"),
])
def test_each_provider_says_its_mpi_unit_and_default_launcher(pool, unit, launcher):
    mpi = PoolMpi.of(_profile(**pool).pools[0])
    assert (mpi.unit, mpi.launcher) == (unit, LAUNCHERS[launcher].mpi)


PARSL_PROVIDERS = {
    "LocalProvider": "local", "SlurmProvider": "slurm", "PBSProProvider": "pbs",
    "TorqueProvider": "pbs", "LSFProvider": "lsf", "GridEngineProvider": "sge",
    "CondorProvider": "htcondor", "KubernetesProvider": "kubernetes", "AdHocProvider": "ssh",
}


def test_parsl_providers_map_to_members_by_name():
    for parsl, name in PARSL_PROVIDERS.items():
        assert provider_for_parsl(parsl) is PROVIDERS[name]
    assert provider_for_parsl("parsl.providers.SlurmProvider").name == "slurm"
    assert sorted(p for m in PROVIDERS.values() for p in m.parsl) == sorted(PARSL_PROVIDERS)
    with pytest.raises(ValueError, match="Parsl provider 'AWSProvider' has no daskflow "
                                         "counterpart; expected one of: AdHocProvider, "):
        provider_for_parsl("AWSProvider")


# --- launchers -------------------------------------------------------------------

#: row -> (prefix of a 3-node block, prefix of 8 ranks on 2 nodes, 4 per node)
COMMANDS = {
    "single": ("", None),
    "srun": ("srun --nodes=3 --ntasks=3 --ntasks-per-node=1",
             "srun --nodes=2 --ntasks=8 --ntasks-per-node=4"),
    "mpiexec": ("mpiexec -n 3 -ppn 1", "mpiexec -n 8 -ppn 4"),
    "aprun": ("aprun -n 3 -N 1", "aprun -n 8 -N 4"),
    "mpirun": ("mpirun -np 3 --map-by ppr:1:node", "mpirun -np 8 --map-by ppr:4:node"),
}


def test_every_launcher_row_is_checked_here():
    assert set(COMMANDS) == set(LAUNCHERS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_launcher_row_builds_its_commands(name):
    row = LAUNCHERS[name]
    block, mpi = COMMANDS[name]
    assert row.block_prefix(3) == block
    if mpi is None:
        with pytest.raises(ValueError, match=f"launcher '{name}' does not launch MPI ranks"):
            row.mpi_prefix(8, 2, 4)
        assert mpi_template(name) == name  # not an MPI launcher: the profile check refuses it
        return
    assert row.mpi_prefix(ranks=8, nodes=2, ranks_per_node=4) == mpi
    assert mpi_template(name) == row.mpi
    # the row is a profile's choice: a two-node Slurm block starts a worker per node with it,
    # and each copy names its worker from the rank the launcher gives it
    pool = _profile(provider="slurm", launcher=name, block={"nodes": 2}).pools[0]
    script = _job_script(pool)
    assert f"{row.block_prefix(2)} {sys.executable} -m daskflow.sites.onnode" in script
    assert row.ranks and all(onnode.node_rank({v: "1"}) == 1 for v in row.ranks)


def test_parsl_launchers_map_to_rows_or_are_refused_saying_why():
    for parsl, name in {"SingleNodeLauncher": "single", "SimpleLauncher": "single",
                        "SrunLauncher": "srun", "SrunMPILauncher": "srun",
                        "MpiExecLauncher": "mpiexec", "AprunLauncher": "aprun",
                        "MpiRunLauncher": "mpirun",
                        "parsl.launchers.SrunLauncher": "srun"}.items():
        assert launcher_for_parsl(parsl) is LAUNCHERS[name]
    with pytest.raises(ValueError, match="Parsl launcher 'GnuParallelLauncher' is not "
                                         "supported: daskflow starts one worker command"):
        launcher_for_parsl("GnuParallelLauncher")
    with pytest.raises(ValueError, match="'WrappedLauncher' is not supported: .* container"):
        launcher_for_parsl("WrappedLauncher")
    with pytest.raises(ValueError, match="unknown Parsl launcher 'Nope'"):
        launcher_for_parsl("Nope")


def test_profiles_choose_launchers_from_the_table():
    with pytest.raises(ProfileError) as info:
        _profile(provider="slurm", launcher="jsrun", mpi={"launcher": "single"})
    assert info.value.problems == [
        "pools[0].launcher: unknown launcher 'jsrun'; expected one of: "
        "single, srun, mpiexec, aprun, mpirun; did you mean 'srun'?",
        "pools[0].mpi.launcher: expected one of: srun, mpiexec, aprun, mpirun, or a command "
        "template using {ranks} (and {nodes}, {ranks_per_node}), got 'single'"]


# --- pool resources ----------------------------------------------------------------

def test_pool_resource_names_parse_back():
    assert labels_of(resource_name(["gpu", "cpu"])) == ("cpu", "gpu")
    assert pool_of(resource_name(["cpu"])) == "cpu"
    assert pool_of(resource_name(["cpu", "gpu"])) is None
    assert labels_of("GPU") is pool_of("mpi-ranks") is labels_of(3) is None


# --- a provider added by one class -----------------------------------------------

@pytest.fixture
def tiny():
    """A provider defined here and nowhere else: local workers that carry a
    resource named by the pool's own key ``flavour``."""

    @dataclass(frozen=True, config=ConfigDict(extra="forbid"), kw_only=True)
    class TinyPool(Pool):
        flavour: str = "vanilla"

    class TinyProvider(LocalProvider):
        name = "tiny"
        parsl = ("TinyProvider",)
        options = TinyPool

        @classmethod
        def block(cls, pool, index, resources, slots, context):
            flavoured = {**resources, pool.options["flavour"]: 1}
            return super().block(pool, index, flavoured, slots, context)

    try:
        yield TinyProvider
    finally:
        del PROVIDERS["tiny"]


def test_a_new_provider_is_one_class(tiny, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent("""\
        scheduler: {dashboard: 127.0.0.1:0}
        pools:
          - label: small
            provider: tiny
            scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
        """))
    assert provider_for_parsl("TinyProvider") is tiny
    with pytest.raises(ProfileError, match="flavour: applies only to provider 'tiny', not "
                                           "'local'"):
        _profile(provider="local", flavour="x")
    where = python_app(executors=["small"])(lambda: distributed.get_worker().name)
    with daskflow.Client(profile=str(path), set_as_default=False) as client, client.as_current():
        assert client.profile.pools[0].options == {"flavour": "vanilla"}
        (worker,) = client.scheduler_info()["workers"].values()
        assert worker["name"] == "small-0-0" and worker["resources"]["vanilla"] == 1
        assert where().result(timeout=60) == "small-0-0"


def test_a_removed_provider_is_unknown_again(tiny):
    del PROVIDERS["tiny"]
    try:
        with pytest.raises(ProfileError, match="unknown provider 'tiny'; expected one of: "
                                               "local, slurm, .*, ssh$"):
            _profile(provider="tiny")
    finally:
        PROVIDERS["tiny"] = tiny
