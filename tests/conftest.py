"""Shared fixtures: one real local Dask cluster (2 single-threaded worker
processes) for the whole session, set as Dask's default client."""

from __future__ import annotations

import os
import sys

import pytest

import daskflow

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session", autouse=True)
def run_records(tmp_path_factory):
    """Runs and cached results of the test session go to a temporary directory
    (also for the scripts the tests start: they inherit the environment)."""
    import dask

    base = tmp_path_factory.mktemp("runinfo")
    settings = {"daskflow.run-dir": str(base), "daskflow.checkpoint.dir": str(base / "ckpt")}
    env = {"DASK_DASKFLOW__RUN_DIR": str(base),
           "DASK_DASKFLOW__CHECKPOINT__DIR": str(base / "ckpt")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    with dask.config.set(settings):
        yield base
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def client(run_records):
    with daskflow.Client(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                         set_as_default=True) as c:
        yield c


@pytest.fixture
def run_script(tmp_path):
    """Run a Python script in a fresh interpreter; returns the CompletedProcess."""
    import subprocess

    def run(source: str, *args: str, timeout: float = 120, cwd=None):
        script = tmp_path / "script.py"
        script.write_text(source)
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
        return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                              text=True, timeout=timeout, cwd=cwd or tmp_path, env=env)

    return run
