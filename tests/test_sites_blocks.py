"""What a block asks its provider for: multi-node batch jobs with their
launcher (the job script dask-jobqueue writes), the per-node worker names,
and Kubernetes pods.

Kubernetes cannot run here (no cluster, no API server): its tests check the
Pod manifest daskflow would create and that no pod is created while the
pool has no work, nothing more."""

from __future__ import annotations

import subprocess
import sys

import pytest

from daskflow.sites import onnode
from daskflow.sites.kubernetes import PodBlock, pod_name
from daskflow.sites.launchers import node_suffixes
from daskflow.sites.profile import parse_profile
from daskflow.sites.providers import BlockContext
from daskflow.sites.start import check_pool, start_cluster

CONTEXT = BlockContext(host="127.0.0.1", tls={}, file_tls={}, security=None, token="t",
                       log_directory=None, death_timeout=30, worker_spec=dict)


def _profile(*pools: dict, **top):
    return parse_profile({"name": "t", "pools": list(pools), **top}, "test", "t")


def _pool(**fields):
    return _profile({"label": "big", **fields}).pools[0]


def _job_script(pool) -> str:
    """The script of block 0 of batch pool ``pool``, as its provider makes it."""
    ((name, spec),) = pool.provider_class.block(pool, 0, {"pool:big": 1}, {}, CONTEXT).items()
    job = spec["cls"](scheduler="tcp://127.0.0.1:8786", name=name, **spec["options"])
    return job.job_script()


def test_a_two_node_slurm_block_runs_one_worker_per_node_under_srun():
    pool = _pool(provider="slurm", launcher="srun", workers_per_node=2,
                 block={"nodes": 2, "cores": 4, "memory": "8GB"})
    script = _job_script(pool)
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=1" in script
    assert "#SBATCH -n 1\n" not in script  # the one-task default would cap the job
    assert "srun --nodes=2 --ntasks=2 --ntasks-per-node=1 " in script
    assert "-m daskflow.sites.onnode -m distributed.cli.dask_worker" in script
    assert "--nworkers 2" in script and "--name big-0" in script
    assert node_suffixes(pool) == ["-n0-0", "-n0-1", "-n1-0", "-n1-1"]


def test_a_two_node_pbs_block_selects_two_chunks_and_uses_mpiexec():
    pool = _pool(provider="pbs", launcher="mpiexec",
                 block={"nodes": 2, "cores": 32, "memory": "64GB"})
    script = _job_script(pool)
    assert "#PBS -l select=2:ncpus=32:mem=61035MB" in script
    assert "mpiexec -n 2 -ppn 1 " in script
    assert node_suffixes(pool) == ["-n0", "-n1"]


def test_single_node_blocks_keep_the_plain_worker_command():
    script = _job_script(_pool(provider="slurm"))
    assert "onnode" not in script and "srun" not in script and "#SBATCH -n 1" in script


@pytest.mark.parametrize("fields, error, match", [
    ({"provider": "lsf", "launcher": "mpiexec", "block": {"nodes": 2}}, NotImplementedError,
     "multi-node blocks are supported for providers slurm, pbs, not 'lsf'"),
    ({"provider": "slurm", "block": {"nodes": 2}}, ValueError, "launcher 'single'"),
    ({"provider": "local", "launcher": "srun"}, ValueError,
     "launcher 'srun' applies to batch-system providers only"),
])
def test_blocks_that_cannot_be_started_are_refused_naming_the_pool(fields, error, match):
    profile = _profile({"label": "big", **fields})
    with pytest.raises(error, match=match) as info:
        check_pool(profile, profile.pools[0])
    assert "pool 'big'" in str(info.value)


def test_onnode_names_each_node_from_the_launchers_rank(tmp_path):
    argv = ["-m", "distributed.cli.dask_worker", "tcp://h:1", "--name", "big-0", "--nthreads", "1"]
    assert onnode.worker_argv(argv, 3)[4] == "big-0-n3"
    for variable in ("SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "ALPS_APP_PE"):
        assert onnode.node_rank({variable: "5"}) == 5
    # run for real: it becomes the program it was given, with the node's name
    probe = tmp_path / "probe.py"
    probe.write_text("import sys; print(' '.join(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-m", "daskflow.sites.onnode", str(probe), "--name",
                          "big-0"], env={"PMI_RANK": "1", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "--name big-0-n1"
    missing = subprocess.run([sys.executable, "-m", "daskflow.sites.onnode", str(probe)],
                             env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert missing.returncode != 0 and "no rank in the environment" in missing.stderr


KUBE = {"label": "pods", "provider": "kubernetes", "image": "registry.example/sci:1.0",
        "namespace": "science", "workers_per_node": 2, "threads_per_worker": 4,
        "resources": {"GPU": 1}, "block": {"cores": 8, "memory": "16GiB"},
        "scaling": {"init_blocks": 0, "max_blocks": 3}}


def test_kubernetes_pod_manifest():
    """The Pod daskflow would create (no Kubernetes API here)."""
    pool = _profile(KUBE).pools[0]
    block = PodBlock("tls://10.0.0.5:8786", name="pods-0", pool=pool,
                     resources={"GPU": 1, "pool:pods": 2**31}, token="abc123", index=0,
                     death_timeout=30)
    pod = block.manifest
    assert pod["kind"] == "Pod" and pod["metadata"]["namespace"] == "science"
    assert pod["metadata"]["name"] == pod_name(pool, 0, "abc123") == "daskflow-abc123-pods-0"
    assert pod["metadata"]["labels"]["daskflow.pool"] == "pods"
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "registry.example/sci:1.0"
    args = container["args"]
    assert args[:3] == ["dask", "worker", "tls://10.0.0.5:8786"]
    assert args[args.index("--nworkers") + 1] == "2" and args[args.index("--nthreads") + 1] == "4"
    assert args[args.index("--resources") + 1] == "GPU=1,pool:pods=2147483648"
    assert args[args.index("--name") + 1] == "$(DASK_WORKER_NAME)"
    assert {"name": "DASK_WORKER_NAME", "value": "pods-0"} in container["env"]
    assert container["resources"]["limits"] == {"cpu": "8", "memory": str(16 * 2**30)}
    assert node_suffixes(pool) == ["-0", "-1"]  # --nworkers 2 names them pods-0-0, pods-0-1


def test_kubernetes_pods_get_tls_certificates_in_their_environment():
    from distributed.security import Security

    pool = _profile(KUBE).pools[0]
    security = Security.temporary()
    pod = PodBlock("tls://10.0.0.5:8786", name="pods-1", pool=pool, resources={}, token="t",
                   index=1, death_timeout=30, security=security).manifest
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True"
    assert env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"].startswith("-----BEGIN CERTIFICATE")
    assert "--protocol" in container["args"]


def test_a_kubernetes_pool_without_work_creates_no_pod():
    """init_blocks 0: the profile starts (scheduler only); the block a task
    would start is a PodBlock for this pool. No Kubernetes API is contacted."""
    profile = _profile(KUBE, scheduler={"dashboard": "127.0.0.1:0"})
    cluster, scaler = start_cluster(profile)
    try:
        assert cluster.worker_spec == {}
        spec = scaler.make_block(profile.pools[0], 0)
        assert list(spec) == ["pods-0"] and spec["pods-0"]["cls"] is PodBlock
        assert spec["pods-0"]["group"] == ["-0", "-1"]
    finally:
        scaler.stop()
        cluster.close()


def test_shipped_kubernetes_and_ssh_profiles_are_accepted_by_the_client():
    from daskflow.sites.profile import load_profile

    for name in ("kubernetes", "adhoc-ssh", "polaris", "perlmutter", "frontier", "theta"):
        profile = load_profile(name)
        for pool in profile.pools:
            check_pool(profile, pool)


def test_a_blocks_mpi_slots_go_to_its_first_worker_only():
    profile = _profile({"label": "cpu", "provider": "local", "workers_per_node": 3,
                        "mpi": {"slots": 6}, "scaling": {"init_blocks": 0, "max_blocks": 1}},
                       scheduler={"dashboard": "127.0.0.1:0"})
    cluster, scaler = start_cluster(profile)
    try:
        block = scaler.make_block(profile.pools[0], 0)
        # local blocks are NannyProcess specs: the Nanny's options are nested
        assert [spec["options"]["options"]["resources"].get("mpi-ranks")
                for spec in block.values()] == [6, None, None]
    finally:
        scaler.stop()
        cluster.close()
    argv = ["-m", "distributed.cli.dask_worker", "tcp://h:1", "--name", "big-0",
            "--resources", "pool:big=2147483648,mpi-nodes=2"]
    assert onnode.worker_argv(argv, 0)[-1] == "pool:big=2147483648,mpi-nodes=2"
    assert onnode.worker_argv(argv, 1)[-1] == "pool:big=2147483648"  # node 0 launches


def test_batch_mpi_pools_need_one_worker_per_node():
    profile = _profile({"label": "big", "provider": "slurm", "workers_per_node": 2,
                        "mpi": {"slots": 1}})
    with pytest.raises(ValueError, match="pool 'big' declares MPI slots with 2 workers per node"):
        check_pool(profile, profile.pools[0])
