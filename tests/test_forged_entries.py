"""Pickles planted by someone else are never unpickled: a kept result or a
checkpoint entry replaced by a second Unix user (or in an S3 store), signed
with another key or in the unsigned format of earlier versions, is ignored
with a warning and the call runs again. And kept results are private."""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import stat
import struct
import time
import uuid

import click
from click.testing import CliRunner
import cloudpickle
import dask
import distributed
import pytest
from waiting import until

import daskflow
from daskflow import python_app, signing
from daskflow.cli.cache import cache
from daskflow.memo.checkpoints import MAGIC, CheckpointStore
from daskflow.worker import recovery

pytest_plugins = ("staging_servers",)  # its fixtures: s3_bucket


class Marker:
    """A harmless payload: unpickling it creates the file ``path``."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def _runs(path) -> int:
    return len(open(path).read()) if os.path.exists(path) else 0


def _mark(path) -> None:
    with open(path, "a") as f:
        f.write("x")


def checkpoint_forgery(kind: str, app: str, key: str, marker: str, tmp_path) -> bytes:
    """An entry for *app*/*key* whose value, if unpickled, creates *marker*:
    valid in form but signed with a random key, or of the unsigned version 1."""
    if kind == "signed-with-another-key":
        forger = CheckpointStore(str(tmp_path / f"forger-{uuid.uuid4().hex}"), key=os.urandom(32))
        forger.put(app, key, Marker(marker))
        return forger.fs.cat_file(forger._path(app, key))
    payload = cloudpickle.dumps({"value": Marker(marker), "app": app, "key": key,
                                 "created": time.time(), "meta": None})
    prefix = struct.pack(">8sHdQ", MAGIC, 1, time.time(), len(payload))
    return prefix + hashlib.sha256(prefix + payload).digest() + payload


# -- kept results ----------------------------------------------------------------------


@pytest.mark.parametrize("forgery", ["signed-with-another-key", "plain-pickle"])
def test_kept_result_replaced_by_another_user_is_not_unpickled(tmp_path, shared_dir, other_user,
                                                               capfd, forgery):
    """A worker dies after the call finished; Dask recomputes it, and the
    kept result someone else put in its place is ignored: the call runs again."""
    log = tmp_path / "ran"
    marker = os.path.join(shared_dir, "unpickled")

    @daskflow.bash_app
    def side_effect():
        return f"echo ran >> {log}"

    @python_app
    def passthrough(x):
        return x

    with dask.config.set({"daskflow.run-dir": os.path.join(shared_dir, "runinfo")}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                      dashboard_address=":0") as cluster, \
                daskflow.Client(cluster) as c, c.as_current():
            f = side_effect()
            assert f.result() == 0
            results = c._daskflow_session.run.results.directory
            path = recovery._path(results, f.key)
            until(lambda: os.path.exists(path), "the result was never kept", timeout=30,
                  interval=0.01)  # written by the worker's writer thread, just after
            assert stat.S_IMODE(os.stat(results).st_mode) == 0o700
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            # Say the directory were open to others (a file system that ignores
            # modes, a careless chmod): only the signature keeps the pickle out.
            for d in (os.path.dirname(os.path.dirname(results)), os.path.dirname(results)):
                os.chmod(d, 0o755)
            os.chmod(results, 0o777)
            payload = cloudpickle.dumps(Marker(marker))
            if forgery == "signed-with-another-key":
                forged = (recovery.MAGIC + signing.sign(os.urandom(32), f.key.encode(), payload)
                          + payload)
            else:  # what kept results were before they were signed
                forged = payload
            assert other_user.run("rm", "-f", path).returncode == 0
            other_user.write(path, forged)
            assert os.stat(path).st_uid == other_user.uid

            (holder,) = c.who_has([f])[f.key]
            pid = c.run(os.getpid, workers=[holder])[holder]
            os.kill(pid, signal.SIGKILL)
            until(lambda: holder not in c.scheduler_info()["workers"],
                  "the killed worker never left", timeout=30, interval=0.1)
            assert passthrough(f).result(timeout=60) == 0  # needs f again: recomputed
            assert os.stat(path).st_uid == os.geteuid()  # overwritten by a signed entry
            assert recovery.recall(c._daskflow_session.run.results, f.key) == (True, 0)
    assert not os.path.exists(marker)  # never unpickled
    assert log.read_text() == "ran\nran\n"  # the call ran again
    err = capfd.readouterr().err
    why = "its signature does not verify" if forgery == "signed-with-another-key" \
        else "not a signed kept result"
    assert f"ignoring kept result {path} of call {f.key}: {why}" in err


SCRIPT = """
import os
os.umask(0)
import dask
dask.config.set({{"daskflow.run-dir": {runs!r}, "daskflow.local.n-workers": 1,
                  "daskflow.local.dashboard-address": ":0"}})
from daskflow import python_app

@python_app
def double(x):
    return 2 * x

print(sum(f.result() for f in [double(i) for i in range(3)]))
"""


def test_kept_results_are_private_whatever_the_umask(run_script, tmp_path):
    runs = tmp_path / "runinfo"
    proc = run_script(SCRIPT.format(runs=str(runs)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "6"
    results = runs / "000" / "results"
    assert stat.S_IMODE(os.stat(results).st_mode) == 0o700
    entries = list(results.iterdir())
    assert len(entries) == 3
    assert {stat.S_IMODE(os.stat(e).st_mode) for e in entries} == {0o600}


# -- checkpoint entries ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("forgery", ["signed-with-another-key", "old-format"])
def test_checkpoint_entry_replaced_by_another_user_is_not_unpickled(tmp_path, shared_dir,
                                                                    other_user, capfd, forgery):
    store_dir = os.path.join(shared_dir, "ckpt")
    runs, marker = str(tmp_path / "runs"), os.path.join(shared_dir, "unpickled")

    @python_app(cache=True, ignore_for_cache=["log"])
    def cube(x, log):
        _mark(log)
        return x ** 3

    with dask.config.set({"daskflow.checkpoint.dir": store_dir}):
        with daskflow.Client(n_workers=1, dashboard_address=":0") as c, c.as_current():
            assert cube(3, runs).result() == 27
        (entry,) = CheckpointStore(store_dir).entries("cube")
        os.chmod(os.path.dirname(entry.url), 0o777)  # a store others can write
        assert other_user.run("rm", "-f", entry.url).returncode == 0
        other_user.write(entry.url, checkpoint_forgery(forgery, "cube", entry.key, marker,
                                                       tmp_path))
        assert os.stat(entry.url).st_uid == other_user.uid
        with daskflow.Client(n_workers=1, dashboard_address=":0") as c, c.as_current():
            assert cube(3, runs).result() == 27
    assert not os.path.exists(marker)  # never unpickled
    assert _runs(runs) == 2  # the call ran again
    err = capfd.readouterr().err
    why = "its signature does not verify" if forgery == "signed-with-another-key" \
        else "unsigned entry of an older daskflow (format version 1)"
    assert f"checkpoint entry {entry.url} is ignored ({why}" in err
    store = CheckpointStore(store_dir)
    assert store.problem("cube", entry.key) is None  # rewritten, signed with our key
    assert os.stat(entry.url).st_uid == os.geteuid()


@pytest.mark.parametrize("forgery", ["signed-with-another-key", "old-format"])
def test_forged_entry_in_an_s3_store_is_not_unpickled(s3_bucket, tmp_path, logs, forgery):
    from staging_servers import S3_OPTIONS

    fs, bucket = s3_bucket
    store = CheckpointStore(f"s3://{bucket}/ckpt", storage_options=S3_OPTIONS,
                            key=signing.checkpoint_key())
    marker = tmp_path / "unpickled"
    store.put("fib", "k1", 55)
    assert store.get("fib", "k1") == (True, 55)
    store.fs.pipe_file(store._path("fib", "k1"),
                       checkpoint_forgery(forgery, "fib", "k1", str(marker), tmp_path))
    assert store.get("fib", "k1") == (False, None)
    assert not marker.exists()
    assert f"checkpoint entry s3://{bucket}/ckpt/fib/k1/k1.ckpt is ignored" in logs.text
    store.put("fib", "k1", 55)  # the recomputed value replaces it
    assert store.get("fib", "k1") == (True, 55)


def test_cache_ls_reports_entries_that_do_not_verify(tmp_path):
    store = CheckpointStore(str(tmp_path / "ckpt"))
    marker = tmp_path / "unpickled"
    store.put("fib", "good", 1)
    for name, kind in (("forged", "signed-with-another-key"), ("old", "old-format")):
        path = store._path("fib", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(checkpoint_forgery(kind, "fib", name, str(marker), tmp_path))
    group = click.Group("daskflow", commands={"cache": cache})
    r = CliRunner().invoke(group, ["cache", "ls", "--dir", store.url])
    assert r.exit_code == 0, r.output
    assert "total: 3 entries" in r.output and "VERIFIED" not in r.output
    r = CliRunner().invoke(group, ["cache", "ls", "--verify", "--dir", store.url])
    assert r.exit_code == 0, r.output
    rows = {line.split()[1]: line.split()[-1] for line in r.output.splitlines()[1:4]}
    assert rows == {"good": "yes", "forged": "NO", "old": "NO"}
    assert "2 entries do not verify with your key" in r.output
    assert "fib/forged: its signature does not verify" in r.output
    assert "fib/old: unsigned entry of an older daskflow (format version 1)" in r.output
    r = CliRunner().invoke(group, ["cache", "ls", "--verify", "--summary", "--dir", store.url])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[1].split()[:2] == ["fib", "3"]
    assert r.output.splitlines()[1].split()[-1] == "2"
    assert not marker.exists()
    r = CliRunner().invoke(group, ["cache", "prune", "--app", "fib", "--yes", "--dir", store.url])
    assert r.exit_code == 0 and "removed 3 entries" in r.output


def test_local_entry_that_is_a_fifo_or_symlink_is_a_miss_without_blocking(tmp_path, logs):
    store = CheckpointStore(str(tmp_path / "ckpt"))
    store.put("fib", "k1", 1)
    path = store._path("fib", "k1")
    os.rename(path, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", path)
    assert store.get("fib", "k1") == (False, None)
    os.unlink(path)
    os.mkfifo(path)
    assert store.get("fib", "k1") == (False, None)
    assert "not a regular file" in store.problem("fib", "k1")
    assert logs.text.count("could not be read") == 2
    store.put("fib", "k1", 2)
    assert store.get("fib", "k1") == (True, 2)
