"""Bash apps in containers: the command that would be run; the whole path
through a worker with a stand-in ``apptainer`` (which records how it was
called); and real containers run by podman (installed, with a local image
built from files on the machine, by ``scripts/setup-podman.sh``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import time

import pytest

import daskflow
from daskflow import File, bash_app
from daskflow.errors import AppTimeout, BashExitFailure
from daskflow.shipped import Container
from daskflow.worker.containers import as_container, in_container


def test_apptainer_command():
    c = Container("apptainer", "/images/sci.sif", ("--nv",))
    command, cleanup = in_container("echo 'a b' > out", c, ["/data/in"])
    assert command == ('apptainer exec --bind "$PWD" --bind /data/in --pwd "$PWD" --nv '
                       "/images/sci.sif bash -c " + shlex.quote("echo 'a b' > out"))
    assert cleanup is None  # the process group holds the container


def test_podman_command_passes_the_apps_variables_directories_and_options():
    c = Container("podman", "registry.example/sci:2", ("--ulimit", "nofile=64:64"),
                  ("--runtime", "runc"))
    command, cleanup = in_container("make", c, ["/data/in", "/data/in/"])
    name = command.split("--name ")[1].split()[0]
    assert command.startswith(f"podman --runtime runc run --rm --name {name} --network=host "
                              '-v "$PWD:$PWD" -v /data/in:/data/in -w "$PWD" ')
    assert "-e DASKFLOW_APP -e DASKFLOW_TID" in command
    assert command.endswith("--ulimit nofile=64:64 registry.example/sci:2 bash -c make")
    assert cleanup == ["podman", "--runtime", "runc", "rm", "-f", "-t", "0", name]
    assert in_container("make", c)[1][-1] != name  # a name per call


def test_bad_container_options_are_clear_errors():
    with pytest.raises(ValueError, match="container runtime must be one of"):
        as_container("a", {"runtime": "lxc", "image": "x"})
    with pytest.raises(TypeError, match="container must be a dict"):
        as_container("a", {"runtime": "podman", "image": "x", "volume": "/data"})
    with pytest.raises(TypeError, match="runtime_options lists of strings"):
        as_container("a", {"runtime": "podman", "image": "x", "runtime_options": "--x"})
    with pytest.raises(ValueError, match="applies to bash apps only"):
        daskflow.python_app(container={"runtime": "podman", "image": "x"})(lambda: 1)


@pytest.fixture
def stand_in_runtime(tmp_path, monkeypatch):
    """``apptainer`` on PATH for workers started from now on."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "runtime.log"
    script = bin_dir / "apptainer"
    script.write_text(
        "#!/bin/bash\n"
        f'printf "%s\\n" "$@" > {shlex.quote(str(log))}\n'
        '[ "$1" = exec ] || exit 64\n'
        'while [ "$1" != bash ]; do shift; done\n'
        'exec "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_a_bash_app_runs_through_the_container_runtime(stand_in_runtime, tmp_path):
    @bash_app(container={"runtime": "apptainer", "image": "/images/sci.sif"})
    def inside(stdout=None):
        return "echo inside $DASKFLOW_APP"

    out = tmp_path / "inside.out"
    with daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0",
                         set_as_default=False) as c, c.as_current():
        assert inside(stdout=str(out)).result(timeout=60) == 0
    assert out.read_text() == "inside inside\n"
    words = stand_in_runtime.read_text().splitlines()
    assert words[:2] == ["exec", "--bind"] and "/images/sci.sif" in words
    assert words[-3:] == ["bash", "-c", "echo inside $DASKFLOW_APP"]


def test_a_pools_container_wraps_the_bash_apps_that_run_there(stand_in_runtime, tmp_path):
    @bash_app
    def plain(stdout=None):
        return "echo on the pool"

    profile = tmp_path / "boxed.yaml"
    profile.write_text("name: boxed\nscheduler: {dashboard: 127.0.0.1:0}\npools:\n"
                       "  - label: boxed\n    provider: local\n    workers_per_node: 1\n"
                       "    container: {runtime: apptainer, image: /images/pool.sif}\n"
                       "    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}\n")
    out = tmp_path / "plain.out"
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        assert plain(stdout=str(out)).result(timeout=60) == 0
    assert out.read_text() == "on the pool\n"
    assert "/images/pool.sif" in stand_in_runtime.read_text().splitlines()


# --------------------------------------------------------------- real podman
IMAGE = "localhost/daskflow-test:1"
GLOBAL = ["--runtime", "runc", "--cgroup-manager=cgroupfs"]  # see scripts/setup-podman.sh
PODMAN = {"runtime": "podman", "image": IMAGE, "runtime_options": GLOBAL,
          "options": ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]}


def _ours() -> set[str]:
    """The names of daskflow's containers podman knows of, running or not."""
    listed = subprocess.run(["podman", *GLOBAL, "ps", "-a", "--format", "{{.Names}}"],
                            capture_output=True, text=True, timeout=60)
    return {n for n in listed.stdout.split() if n.startswith("daskflow-")}


@pytest.fixture(scope="module")
def podman_client():
    if shutil.which("podman") is None:
        pytest.skip("podman is missing (scripts/setup-podman.sh installs it, as root)")
    if subprocess.run(["podman", *GLOBAL, "image", "exists", IMAGE]).returncode != 0:
        pytest.skip(f"no image {IMAGE} (scripts/setup-podman.sh builds it)")
    with daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0",
                         set_as_default=False) as c, c.as_current():
        yield c


@bash_app(container=PODMAN)
def boxed(command, stdout=None, stderr=None, inputs=(), outputs=()):
    return command


@pytest.mark.slow
def test_a_command_runs_inside_a_real_container(podman_client, tmp_path):
    out = tmp_path / "inside.out"
    assert boxed("cat /etc/daskflow-test-image; echo pid $$ $DASKFLOW_APP",
                 stdout=str(out)).result(timeout=120) == 0
    assert out.read_text() == "daskflow-test:1\npid 1 boxed\n"  # the image's file, its PID 1
    assert not os.path.exists("/etc/daskflow-test-image")  # only the image has it


@pytest.mark.slow
def test_streams_and_exit_codes_are_the_containers(podman_client, tmp_path):
    out, err = tmp_path / "fail.out", tmp_path / "fail.err"
    future = boxed("echo said; echo oops >&2; exit 3", stdout=str(out), stderr=str(err))
    with pytest.raises(BashExitFailure) as failed:
        future.result(timeout=120)
    assert failed.value.exitcode == 3
    assert out.read_text() == "said\n" and err.read_text() == "oops\n"


@pytest.mark.slow
def test_files_elsewhere_are_seen_at_their_paths(podman_client, tmp_path):
    source = tmp_path / "data" / "in.txt"
    source.parent.mkdir()
    source.write_text("three words here\n")
    target = tmp_path / "results" / "count.txt"
    target.parent.mkdir()
    future = boxed(f"wc -w < {source} > {target}", inputs=[File(str(source))],
                   outputs=[File(str(target))])
    assert future.result(timeout=120) == 0
    future.outputs[0].result(timeout=60)
    assert target.read_text().strip() == "3"


@pytest.mark.slow
def test_a_walltime_stops_the_container_too(podman_client, tmp_path):
    before = _ours()
    start = time.monotonic()
    with pytest.raises(AppTimeout):
        boxed("sleep 60", walltime=3).result(timeout=120)
    assert time.monotonic() - start < 40
    assert _ours() <= before  # killed and removed, not left running behind its client


@pytest.mark.slow
def test_a_pools_real_container_with_its_runtime_options(tmp_path):
    if shutil.which("podman") is None:
        pytest.skip("podman is missing (scripts/setup-podman.sh installs it, as root)")

    @bash_app
    def plain(stdout=None):
        return "cat /etc/daskflow-test-image"

    profile = tmp_path / "boxed.yaml"
    profile.write_text(
        "name: boxed\nscheduler: {dashboard: 127.0.0.1:0}\npools:\n"
        "  - label: boxed\n    provider: local\n    workers_per_node: 1\n"
        f"    container: {{runtime: podman, image: '{IMAGE}',\n"
        f"                 runtime_options: {GLOBAL},\n"
        f"                 options: {PODMAN['options']}}}\n"
        "    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}\n")
    out = tmp_path / "plain.out"
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        assert plain(stdout=str(out)).result(timeout=120) == 0
    assert out.read_text() == "daskflow-test:1\n"
