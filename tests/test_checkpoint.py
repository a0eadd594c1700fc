"""The checkpoint store (local directories and memory://) and ``daskflow cache``."""

from __future__ import annotations

import importlib
import logging
import os
import random
import signal
import subprocess
import sys
import time
import types
import uuid

import click
from click.testing import CliRunner
import dask
import pytest

import daskflow

from daskflow.cli.cache import cache, human_age, human_size
from daskflow.memo.checkpoints import HEADER_SIZE, CheckpointStore, Entry, parse_age

# the module itself, for monkeypatching its clock
checkpoint = importlib.import_module("daskflow.memo.checkpoints")


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    if request.param == "local":
        yield CheckpointStore(str(tmp_path / "ckpt"))
    else:
        s = CheckpointStore(f"memory://ckpt-{uuid.uuid4().hex}")
        yield s
        if s.fs.exists(s.root):
            s.fs.rm(s.root, recursive=True)


def fake_clock(monkeypatch, t):
    """Make the store stamp entries (and measure ages) at epoch time *t*."""
    monkeypatch.setattr(checkpoint, "time", types.SimpleNamespace(time=lambda: t))


def raw(store, app, key):
    return store.fs.cat_file(store._path(app, key))


def overwrite(store, app, key, data):
    path = store._path(app, key)
    if store._local:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    else:
        store.fs.pipe_file(path, data)


# -- basics ---------------------------------------------------------------------------


VALUES = [0, -3.5, "text", None, b"\x00bytes", [1, [2, 3]], (1, "a"), {"a": {"b": [None]}},
          {1, 2}, ValueError("boom"), lambda x: x + 1]


def test_round_trip(store):
    for i, value in enumerate(VALUES):
        n = store.put("app_1", f"k{i:03d}", value, meta={"i": i})
        assert n == len(raw(store, "app_1", f"k{i:03d}")) > HEADER_SIZE
        hit, got = store.get("app_1", f"k{i:03d}")
        assert hit
        if callable(value) and not isinstance(value, type):
            assert got(1) == 2
        elif isinstance(value, Exception):
            assert type(got) is ValueError and got.args == ("boom",)
        else:
            assert got == value and type(got) is type(value)
    assert store.get("app_1", "nothere") == (False, None)
    assert store.get("other", "k000") == (False, None)
    store.put("app_1", "k000", "new")  # replaces
    assert store.get("app_1", "k000") == (True, "new")
    record = store._decode(raw(store, "app_1", "k001"), "app_1", "k001")
    assert record["meta"] == {"i": 1} and record["app"] == "app_1" and record["key"] == "k001"


def test_layout_and_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = CheckpointStore("rel/ckpt")
    assert s.url == str(tmp_path / "rel" / "ckpt")
    s.put("fib", "abcdef", 1)
    path = tmp_path / "rel" / "ckpt" / "fib" / "ab" / "abcdef.ckpt"
    assert path.read_bytes()[:8] == checkpoint.MAGIC
    assert CheckpointStore(f"file://{tmp_path}/rel/ckpt").get("fib", "abcdef") == (True, 1)
    (e,) = s.entries()
    assert e.url == str(path) and e.size == path.stat().st_size
    m = CheckpointStore("memory://somewhere")
    assert m.url == "memory://somewhere"


@pytest.mark.parametrize("app", ["", "..", "a/b", "a.b", "1abc", "a b", "../x", "é", None])
def test_bad_app(store, app):
    with pytest.raises(ValueError, match="app name"):
        store.put(app, "key", 1)
    with pytest.raises(ValueError, match="app name"):
        store.get(app, "key")


@pytest.mark.parametrize("key", ["", ".", "..", "../etc", "a/b", ".hidden", "a\\b", "k" * 201, 12])
def test_bad_key(store, key):
    with pytest.raises(ValueError, match="key") as info:
        store.put("app", key, 1)
    assert repr(key) in str(info.value)
    with pytest.raises(ValueError, match="key"):
        store.get("app", key)


def test_entries_prune_clear(store, monkeypatch):
    t0 = 1_700_000_000.0
    fake_clock(monkeypatch, t0)
    store.put("old", "aa1", 1)
    store.put("young", "bb1", "x" * 1000)
    fake_clock(monkeypatch, t0 + 10 * 86400)
    store.put("old", "aa2", 2)
    store.put("young", "bb2", 3)
    es = store.entries()
    assert [(e.app, e.key) for e in es] == [("old", "aa1"), ("old", "aa2"), ("young", "bb1"), ("young", "bb2")]
    assert all(isinstance(e, Entry) and e.size > HEADER_SIZE for e in es)
    assert {e.key: e.created for e in es} == {"aa1": t0, "bb1": t0, "aa2": t0 + 864000, "bb2": t0 + 864000}
    assert [e.key for e in store.entries("young")] == ["bb1", "bb2"]
    assert store.entries("nobody") == []
    assert [e.key for e in store.entries(older_than=parse_age("7d"))] == ["aa1", "bb1"]

    fake_clock(monkeypatch, t0 + 10 * 86400 + 60)
    assert store.prune("young", older_than=parse_age("7d")) == 1
    assert [e.key for e in store.entries()] == ["aa1", "aa2", "bb2"]
    assert store.prune("old") == 2
    assert store.get("old", "aa1") == (False, None)
    assert [e.key for e in store.entries()] == ["bb2"]
    assert store.prune(older_than=3600) == 0
    store.put("old", "aa3", 1)
    assert store.clear() == 2
    assert store.entries() == []
    assert store.clear() == 0


def test_entries_of_missing_root(tmp_path):
    assert CheckpointStore(str(tmp_path / "nope")).entries() == []
    assert CheckpointStore(str(tmp_path / "nope"), readonly=True).entries() == []
    assert CheckpointStore(f"memory://nope-{uuid.uuid4().hex}").entries() == []


def test_temporaries_are_not_entries(tmp_path):
    s = CheckpointStore(str(tmp_path))
    s.put("app", "abc", 1)
    folder = tmp_path / "app" / "ab"
    tmp = folder / ".abc.ckpt.123-deadbeef.tmp"
    tmp.write_bytes(b"partial")
    (folder / "stray.txt").write_text("x")
    (tmp_path / "app" / "zz").mkdir()
    (tmp_path / "app" / "zz" / "abc.ckpt").write_bytes(b"wrong shard")
    assert [(e.app, e.key) for e in s.entries()] == [("app", "abc")]
    assert s.prune(older_than=3600) == 0 and tmp.exists()  # a fresh temporary may be in use
    old = time.time() - 2 * checkpoint.STALE_TEMP
    os.utime(tmp, (old, old))
    s.prune(older_than=3600)
    assert not tmp.exists()
    tmp.write_bytes(b"partial")
    assert s.clear() == 1
    assert sorted(os.listdir(folder)) == [tmp.name, "stray.txt"]  # a writer may be at work
    os.utime(tmp, (old, old))
    s.clear()
    assert os.listdir(folder) == ["stray.txt"]  # files not its own are left alone
    (folder / "stray.txt").unlink()
    (tmp_path / "app" / "zz" / "abc.ckpt").unlink()
    s.clear()
    assert os.listdir(tmp_path) == []  # empty directories are removed


def test_readonly(store, logs):
    store.put("app", "key1", 1)
    overwrite(store, "app", "key2", b"garbage")
    ro = CheckpointStore(store.url, readonly=True) if store._local else store
    if not store._local:
        ro.readonly = True  # same memory filesystem
    assert ro.get("app", "key1") == (True, 1)
    for call in (lambda: ro.put("app", "key1", 2), lambda: ro.prune(), lambda: ro.clear(),
                 lambda: ro.remove(ro.entries())):
        with pytest.raises(PermissionError, match="read-only"):
            call()
    assert ro.get("app", "key2") == (False, None)
    assert "key2" in logs.text and "removed" not in logs.text
    assert len(ro.entries()) == 2 and ro.get("app", "key1") == (True, 1)


# -- bad entries ----------------------------------------------------------------------


def _check_bad(store, logs, key, cause):
    logs.clear()
    assert store.get("app", key) == (False, None)
    (rec,) = logs.records
    assert rec.levelno == logging.WARNING and rec.name == "daskflow.checkpoint"
    msg = rec.getMessage()
    assert store._url(store._path("app", key)) in msg and cause in msg and "removed" in msg
    assert [e.key for e in store.entries("app")] == ["good"]
    assert store.get("app", key) == (False, None)  # and now a plain miss


def test_corrupt_entries(store, logs):
    store.put("app", "good", "fine")
    value = list(range(1000))

    store.put("app", "flip", value)
    data = bytearray(raw(store, "app", "flip"))
    for i in (HEADER_SIZE + 5, len(data) // 2, len(data) - 2):
        data[i] ^= 0xFF
    overwrite(store, "app", "flip", bytes(data))
    _check_bad(store, logs, "flip", "signature does not verify")

    store.put("app", "cut", value)
    data = raw(store, "app", "cut")
    overwrite(store, "app", "cut", data[: len(data) // 2])
    _check_bad(store, logs, "cut", "truncated")

    store.put("app", "cuthead", value)
    overwrite(store, "app", "cuthead", raw(store, "app", "cuthead")[:20])
    _check_bad(store, logs, "cuthead", "truncated")

    overwrite(store, "app", "empty", b"")
    _check_bad(store, logs, "empty", "truncated")

    overwrite(store, "app", "magic", b"not a checkpoint" * 10)
    _check_bad(store, logs, "magic", "magic")

    overwrite(store, "app", "moved", raw(store, "app", "good"))  # a renamed file
    _check_bad(store, logs, "moved", "signature does not verify")

    # passes the checks but cannot be unpickled here (a module that is gone)
    payload = b"cno_such_module_xyz\nThing\n."
    prefix = checkpoint._PREFIX.pack(checkpoint.MAGIC, checkpoint.VERSION, time.time(), len(payload))
    tag = checkpoint.signing.sign(store.key, prefix, b"app", b"gone", payload)
    overwrite(store, "app", "gone", prefix + tag + payload)
    _check_bad(store, logs, "gone", "no_such_module_xyz")

    assert store.get("app", "good") == (True, "fine")


def test_unreadable_entry_is_a_miss(tmp_path, logs):
    s = CheckpointStore(str(tmp_path))
    os.makedirs(tmp_path / "app" / "ke" / "key.ckpt")  # a directory where the entry should be
    assert s.get("app", "key") == (False, None)
    assert "could not be read" in logs.text and "key.ckpt" in logs.text


def test_put_failure_leaves_no_temporary(tmp_path):
    s = CheckpointStore(str(tmp_path))
    s.put("app", "key", 1)

    class Unpicklable:
        def __reduce__(self):
            raise TypeError("nope")

    with pytest.raises(TypeError):
        s.put("app", "key", Unpicklable())
    assert s.get("app", "key") == (True, 1)
    assert sorted(os.listdir(tmp_path / "app" / "ke")) == ["key.ckpt"]


def test_parse_age():
    assert parse_age("90s") == 90 and parse_age("15m") == 900 and parse_age("12h") == 43200
    assert parse_age("7d") == 604800 and parse_age("2w") == 1209600 and parse_age("1.5h") == 5400
    assert parse_age(" 0s ") == 0 and parse_age(".5h") == 1800
    # the rest of dask.utils.parse_timedelta's forms
    assert parse_age("7 days") == parse_age("7D") == 604800 and parse_age("36 hours") == 129600
    for bad in ["", "7", "7x", "-1d", "d", "5min", "1e999s", "nan", "1.2.3s", None, 7]:
        with pytest.raises(ValueError, match="invalid age"):
            parse_age(bad)


# -- SIGKILL in the middle of writes ----------------------------------------------------

WRITER = """
import sys, types
package = types.ModuleType("daskflow")  # the store's modules alone, not the whole package
package.__path__ = [{package!r}]
sys.modules["daskflow"] = package
from daskflow.memo.checkpoints import CheckpointStore
store = CheckpointStore({root!r}, key={key!r})
base, size, keys = int(sys.argv[1]), {size}, {keys!r}
print("ready", flush=True)
i = 0
while True:
    for k in keys:
        n = base + i
        store.put("big", k, {{"key": k, "n": n, "blob": bytes([n % 251]) * size}})
        if i == 0:
            print("replaced", flush=True)
        i += 1
"""


def _valid(value, key, size):
    n = value["n"]
    return value["key"] == key and value["blob"] == bytes([n % 251]) * size


def test_sigkill_mid_write(tmp_path, logs):
    size, keys = 20 * 2**20, ["k0", "k1", "k2"]
    root = str(tmp_path / "ckpt")
    store = CheckpointStore(root)
    for k in keys:
        store.put("big", k, {"key": k, "n": 0, "blob": bytes([0]) * size})
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(package=os.path.dirname(daskflow.__file__), root=root,
                                    size=size, keys=keys, key=store.key))
    rng = random.Random(1234)
    seen = set()
    for run in range(1, 11):
        proc = subprocess.Popen([sys.executable, str(script), str(run * 1000)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + rng.uniform(0.05, 0.3)
            while time.monotonic() < deadline:  # read while the writer replaces entries
                k = rng.choice(keys)
                hit, value = store.get("big", k)
                assert hit and _valid(value, k, size)
                seen.add(value["n"])
            # at least one entry replaced (a loaded machine may be slow to
            # write 20 MiB); the kill then lands in the middle of the next one
            assert proc.stdout.readline().strip() == "replaced"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
    ns = {}
    for k in keys:
        hit, value = store.get("big", k)
        assert hit and _valid(value, k, size)
        ns[k] = value["n"]
    es = store.entries()
    assert sorted(e.key for e in es) == keys
    assert all(e.size == os.path.getsize(e.url) > 20 * 2**20 for e in es)
    temps = [n for _, _, names in os.walk(root) for n in names if n.endswith(".tmp")]
    assert not logs.records
    # the writer did get to replace entries, and was killed in the middle of some writes
    assert any(n for n in ns.values()) or seen - {0}, (ns, seen)
    print(f"final n {ns}, read {len(seen)} distinct versions, {len(temps)} torn temporaries left")
    assert store.clear() == 3
    assert store.sweep_temporaries(min_age=0) == len(temps)
    store.clear()
    assert not os.listdir(root)


# -- the CLI -------------------------------------------------------------------------


def test_human_readable():
    assert human_size(0) == "0 B" and human_size(1023) == "1023 B"
    assert human_size(1536) == "1.5 KiB" and human_size(20 * 2**20) == "20.0 MiB"
    assert human_age(5) == "5s" and human_age(90) == "1.5m" and human_age(86400 * 3) == "3.0d"
    assert human_age(86400 * 10) == "10d" and human_age(3600 * 23.5) == "24h"
    assert human_age(-1) == "0s"


@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    s = CheckpointStore(str(tmp_path / "ckpt"))
    t0 = time.time()
    fake_clock(monkeypatch, t0 - 10 * 86400)
    s.put("fib", "0123456789abcdef0123", 1)
    s.put("fib", "feedbeef", "x" * 5000)
    fake_clock(monkeypatch, t0 - 60)
    s.put("sim", "aaaaaaaaaaaaaaaaaaaaaaaa", list(range(100)))
    monkeypatch.undo()
    with dask.config.set({"daskflow.checkpoint.dir": s.url}):
        yield s


def run(*args, input=None):
    group = click.Group("daskflow", commands={"cache": cache})
    return CliRunner().invoke(group, ["cache", *args], input=input)


def test_cli_ls(cli_store):
    r = run("ls")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["APP", "KEY", "SIZE", "AGE"]
    assert len(lines) == 5 and "0123456789abcdef0123" not in r.output and "012345678..." in r.output
    assert "10d" in r.output and "1.0m" in r.output and "KiB" in r.output
    assert lines[-1].startswith("total: 3 entries,") and cli_store.url in lines[-1]
    r = run("ls", "--app", "sim", "--dir", cli_store.url)
    assert r.exit_code == 0 and "fib" not in r.output and "total: 1 entry," in r.output
    r = run("ls", "--summary")
    assert r.exit_code == 0, r.output
    rows = [line.split() for line in r.output.splitlines()]
    assert rows[0] == ["APP", "ENTRIES", "SIZE", "NEWEST", "OLDEST"]
    assert rows[1][:2] == ["fib", "2"] and rows[1][-2:] == ["10d", "10d"]
    assert rows[2][:2] == ["sim", "1"]
    r = run("ls", "--app", "../x")
    assert r.exit_code == 2 and "invalid checkpoint app name" in r.output


def test_cli_ls_empty(tmp_path):
    r = run("ls", "--dir", str(tmp_path / "none"))
    assert r.exit_code == 0 and "no entries" in r.output
    with dask.config.set({"daskflow.checkpoint.dir": None}):
        r = run("ls")
    assert r.exit_code == 2 and "give --dir" in r.output
    r = run("ls", "--dir", f"memory://none-{uuid.uuid4().hex}")
    assert r.exit_code == 0 and "no entries in memory://none-" in r.output


def test_cli_prune(cli_store):
    r = run("prune", "--older-than", "7d", input="n\n")
    assert r.exit_code == 1 and "Remove 2 entries" in r.output and "Aborted" in r.output
    assert len(cli_store.entries()) == 3
    r = run("prune", "--older-than", "7d", input="y\n")
    assert r.exit_code == 0, r.output
    assert "removed 2 entries" in r.output and "KiB" in r.output
    assert [e.app for e in cli_store.entries()] == ["sim"]
    r = run("prune", "--older-than", "7d", "--yes")
    assert r.exit_code == 0 and "nothing to remove" in r.output
    r = run("prune", "--app", "sim", "--yes", "--dir", cli_store.url)
    assert r.exit_code == 0 and "removed 1 entry," in r.output and cli_store.entries() == []
    r = run("prune", "--older-than", "7x")
    assert r.exit_code == 2 and "invalid age" in r.output
    r = run("prune", "--yes")
    assert r.exit_code == 2 and "--older-than" in r.output


def test_cli_clear(cli_store):
    r = run("clear", input="n\n")
    assert r.exit_code == 1 and "Remove 3 entries" in r.output and len(cli_store.entries()) == 3
    r = run("clear", input="y\n")
    assert r.exit_code == 0 and "removed 3 entries" in r.output and cli_store.entries() == []
    r = run("clear", "--yes")
    assert r.exit_code == 0 and "nothing to remove" in r.output


def test_cli_memory_store():
    s = CheckpointStore(f"memory://cli-{uuid.uuid4().hex}")
    s.put("fib", "k1", 1)
    s.put("fib", "k2", 2)
    r = run("ls", "--dir", s.url)
    assert r.exit_code == 0 and "total: 2 entries" in r.output
    r = run("prune", "--app", "fib", "--dir", s.url, "-y")
    assert r.exit_code == 0 and "removed 2 entries" in r.output and s.entries() == []
