"""The user's signing key (made private, refused when others may know it),
derived keys, tags, and the kept results they sign (private files, a bounded
pickle, forged entries never unpickled)."""

from __future__ import annotations

import logging
import os
import pathlib
import pickle
import stat
import subprocess
import sys

import dask
import numpy as np
import pytest

from daskflow import signing
from daskflow.errors import UnsafeKeyFile
from daskflow.shipped import RunSettings
from daskflow.worker import recovery

HERE = os.path.dirname(os.path.abspath(__file__))


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def key_path(tmp_path):
    """A key file of this test (not there yet), in a config directory not there yet."""
    path = tmp_path / "config" / "daskflow" / "signing.key"
    with dask.config.set({"daskflow.signing.key-file": str(path)}):
        yield path


class Marker:
    """A harmless payload: unpickling it creates the file ``path``."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def run_python(code: str, **env) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE),
                                                 **env))
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- the key ---------------------------------------------------------------------------


def test_key_is_made_private_whatever_the_umask(tmp_path):
    path = tmp_path / "cfg" / "daskflow" / "signing.key"
    out = run_python("import os; os.umask(0); from daskflow import signing; "
                     "print(signing.user_key().hex())",
                     DASK_DASKFLOW__SIGNING__KEY_FILE=str(path))
    assert path.read_bytes().hex() == out.strip() and len(path.read_bytes()) == 32
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert os.listdir(path.parent) == ["signing.key"]  # no temporary left


def test_default_place_is_the_users_config_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    with dask.config.set({"daskflow.signing.key-file": None}):
        assert signing.key_file() == str(tmp_path / "xdg" / "daskflow" / "signing.key")
        key = signing.user_key()
    assert (tmp_path / "xdg" / "daskflow" / "signing.key").read_bytes() == key
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with dask.config.set({"daskflow.signing.key-file": None}):
        assert signing.key_file() == str(tmp_path / "home" / ".config" / "daskflow" / "signing.key")


def test_processes_making_the_key_at_once_agree(tmp_path):
    path = tmp_path / "cfg" / "signing.key"
    code = "from daskflow import signing; print(signing.user_key().hex())"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE),
               DASK_DASKFLOW__SIGNING__KEY_FILE=str(path))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(4)]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert keys == {path.read_bytes().hex()}


def test_key_open_to_group_or_others_is_refused(key_path):
    key = signing.user_key()
    for bad in (0o640, 0o604, 0o620, 0o666):
        os.chmod(key_path, bad)
        with pytest.raises(UnsafeKeyFile) as info:
            signing.user_key()
        message = str(info.value)
        assert str(key_path) in message and f"{bad:04o}" in message
        assert f"chmod 600 {key_path}" in message
    os.chmod(key_path, 0o600)
    assert signing.user_key() == key


def test_key_owned_by_someone_else_is_refused(key_path, other_user):
    signing.user_key()
    os.chown(key_path, other_user.uid, other_user.gid)
    with pytest.raises(UnsafeKeyFile, match=f"owned by uid {other_user.uid}, not by you"):
        signing.user_key()


def test_key_that_is_not_a_key_is_refused(key_path):
    key_path.parent.mkdir(parents=True)
    key_path.write_bytes(b"short")
    os.chmod(key_path, 0o600)
    with pytest.raises(UnsafeKeyFile, match="holds 5 bytes, not a 32-byte key"):
        signing.user_key()
    key_path.unlink()
    key_path.mkdir()
    with pytest.raises(UnsafeKeyFile, match="not a regular file"):
        signing.user_key()


def test_derived_keys_are_stable_and_distinct(key_path):
    user = signing.user_key()
    assert signing.derived_key("provenance") == signing.derived_key("provenance")
    assert signing.derived_key("provenance", user) == signing.derived_key("provenance")
    keys = {user, signing.checkpoint_key(), signing.results_key("t1"), signing.results_key("t2"),
            signing.derived_key("provenance")}
    assert len(keys) == 5 and all(len(k) == 32 for k in keys)
    # stable for another process reading the same key file
    out = run_python("from daskflow import signing; print(signing.checkpoint_key().hex())",
                     DASK_DASKFLOW__SIGNING__KEY_FILE=str(key_path))
    assert out.strip() == signing.checkpoint_key().hex()


def test_tags_detect_tampering():
    key, other = b"k" * 32, b"o" * 32
    tag = signing.sign(key, b"ident", b"payload")
    assert signing.verify(key, tag, b"ident", b"payload")
    assert signing.verify(key, memoryview(tag), memoryview(b"ident"), memoryview(b"payload"))
    assert not signing.verify(other, tag, b"ident", b"payload")
    assert not signing.verify(key, tag, b"ident", b"paylaod")
    assert not signing.verify(key, tag, b"identp", b"ayload")  # bytes moved between parts
    assert not signing.verify(key, tag, b"other", b"payload")
    assert not signing.verify(key, bytes(32), b"ident", b"payload")


def test_keys_stay_out_of_reprs(key_path):
    key = signing.results_key("tok")
    kept = recovery.KeptResults("/some/dir", key)
    run = RunSettings("tok", results=kept, checkpoint_key=signing.checkpoint_key())
    for text in (repr(kept), repr(run), str(run)):
        assert key.hex() not in text and repr(key) not in text
        assert signing.checkpoint_key().hex() not in text
    back = pickle.loads(pickle.dumps(run))  # but they travel to the workers
    assert back.results.key == key and back.checkpoint_key == signing.checkpoint_key()


# -- kept results ----------------------------------------------------------------------


def test_kept_results_round_trip_and_bounded(tmp_path):
    kept = recovery.keep_in(str(tmp_path / "run" / "results"), b"k" * 32)
    recovery.remember(kept, "call-1", {"a": [1, 2]}, 64 * 1024)
    assert recovery.recall(kept, "call-1") == (True, {"a": [1, 2]})
    assert recovery.recall(kept, "call-2") == (False, None)
    small = np.arange(1000)
    recovery.remember(kept, "call-3", small, 64 * 1024)
    done, value = recovery.recall(kept, "call-3")
    assert done and (value == small).all()
    for big in (np.ones(2**20), list(range(100_000)), b"x" * 70_000):  # > 64 KiB pickled
        recovery.remember(kept, "big", big, 64 * 1024)
        assert recovery.recall(kept, "big") == (False, None)
    assert recovery.pickled_within(b"x" * 100, 100) is None  # the limit counts pickle bytes
    assert pickle.loads(recovery.pickled_within(b"x" * 100, 200)) == b"x" * 100


def test_kept_results_are_private_whatever_the_umask(tmp_path):
    out = run_python(f"""
import os
os.umask(0)
from daskflow.worker import recovery
kept = recovery.keep_in({str(tmp_path / 'run' / 'results')!r}, b"k" * 32)
recovery.remember(kept, "call-1", 42, 65536)
""")
    results = tmp_path / "run" / "results"
    assert mode(results) == 0o700
    (entry,) = results.iterdir()
    assert mode(entry) == 0o600


def test_kept_results_that_do_not_verify_are_never_unpickled(tmp_path, logs):
    kept = recovery.keep_in(str(tmp_path / "results"), b"k" * 32)
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(Marker(marker))
    path = recovery._path(kept.directory, "call-1")

    def check(data: bytes, why: str):
        logs.clear()
        with open(path, "wb") as f:
            f.write(data)
        assert recovery.recall(kept, "call-1") == (False, None)
        (rec,) = logs.records
        assert rec.levelno == logging.WARNING
        assert path in rec.getMessage() and "call-1" in rec.getMessage()
        assert why in rec.getMessage() and "running the call again" in rec.getMessage()
        assert not marker.exists()

    forged = signing.sign(os.urandom(32), b"call-1", payload)
    check(recovery.MAGIC + forged + payload, "signature does not verify")
    check(payload, "not a signed kept result")  # the format before entries were signed
    moved = signing.sign(kept.key, b"call-2", payload)  # signed, but for another call
    check(recovery.MAGIC + moved + payload, "signature does not verify")
    check(b"", "not a signed kept result")
    recovery.remember(kept, "call-1", 7, 65536)  # the call ran again: overwritten, signed
    assert recovery.recall(kept, "call-1") == (True, 7)


def test_kept_result_that_is_a_fifo_or_symlink_is_ignored_without_blocking(tmp_path, logs):
    kept = recovery.keep_in(str(tmp_path / "results"), b"k" * 32)
    recovery.remember(kept, "call-1", 1, 65536)
    path = recovery._path(kept.directory, "call-1")
    os.rename(path, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", path)  # a valid entry, but through a symlink
    assert recovery.recall(kept, "call-1") == (False, None)
    assert "unreadable" in logs.text
    os.unlink(path)
    os.mkfifo(path)  # opening it for reading would wait for a writer
    assert recovery.recall(kept, "call-1") == (False, None)
    assert "not a regular file" in logs.text
    recovery.remember(kept, "call-1", 2, 65536)  # replaced by a signed file
    assert recovery.recall(kept, "call-1") == (True, 2)


def test_a_refused_key_is_an_error_not_a_bad_entry(key_path, tmp_path):
    from daskflow.memo.checkpoints import CheckpointStore

    store = CheckpointStore(str(tmp_path / "ckpt"))
    store.put("fib", "k1", 1)
    os.chmod(key_path, 0o644)
    with pytest.raises(UnsafeKeyFile, match="chmod 600"):
        CheckpointStore(store.url).get("fib", "k1")
    assert len(store.entries()) == 1  # left alone; listing needs no key
    os.chmod(key_path, 0o600)
    assert CheckpointStore(store.url).get("fib", "k1") == (True, 1)
