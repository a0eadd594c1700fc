"""Client(profile=...) with local pools: one scheduler, workers tagged by
pool, apps pinned with executors=, the profile's run-wide retries."""

from __future__ import annotations

import os

import distributed
import pytest
from waiting import until

import daskflow
from daskflow import python_app
from daskflow.errors import UnknownExecutor
from daskflow.sites.profile import ProfileError

TWO_POOLS = """
name: two-pools
retries: 2
scheduler:
  dashboard: 127.0.0.1:0
pools:
  - label: cpu
    provider: local
    workers_per_node: 1
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
  - label: gpu
    provider: local
    workers_per_node: 1
    resources: {GPU: 1}
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
"""


def where(*_):
    return distributed.get_worker().name


on_cpu = python_app(executors=["cpu"])(where)
on_gpu = python_app(executors=["gpu"])(where)
on_either = python_app(executors=["cpu", "gpu"])(where)
anywhere = python_app(where)


@pytest.fixture(scope="module")
def two_pools(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "two-pools.yaml"
    path.write_text(TWO_POOLS)
    with daskflow.Client(profile=str(path), set_as_default=False) as c, c.as_current():
        yield c


def test_one_scheduler_and_workers_tagged_by_pool(two_pools):
    assert two_pools.pools == ["cpu", "gpu"]
    assert two_pools.profile.name == "two-pools"
    workers = two_pools.scheduler_info()["workers"].values()
    names = sorted(w["name"] for w in workers)
    assert names == ["cpu-0-0", "gpu-0-0"]
    gpu = next(w for w in workers if w["name"] == "gpu-0-0")
    assert gpu["resources"]["GPU"] == 1
    assert two_pools.scheduler.address.startswith("tcp://127.0.0.1:")


def test_apps_run_only_on_their_pools(two_pools):
    assert set(two_pools.gather([on_cpu() for _ in range(6)])) == {"cpu-0-0"}
    assert set(two_pools.gather([on_gpu() for _ in range(6)])) == {"gpu-0-0"}
    assert set(two_pools.gather(on_gpu.map(range(20), chunksize=5))) == {"gpu-0-0"}
    both = set(two_pools.gather([on_either() for _ in range(20)] + [anywhere()]))
    assert both <= {"cpu-0-0", "gpu-0-0"}


def test_unknown_label_fails_at_call_time(two_pools):
    on_tpu = python_app(executors=["tpu"])(where)
    with pytest.raises(UnknownExecutor, match=r"\['tpu'\].*\['cpu', 'gpu'\]"):
        on_tpu()


def test_profile_retries_are_the_run_wide_default(two_pools, tmp_path):
    @python_app
    def fails_twice(path):
        with open(path, "a") as f:
            f.write("x")
        n = len(open(path).read())
        if n < 3:
            raise RuntimeError(f"try {n}")
        return n

    assert fails_twice(str(tmp_path / "n")).result() == 3


def test_local_profile_is_the_local_default():
    with daskflow.Client(profile="local", set_as_default=False) as c:
        assert c.pools == ["local"]
        assert len(c.scheduler_info()["workers"]) == os.cpu_count()


def test_bad_profile_names_are_clear_errors():
    with pytest.raises(ProfileError, match="did you mean 'local'"):
        daskflow.Client(profile="locale")


def test_daskflow_run_with_a_profile(tmp_path, run_script):
    import subprocess
    import sys

    script = tmp_path / "wf.py"
    script.write_text(
        "import distributed\n"
        "from daskflow import python_app\n"
        "@python_app(executors=['gpu'])\n"
        "def where():\n"
        "    return distributed.get_worker().name\n"
        "if __name__ == '__main__':\n"
        "    print('RAN ON', where().result())\n")
    profile = tmp_path / "two-pools.yaml"
    profile.write_text(TWO_POOLS)
    proc = subprocess.run([sys.executable, "-m", "daskflow.cli", "run", "--profile",
                           str(profile), str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "RAN ON gpu-0-0" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "daskflow.cli", "run", "--profile", "nope",
                          str(script)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown profile" in bad.stderr.lower()


ELASTIC = """
name: elastic
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: fixed
    provider: local
    workers_per_node: 1
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
  - label: burst
    provider: local
    workers_per_node: 1
    scaling: {strategy: simple, init_blocks: 0, min_blocks: 0, max_blocks: 2, max_idletime: 2s}
"""


def test_elastic_pool_grows_with_its_work_and_shrinks_when_idle(tmp_path):
    path = tmp_path / "elastic.yaml"
    path.write_text(ELASTIC)

    @python_app(executors=["burst"])
    def slow(x):
        import time
        time.sleep(1.5)
        return distributed.get_worker().name

    def burst_workers(c):
        return sorted(w["name"] for w in c.scheduler_info()["workers"].values()
                      if w["name"].startswith("burst"))

    with daskflow.Client(profile=str(path), set_as_default=False) as c, c.as_current():
        assert burst_workers(c) == []  # no work, no block
        futures = [slow(i) for i in range(6)]
        until(lambda: len(burst_workers(c)) >= 2, "the elastic pool did not grow to max_blocks")
        assert len(burst_workers(c)) == 2  # never above max_blocks
        assert set(c.gather(futures)) <= {"burst-0-0", "burst-1-0"}
        until(lambda: not burst_workers(c), "idle blocks were not removed")
        names = [w["name"] for w in c.scheduler_info()["workers"].values()]
        assert names == ["fixed-0-0"]  # the other pool was left alone


TLS = """
name: secure
scheduler: {dashboard: 127.0.0.1:0, security: tls}
pools:
  - label: local
    provider: local
    workers_per_node: 1
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
"""


def test_tls_profile_encrypts_every_connection(tmp_path):
    path = tmp_path / "secure.yaml"
    path.write_text(TLS)
    with daskflow.Client(profile=str(path), set_as_default=False) as c, c.as_current():
        assert c.scheduler.address.startswith("tls://127.0.0.1:")
        workers = c.scheduler_info()["workers"]
        assert workers and all(a.startswith("tls://") for a in workers)
        assert anywhere().result(timeout=60) == "local-0-0"
        # a client without the run's certificates is refused (distributed
        # will not open a tls:// connection without an SSL context)
        with pytest.raises(TypeError, match="TLS expects a `ssl_context` argument"):
            distributed.Client(c.scheduler.address, timeout=3, set_as_default=False)
