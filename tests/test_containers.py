"""Bash apps in containers: the command that would be run, and the whole
path through a worker with a stand-in runtime.

No container runtime can start containers on the test machine (a gVisor
sandbox: podman installs, but its OCI runtime cannot set up cgroups, and no
image registry is reachable), so the end-to-end test puts a stand-in
``apptainer`` first on the workers' PATH: a script that records its
arguments and runs the command it was given, as ``apptainer exec`` would.
"""

from __future__ import annotations

import os
import shlex
import stat

import pytest

import daskflow
from daskflow import bash_app
from daskflow.shipped import Container
from daskflow.worker.containers import as_container, in_container


def test_apptainer_command():
    c = Container("apptainer", "/images/sci.sif", ("--nv",))
    assert in_container("echo 'a b' > out", c) == (
        'apptainer exec --bind "$PWD" --pwd "$PWD" --nv /images/sci.sif bash -c '
        + shlex.quote("echo 'a b' > out"))


def test_podman_command_passes_the_apps_variables_and_directory():
    command = in_container("make", Container("podman", "registry.example/sci:2", ()))
    assert command.startswith('podman run --rm --network=host -v "$PWD:$PWD" -w "$PWD" ')
    assert "-e DASKFLOW_APP -e DASKFLOW_TID" in command
    assert command.endswith("registry.example/sci:2 bash -c make")


def test_bad_container_options_are_clear_errors():
    with pytest.raises(ValueError, match="container runtime must be one of"):
        as_container("a", {"runtime": "lxc", "image": "x"})
    with pytest.raises(TypeError, match="container must be a dict"):
        as_container("a", {"runtime": "podman", "image": "x", "volume": "/data"})
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
