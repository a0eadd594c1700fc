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
    settings = {"daskflow.run-dir": str(base), "daskflow.checkpoint.dir": str(base / "ckpt"),
                "daskflow.signing.key-file": str(base / "signing.key")}  # not the user's own
    env = {"DASK_DASKFLOW__RUN_DIR": str(base),
           "DASK_DASKFLOW__CHECKPOINT__DIR": str(base / "ckpt"),
           "DASK_DASKFLOW__SIGNING__KEY_FILE": str(base / "signing.key")}
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
def logs(caplog):
    """caplog for the "daskflow" loggers (which do not propagate to the root),
    from WARNING up."""
    import logging

    log = logging.getLogger("daskflow")
    log.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.WARNING)
    try:
        yield caplog
    finally:
        log.removeHandler(caplog.handler)


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


class OtherUser:
    """A second local Unix user (made by scripts/add-test-user.sh): what
    another user of a shared login node could do. It runs plain commands (the
    test interpreter may live where only root can read it)."""

    def __init__(self, name: str):
        import pwd

        entry = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, entry.pw_uid, entry.pw_gid, entry.pw_dir

    def run(self, *command: str, input: bytes | None = None, timeout: float = 60, cwd=None):
        """Run ``command`` as this user (its own HOME, no supplementary
        groups); returns the CompletedProcess (bytes)."""
        import subprocess

        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": self.home, "USER": self.name,
               "LOGNAME": self.name}
        return subprocess.run(list(command), input=input, capture_output=True, timeout=timeout,
                              cwd=cwd or self.home, env=env, user=self.uid, group=self.gid,
                              extra_groups=[])

    def write(self, path: str, data: bytes) -> None:
        """Create or replace the file ``path`` as this user."""
        result = self.run("sh", "-c", 'cat > "$1"', "sh", str(path), input=data)
        if result.returncode:
            raise PermissionError(f"{self.name} cannot write {path}: {result.stderr.decode()}")

    def mkdir(self, path: str, mode: str = "700") -> None:
        """Create the directory ``path`` as this user."""
        result = self.run("mkdir", "-m", mode, "-p", str(path))
        if result.returncode:
            raise PermissionError(f"{self.name} cannot create {path}: {result.stderr.decode()}")


@pytest.fixture(scope="session")
def other_user():
    """The second Unix user; skips (saying why) where it cannot be used."""
    import pwd

    name = os.environ.get("DASKFLOW_TEST_OTHER_USER", "daskflow-other")
    if os.geteuid() != 0:
        pytest.skip("needs root to act as a second Unix user (run ./scripts/test as root)")
    try:
        pwd.getpwnam(name)
    except KeyError:
        pytest.skip(f"no Unix user {name!r}: run ./scripts/add-test-user.sh as root")
    return OtherUser(name)


@pytest.fixture
def shared_dir():
    """A fresh directory like /tmp (mode 1777, outside pytest's private
    tmp_path) where the test and the second user can both create files."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="daskflow-shared-", dir="/tmp")
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)
