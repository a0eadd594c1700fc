"""The provenance store (SQLite), its queries, exports and CLI, on synthetic
runs written through the writer API (no Dask cluster needed)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import click
from click.testing import CliRunner
import dask
import pytest

from daskflow.cli import provenance as cli_provenance
from daskflow.provenance.blocks import CallBlock
from daskflow.provenance.export import to_dot, to_json, to_prov
from daskflow.provenance.store import (DB_NAME, SCHEMA_VERSION, ProvenanceStore, find_run,
                                       list_runs, new_run_dir, run_status)

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                    "provenance.md")
T0 = 1_700_000_000.0
TOKEN = "0123456789abcdef"


def key(app, tid):
    return f"{app}-{tid}-{TOKEN}"


CHUNK = key("square", 6)
SQUARES = [f"{CHUNK}[{i}]" for i in range(4)]

# (key, tid, app, final state, started, finished, extra updates)
TASKS = [
    (key("generate", 0), "0", "generate", "done", T0 + 1, T0 + 2, {"memo": "miss", "nbytes": 80}),
    (key("simulate", 1), "1", "simulate", "done", T0 + 2, T0 + 5, {"tries": 2, "memo": "miss"}),
    (key("simulate", 2), "2", "simulate", "memo", None, None, {"memo": "hit"}),
    (key("analyze", 3), "3", "analyze", "failed", T0 + 5, T0 + 6,
     {"exception": "ValueError: bad input\nsecond line", "traceback": "Traceback ...", "tries": 1}),
    (key("count", 4), "4", "count", "failed", T0 + 2, T0 + 3,
     {"exception": "BashExitFailure: count failed with exit code 2", "exit_code": 2,
      "stdout": "count.out", "stderr": "count.err"}),
    (key("report", 5), "5", "report", "cancelled", None, None, {}),
    *[(SQUARES[i], str(6 + i), "square", "done", T0 + 1 + i, T0 + 1.5 + i, {}) for i in range(4)],
    (key("fib", 10), "10", "fib", "done", T0 + 1, T0 + 9, {}),
    (key("fib", "10.1"), "10.1", "fib", "done", T0 + 2, T0 + 3, {}),
    (key("fib", "10.2"), "10.2", "fib", "done", T0 + 3, T0 + 4, {}),
]
DEPS = [
    (key("simulate", 1), key("generate", 0)),
    (key("simulate", 2), key("generate", 0)),
    (key("analyze", 3), key("simulate", 1)),
    (key("analyze", 3), key("simulate", 2)),
    (key("report", 5), key("analyze", 3)),
    (key("fib", 10), key("fib", "10.1")),
    (key("fib", 10), key("fib", "10.2")),
    (SQUARES[1], key("generate", 0)),
]
FILES = [
    {"key": key("generate", 0), "direction": "out", "url": "file:///data/gen.txt", "size": 12,
     "checksum": "sha256:abc"},
    {"key": key("simulate", 1), "direction": "in", "url": "file:///data/gen.txt"},
    {"key": key("simulate", 1), "direction": "out", "url": "file:///data/sim 1.txt", "size": 7},
]


def write_run(base, end=True):
    """A synthetic run in base/NNN, written as the plugin would (several batches)."""
    run_id, path = new_run_dir(base)
    store = ProvenanceStore(os.path.join(path, DB_NAME))
    store.start_run({"run_id": run_id, "script": "workflow.py", "user": "alice", "host": "node1",
                     "cwd": "/home/alice", "start": T0, "profile": "local",
                     "versions": {"daskflow": "0.1.0", "dask": "2026.8.0"},
                     "scheduler": "tcp://127.0.0.1:8786"})
    store.record({
        "tasks": [{"key": k, "tid": tid, "app": app, "app_hash": f"h-{app}", "args": f"({tid},)",
                   "submitted": T0 + 0.5,
                   "chunk_key": CHUNK if k in SQUARES else None,
                   "index": SQUARES.index(k) if k in SQUARES else None}
                  for k, tid, app, *_ in TASKS],
        "deps": DEPS,
        "transitions": [(k, "released", "waiting", T0 + 0.5, None) for k, *_ in TASKS],
    })
    store.record({
        "transitions": [(k, "waiting", "processing", s, "tcp://w1") for k, _, _, _, s, _, _ in TASKS if s],
        "updates": [{"key": k, "state": "running", "started": s, "worker": "tcp://w1", "host": "node1"}
                    for k, _, _, _, s, _, _ in TASKS if s],
        "tries": [{"key": key("simulate", 1), "try": 0, "start": T0 + 2, "end": T0 + 3,
                   "worker": "tcp://w1", "exception": "OSError: flaky"},
                  {"key": key("simulate", 1), "try": 1, "start": T0 + 3, "worker": "tcp://w2"}],
        "files": FILES[:2],
    })
    store.record({
        "transitions": [(k, "processing", "memory" if st == "done" else "erred", f, "tcp://w1")
                        for k, _, _, st, _, f, _ in TASKS if f],
        "updates": [{"key": k, "state": st, "finished": f, "worker": None, **extra}
                    for k, _, _, st, _, f, extra in TASKS],
        "tries": [{"key": key("simulate", 1), "try": 1, "end": T0 + 5}],
        "files": FILES[2:],
    })
    if end:
        store.end_run(run_id, T0 + 10, "failed")
    store.close()
    return run_id, path


@pytest.fixture
def base(tmp_path):
    return str(tmp_path / "runinfo")


@pytest.fixture
def run(base):
    run_id, path = write_run(base)
    with ProvenanceStore(os.path.join(path, DB_NAME), readonly=True) as store:
        yield store


# -- run directories ---------------------------------------------------------

def test_new_run_dir_numbers_and_concurrency(base):
    assert new_run_dir(base)[0] == "000"
    os.mkdir(os.path.join(base, "notes"))
    assert new_run_dir(base)[0] == "001"
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: new_run_dir(base), range(40)))
    ids = [r for r, _ in made]
    assert len(set(ids)) == 40 and sorted(ids) == [f"{i:03d}" for i in range(2, 42)]
    assert all(os.path.isdir(p) and p.endswith(r) for r, p in made)


def test_new_run_dirs_come_after_every_numbered_entry_files_too(base):
    """As Parsl numbers them: a file named 998 makes the next run 999, then 1000."""
    new_run_dir(base)
    open(os.path.join(base, "998"), "w").close()
    assert new_run_dir(base)[0] == "999"
    assert new_run_dir(base)[0] == "1000"
    assert list_runs(base)[-1]["run_id"] == "1000"


def test_find_run(base):
    with pytest.raises(FileNotFoundError, match="available runs: none"):
        find_run(base, "latest")
    for _ in range(3):
        new_run_dir(base)
    assert find_run(base, "001").endswith("001")
    assert find_run(base, "1").endswith("001")
    assert find_run(base, "latest").endswith("002")
    assert find_run(base, "-1").endswith("002")
    assert find_run(base, "-3").endswith("000")
    with pytest.raises(FileNotFoundError, match=r"no run '7'.*available runs: 000, 001, 002"):
        find_run(base, "7")
    with pytest.raises(FileNotFoundError, match="available runs"):
        find_run(base, "-4")


# -- writer semantics ----------------------------------------------------------

def test_record_semantics(tmp_path):
    store = ProvenanceStore(str(tmp_path / "p.db"))
    # an update that arrives before its task makes a stub the task insert fills
    store.record({"updates": [{"key": "a-1", "state": "running", "started": 1.0}]})
    store.record({"tasks": [{"key": "a-1", "tid": "1", "app": "a", "submitted": 0.5}]})
    # a second insert of a known task changes nothing that is set, its state neither
    store.record({"tasks": [{"key": "a-1", "tid": "99", "app": "other"}]})
    assert store.tasks()[0]["state"] == "running"
    # a new task and its updates in one batch make one row; the last update wins
    store.record({"tasks": [{"key": "c-3", "tid": "3", "app": "c", "submitted": 0.1}],
                  "updates": [{"key": "c-3", "state": "running", "started": 0.2},
                              {"key": "c-3", "state": "done", "finished": 0.4}]})
    c3 = next(t for t in store.tasks() if t["key"] == "c-3")
    assert (c3["tid"], c3["state"], c3["started"], c3["finished"]) == ("3", "done", 0.2, 0.4)
    store.record({"tasks": [{"key": "d-4", "tid": "4", "app": "d"}]})
    assert next(t for t in store.tasks() if t["key"] == "d-4")["state"] == "pending"
    # only fields that are not None are updated
    store.record({"updates": [{"key": "a-1", "state": "done", "finished": 2.0, "started": None,
                               "exception": None}]})
    t = next(t for t in store.tasks() if t["key"] == "a-1")
    assert (t["tid"], t["app"], t["state"], t["started"], t["finished"], t["duration"]) == \
        ("1", "a", "done", 1.0, 2.0, 1.0)
    # a bad batch writes nothing
    with pytest.raises(ValueError, match="unknown task fields"):
        store.record({"tasks": [{"key": "b-2", "tid": "2", "app": "b"}],
                      "updates": [{"key": "b-2", "colour": "red"}]})
    with pytest.raises(sqlite3.Error):
        store.record({"tasks": [{"key": "b-2", "tid": "2", "app": "b"}], "deps": [("b-2",)]})
    assert sorted(t["key"] for t in store.tasks()) == ["a-1", "c-3", "d-4"]
    # tries and files are merged, not duplicated
    store.record({"tries": [{"key": "a-1", "try": 0, "start": 1.0}],
                  "files": [{"key": "a-1", "direction": "out", "url": "file:///x"}]})
    store.record({"tries": [{"key": "a-1", "try": 0, "end": 2.0, "worker": "w"}],
                  "files": [{"key": "a-1", "direction": "out", "url": "file:///x", "size": 3}]})
    assert [(r["start_time"], r["end_time"], r["worker"]) for r in store.tries("a-1")] == [(1.0, 2.0, "w")]
    assert [(f["url"], f["size"]) for f in store.files()] == [("file:///x", 3)]
    store.close()
    store.close()
    with pytest.raises(ValueError, match="closed"):
        store.tasks()


def test_a_block_of_calls_reads_as_rows_and_a_call_with_more_to_tell_gets_its_own(tmp_path):
    """A chunk's plain calls are one ``chunk_calls`` row; ``tasks`` shows a
    row per call, pending then done, and a call that later fails keeps its
    tid and arguments in a row of its own."""
    store = ProvenanceStore(str(tmp_path / "p.db"))
    block = CallBlock("f-5-tok", "f", "h1", 10.0, ["5", "6", "7"], ["a5", "a6", "a7"],
                      private=True)
    store.record({"blocks": [block]})
    rows = store.tasks()
    assert [(r["key"], r["tid"], r["args"], r["chunk_key"], r["chunk_index"], r["state"],
             r["submitted"], r["tries"], r["worker"]) for r in rows] == [
        (f"f-5-tok[{i}]", str(5 + i), f"a{5 + i}", "f-5-tok", i, "pending", 10.0, None, None)
        for i in range(3)]
    block.finish([0, 2], [11.0, 12.0, 13.0, 14.5], "tcp://h:1", "h", None)  # call 1: its own
    store.record({"blocks": [block],
                  "updates": [{"key": "f-5-tok[1]", "state": "failed", "exception": "boom",
                               "tries": 1, "worker": "tcp://h:1"}]})
    rows = {r["key"]: r for r in store.tasks()}
    assert [(r["tid"], r["args"], r["state"], r["started"], r["finished"], r["tries"],
             r["worker"], r["host"], r["exception"], r["duration"]) for r in rows.values()] == [
        ("5", "a5", "done", 11.0, 12.0, 1, "tcp://h:1", "h", None, 1.0),
        ("6", "a6", "failed", None, None, 1, "tcp://h:1", None, "boom", None),
        ("7", "a7", "done", 13.0, 14.5, 1, "tcp://h:1", "h", None, 1.5)]
    assert store.summary()["states"] == {"done": 2, "failed": 1}
    assert [f["tid"] for f in store.summary()["failures"]] == ["6"]
    assert store.tasks(state="done", app="f")[1]["key"] == "f-5-tok[2]"
    store.record({"deps": [("g-9-tok", "f-5-tok[2]")],
                  "tasks": [{"key": "g-9-tok", "tid": "9", "app": "g"}]})
    assert store.dependencies() == [("9", "7")]
    store.close()


def test_counts_from_the_blocks_tallies_are_those_of_the_tasks_view(tmp_path):
    """``summary`` and ``list_runs`` count from each block's tallies (not a
    row per call); what they give is what a GROUP BY over ``tasks`` gives:
    pending and finished blocks, a call of a block with a row of its own
    (failed, or done in its block and told again), plain rows."""
    base = tmp_path / "runinfo"
    run_id, path = new_run_dir(str(base))
    store = ProvenanceStore(os.path.join(path, DB_NAME))
    store.start_run({"run_id": run_id, "start": 0.0})
    done = CallBlock("f-0-t", "f", "h", 1.0, ["0", "1", "2"], ["a"] * 3, private=True)
    done.finish([0, 2], [1.0, 2.0, 2.0, 4.0], "tcp://w:1", "w", None)
    pending = CallBlock("g-3-t", "g", "h", 1.0, ["3", "4"], ["a"] * 2, private=True)
    store.record({"blocks": [done, pending],
                  "tasks": [{"key": "h-5-t", "tid": "5", "app": "h"}],
                  "updates": [{"key": "f-0-t[1]", "state": "failed", "exception": "E"},
                              {"key": "h-5-t", "state": "done", "started": 0.0,
                               "finished": 0.5}]})
    store.record({"updates": [{"key": "f-0-t[2]", "memo": "hit", "state": "memo"}]})
    expected = store._query(
        "SELECT app, state, count(*) AS n, sum(finished - started) AS total,"
        " count(finished - started) AS timed FROM tasks GROUP BY app, state")
    assert sorted((g["app"], g["state"], g["n"], g["total"] or 0.0, g["timed"])
                  for g in store._groups()) == \
        sorted((g["app"], g["state"], g["n"], g["total"] or 0.0, g["timed"]) for g in expected)
    summary = store.summary()
    assert summary["states"] == {"done": 2, "failed": 1, "memo": 1, "pending": 2}
    assert summary["apps"]["f"]["duration_total"] == 3.0  # the memo row kept its times
    assert [f["key"] for f in summary["failures"]] == ["f-0-t[1]"]
    store.close()
    (listed,) = list_runs(str(base))
    assert (listed["tasks"], listed["done"], listed["pending"], listed["failed"]) == (6, 2, 2, 1)


def test_a_version_1_database_is_renamed_when_opened_to_write(tmp_path):
    db = str(tmp_path / "p.db")
    with sqlite3.connect(db) as c:  # the version 1 table, as earlier releases made it
        c.execute("CREATE TABLE tasks (key TEXT PRIMARY KEY, tid TEXT, app TEXT, app_hash TEXT,"
                  " args TEXT, chunk_key TEXT, chunk_index INTEGER, state TEXT NOT NULL DEFAULT"
                  " 'pending', memo TEXT, tries INTEGER, submitted REAL, started REAL,"
                  " finished REAL, worker TEXT, host TEXT, exception TEXT, traceback TEXT,"
                  " exit_code INTEGER, stdout TEXT, stderr TEXT, nbytes INTEGER)")
        c.execute("INSERT INTO tasks (key, tid, app, state) VALUES ('a-1-t', '1', 'a', 'done')")
        c.execute("PRAGMA user_version = 1")
    with ProvenanceStore(db) as store:
        store.record({"tasks": [{"key": "b-2-t", "tid": "2", "app": "b"}]})
        assert [(t["key"], t["state"]) for t in store.tasks()] == [("a-1-t", "done"),
                                                                  ("b-2-t", "pending")]
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert c.execute("SELECT type FROM sqlite_master WHERE name = 'tasks'").fetchone() == \
            ("view",)


def _version_2_schema() -> str:
    """The schema as version 2 made it: no usage columns."""
    from daskflow.provenance import store

    added = "".join(f", {name} {kind}" for name, kind in store.USAGE_COLUMNS)
    schema = re.sub(r",\s*json_extract\(j\.value, '\$\[4\]'\).*?AS write_bytes", "",
                    store.SCHEMA.replace(added, ""), flags=re.S)
    assert "cpu_user" not in schema
    return schema


def test_a_version_2_database_gets_the_usage_columns_when_opened_to_write(tmp_path):
    db = str(tmp_path / "p.db")
    with sqlite3.connect(db) as c:
        c.executescript(_version_2_schema())
        c.execute("INSERT INTO call_rows (key, tid, app, state, started, finished)"
                  " VALUES ('a-1-t', '1', 'a', 'done', 0, 1)")
        c.execute("INSERT INTO chunk_calls (chunk_key, app, calls, n, n_done, seconds)"
                  " VALUES ('b-2-t', 'b', '[[\"2\", \"()\", 0, 1]]', 1, 1, 1.0)")
        c.execute("PRAGMA user_version = 2")
    with ProvenanceStore(db, readonly=True) as store:  # read as it is
        assert store.summary()["states"] == {"done": 2}
    with ProvenanceStore(db) as store:
        store.record({"updates": [{"key": "a-1-t", "cpu_user": 1.5, "peak_memory": 2048}]})
        rows = {t["key"]: t for t in store.tasks()}
        assert rows["a-1-t"]["cpu_user"] == 1.5 and rows["b-2-t[0]"]["cpu_user"] is None
        assert store.summary()["apps"]["a"]["peak_memory"] == 2048
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3


def test_a_version_1_database_is_read_as_it_is(tmp_path):
    base = tmp_path / "runinfo"
    run_id, path = new_run_dir(str(base))
    with sqlite3.connect(os.path.join(path, DB_NAME)) as c:  # as earlier releases wrote it
        c.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, script TEXT, user TEXT,"
                  " host TEXT, cwd TEXT, start_time REAL, end_time REAL, status TEXT,"
                  " profile TEXT, versions TEXT, scheduler TEXT, writer_pid INTEGER,"
                  " writer_host TEXT)")
        c.execute("INSERT INTO runs (run_id, start_time, end_time, status) VALUES (?, 0, 1,"
                  " 'failed')", (run_id,))
        c.execute("CREATE TABLE tasks (key TEXT PRIMARY KEY, tid TEXT, app TEXT, args TEXT,"
                  " state TEXT, memo TEXT, tries INTEGER, started REAL, finished REAL,"
                  " worker TEXT, exception TEXT, exit_code INTEGER)")
        c.executemany("INSERT INTO tasks (key, tid, app, state, exception) VALUES (?,?,?,?,?)",
                      [("a-1-t", "1", "a", "done", None), ("a-2-t", "2", "a", "failed", "E")])
        c.execute("PRAGMA user_version = 1")
    (listed,) = list_runs(str(base))
    assert (listed["status"], listed["tasks"], listed["failed"]) == ("failed", 2, 1)
    with ProvenanceStore(os.path.join(path, DB_NAME), readonly=True) as store:
        summary = store.summary()
    assert summary["states"] == {"done": 1, "failed": 1}
    assert [f["tid"] for f in summary["failures"]] == ["2"]


def test_readonly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no provenance database"):
        ProvenanceStore(str(tmp_path / "missing.db"), readonly=True)
    ProvenanceStore(str(tmp_path / "p.db")).close()
    with ProvenanceStore(str(tmp_path / "p.db"), readonly=True) as reader:
        assert reader.tasks() == [] and reader.runs() == []
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.record({"tasks": [{"key": "a", "tid": "1", "app": "a"}]})
    with sqlite3.connect(str(tmp_path / "p.db")) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3


# -- queries -------------------------------------------------------------------

def test_runs_and_tasks(run):
    (r,) = run.runs()
    assert r["run_id"] == "000" and r["script"] == "workflow.py" and r["status"] == "failed"
    assert r["versions"] == {"daskflow": "0.1.0", "dask": "2026.8.0"}
    assert r["duration"] == 10 and r["writer_pid"] == os.getpid()
    tids = [t["tid"] for t in run.tasks()]
    assert tids == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "10.1", "10.2"]
    assert [t["tid"] for t in run.tasks(state="failed")] == ["3", "4"]
    assert [t["tid"] for t in run.tasks(state=["memo", "cancelled"])] == ["2", "5"]
    assert [t["tid"] for t in run.tasks(app="simulate")] == ["1", "2"]
    assert run.tasks(state="done", app="analyze") == []
    squares = run.tasks(app="square")
    assert [(t["key"], t["chunk_key"], t["chunk_index"]) for t in squares] == \
        [(SQUARES[i], CHUNK, i) for i in range(4)]
    count = run.tasks(app="count")[0]
    assert count["exit_code"] == 2 and count["stdout"] == "count.out"
    assert count["worker"] == "tcp://w1" and count["host"] == "node1"
    assert run.tasks(app="generate")[0]["nbytes"] == 80


def test_dependencies_transitions_tries_files(run):
    assert run.dependencies() == [("1", "0"), ("2", "0"), ("3", "1"), ("3", "2"), ("5", "3"),
                                  ("7", "0"), ("10", "10.1"), ("10", "10.2")]
    assert (key("analyze", 3), key("simulate", 1)) in run.dependencies(by="key")
    states = [(t["start_state"], t["finish_state"]) for t in run.transitions(key("generate", 0))]
    assert states == [("released", "waiting"), ("waiting", "processing"), ("processing", "memory")]
    assert len(run.transitions()) == 13 + 11 + 11
    tries = run.tries(key("simulate", 1))
    assert [(t["try"], t["exception"], t["end_time"]) for t in tries] == \
        [(0, "OSError: flaky", T0 + 3), (1, None, T0 + 5)]
    assert {(f["key"], f["direction"]) for f in run.files()} == \
        {(key("generate", 0), "out"), (key("simulate", 1), "in"), (key("simulate", 1), "out")}


def test_summary(run):
    s = run.summary()
    assert s["run"]["run_id"] == "000" and s["n_tasks"] == 13
    assert s["states"] == {"done": 9, "memo": 1, "failed": 2, "cancelled": 1}
    sim = s["apps"]["simulate"]
    assert sim["total"] == 2 and sim["states"] == {"done": 1, "memo": 1}
    assert sim["memo_hits"] == 1 and sim["retried"] == 1
    assert sim["duration_total"] == pytest.approx(3) and sim["duration_mean"] == pytest.approx(3)
    assert s["apps"]["square"]["duration_mean"] == pytest.approx(0.5)
    assert s["apps"]["fib"]["duration_total"] == pytest.approx(10)
    assert s["apps"]["report"]["duration_mean"] is None
    assert [(f["tid"], f["app"], f["exit_code"]) for f in s["failures"]] == \
        [("3", "analyze", None), ("4", "count", 2)]
    assert s["failures"][0]["exception"].startswith("ValueError: bad input")


def test_list_runs(base):
    write_run(base)                                  # 000: ended
    os.mkdir(os.path.join(base, "001"))              # 001: no database
    _, path = new_run_dir(base)                      # 002: database, no run record
    ProvenanceStore(os.path.join(path, DB_NAME)).close()
    _, path = new_run_dir(base)                      # 003: live (this process writes it)
    live = ProvenanceStore(os.path.join(path, DB_NAME))
    live.start_run({"run_id": "003", "script": "live.py", "start": time.time()})
    live.record({"tasks": [{"key": "x-0", "tid": "0", "app": "x"}]})
    runs = {r["run_id"]: r for r in list_runs(base)}
    assert list(runs) == ["000", "001", "002", "003"]
    r = runs["000"]
    assert (r["status"], r["tasks"], r["done"], r["failed"], r["memo"], r["cancelled"]) == \
        ("failed", 13, 9, 2, 1, 1)
    assert r["script"] == "workflow.py" and r["duration"] == 10
    assert runs["001"]["status"] == "no database"
    assert runs["002"]["status"] == "unfinished" and runs["002"]["tasks"] == 0
    assert runs["003"]["status"] == "running" and runs["003"]["pending"] == 1
    assert runs["003"]["wal"]
    live.close()
    assert list_runs(os.path.join(base, "nothing")) == []
    assert run_status({"end_time": None, "writer_pid": 1, "writer_host": "elsewhere"}) == "unfinished"


# -- exports -------------------------------------------------------------------

def test_to_dot(run):
    dot = to_dot(run)
    assert dot.startswith("digraph daskflow {") and dot.rstrip().endswith("}")
    assert f'"{key("simulate", 1)}" [label="simulate 1", fillcolor="palegreen"' in dot
    assert f'"{key("analyze", 3)}" [label="analyze 3", fillcolor="salmon"' in dot
    assert f'"{SQUARES[2]}" [label="square 8"' in dot
    assert f'"{key("generate", 0)}" -> "{key("simulate", 1)}";' in dot
    assert dot.count(" -> ") == len(DEPS)
    assert dot.count("[label=") == len(TASKS)


def test_to_json(run):
    doc = to_json(run)
    json.dumps(doc)
    assert doc["run"]["run_id"] == "000"
    ids = {n["id"] for n in doc["nodes"]}
    assert len(ids) == len(TASKS)
    assert {(e["source"], e["target"]) for e in doc["edges"]} == {(d, k) for k, d in DEPS}
    node = next(n for n in doc["nodes"] if n["tid"] == "1")
    assert node["app"] == "simulate" and node["duration"] == 3 and node["tries"] == 2
    assert [f["direction"] for f in node["files"]] == ["in", "out"]


def _prov_ids(doc):
    ids = set()
    for kind in ("entity", "activity", "agent"):
        ids |= set(doc.get(kind, {}))
    return ids


PROV_REFS = {  # relation: the attributes naming an element, required or not
    "used": ("prov:activity", "prov:entity"),
    "wasGeneratedBy": ("prov:entity", "prov:activity"),
    "wasInformedBy": ("prov:informed", "prov:informant"),
    "wasDerivedFrom": ("prov:generatedEntity", "prov:usedEntity", "prov:activity"),
    "wasAssociatedWith": ("prov:activity", "prov:agent", "prov:plan"),
    "actedOnBehalfOf": ("prov:delegate", "prov:responsible"),
}


def test_to_prov_structure(run):
    doc = json.loads(json.dumps(to_prov(run)))
    assert doc["prefix"]["prov"] == "http://www.w3.org/ns/prov#" and "daskflow" in doc["prefix"]
    assert {"prefix", "activity", "entity", "agent", "used", "wasGeneratedBy",
            "wasInformedBy", "wasAssociatedWith"} <= set(doc)
    allowed = {"prefix", "entity", "activity", "agent", *PROV_REFS}
    assert set(doc) <= allowed
    ids = _prov_ids(doc)
    for kind, attrs in PROV_REFS.items():
        for rel_id, rel in doc.get(kind, {}).items():
            assert rel_id.startswith("_:")
            for a in attrs[:2]:
                assert rel[a] in ids, (kind, rel)
            for a in attrs[2:]:
                assert a not in rel or rel[a] in ids, (kind, rel)
    for qname in ids:
        assert qname.split(":", 1)[0] in doc["prefix"]
    acts = doc["activity"]
    assert len(acts) == len(TASKS)
    sim = acts["daskflow:task/" + key("simulate", 1)]
    assert sim["daskflow:app"] == "simulate" and sim["daskflow:tid"] == "1"
    assert sim["daskflow:state"] == "done" and sim["prov:startTime"].startswith("2023-11-14T")
    assert all(a.get("prov:startTime", "").endswith("+00:00") or "prov:startTime" not in a
               for a in acts.values())
    agent = doc["agent"]["daskflow:run/000"]
    assert agent["prov:type"]["$"] == "prov:SoftwareAgent"
    assert len(doc["wasAssociatedWith"]) == len(TASKS)
    # files: generated by generate, used by simulate 1
    gen = "daskflow:file/" + "file%3A%2F%2F%2Fdata%2Fgen.txt"
    assert doc["entity"][gen]["prov:location"] == "file:///data/gen.txt"
    assert {"prov:entity": gen, "prov:activity": "daskflow:task/" + key("generate", 0)}.items() <= \
        next(r for r in doc["wasGeneratedBy"].values() if r["prov:entity"] == gen).items()
    assert any(r["prov:entity"] == gen and r["prov:activity"] == "daskflow:task/" + key("simulate", 1)
               for r in doc["used"].values())
    # results: analyze 3 used the results of simulate 1 and 2 (a memo hit)
    used_by_analyze = {r["prov:entity"] for r in doc["used"].values()
                       if r["prov:activity"] == "daskflow:task/" + key("analyze", 3)}
    assert used_by_analyze == {"daskflow:result/" + key("simulate", 1),
                               "daskflow:result/" + key("simulate", 2)}
    # report 5 depends on failed analyze 3: informed, but no result was used
    assert any(r["prov:informed"] == "daskflow:task/" + key("report", 5)
               for r in doc["wasInformedBy"].values())
    assert "daskflow:result/" + key("analyze", 3) not in doc["entity"]
    assert len(doc["wasInformedBy"]) == len(DEPS)


def test_to_prov_loads_in_prov_library(run):
    prov_model = pytest.importorskip("prov.model")
    doc = prov_model.ProvDocument.deserialize(content=json.dumps(to_prov(run)), format="json")
    records = doc.get_records()
    assert len([r for r in records if isinstance(r, prov_model.ProvActivity)]) == len(TASKS)
    assert "wasInformedBy" in doc.get_provn()


# -- the CLI -------------------------------------------------------------------

@pytest.fixture
def cli():
    @click.group()
    def main():
        pass

    cli_provenance.register(main)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_cli_runs(cli, base):
    assert "no runs in" in cli("runs", "--dir", base).output
    write_run(base)
    os.mkdir(os.path.join(base, "001"))
    result = cli("runs", "--dir", base)
    assert result.exit_code == 0, result.output
    header, first, second = result.output.splitlines()
    assert header.split() == ["run", "script", "user@host", "start", "duration", "status", "tasks",
                              "done", "failed", "memo"]
    assert first.split()[:3] == ["000", "workflow.py", "alice@node1"]
    assert first.split()[-6:] == ["10.0s", "failed", "13", "9", "2", "1"]
    assert "no database" in second
    with dask.config.set({"daskflow.run-dir": base}):  # the default directory
        assert cli("runs").output == result.output


def test_cli_show(cli, base):
    write_run(base)
    result = cli("show", "0", "--dir", base)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "run 000  workflow.py  alice@node1  status: failed" in out
    assert "duration 10.0s" in out and "versions daskflow 0.1.0, dask 2026.8.0" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["app"][:8] == ["app", "tasks", "pending", "running", "done", "failed", "memo",
                                "cancelled"]
    assert lines["simulate"][:10] == ["simulate", "2", "0", "0", "1", "0", "1", "0", "1", "1"]
    assert lines["square"][-2:] == ["0.50s", "2.00s"]
    assert "failures (2):" in out
    assert f"analyze 3 ({key('analyze', 3)})" in out and "ValueError: bad input" in out
    assert "second line" in out and "[exit code 2" in out
    assert cli("show", "--dir", base).output == out  # "latest" by default
    assert cli("show", "-1", "--dir", base).output == out  # "-N" is no option


def test_cli_tasks(cli, base):
    write_run(base)
    out = cli("tasks", "latest", "--dir", base).output
    lines = out.splitlines()
    assert lines[0].split() == ["tid", "app", "state", "duration", "cpu_user", "cpu_sys",
                                "peak_mem", "read", "written", "tries", "worker", "exception"]
    assert len(lines) == 1 + len(TASKS)
    failed = cli("tasks", "000", "--state", "failed", "--dir", base).output.splitlines()[1:]
    assert [line.split()[:3] for line in failed] == [["3", "analyze", "failed"], ["4", "count", "failed"]]
    assert failed[0].rstrip().endswith("ValueError: bad input")
    sims = cli("tasks", "0", "--app", "simulate", "--app", "square", "--state", "memo",
               "--dir", base).output.splitlines()[1:]
    assert [line.split()[:3] for line in sims] == [["2", "simulate", "memo"]]
    assert cli("tasks", "0", "--app", "nope", "--dir", base).output == "no tasks\n"
    assert cli("tasks", "-1", "--state", "failed", "--dir", base).output.splitlines()[1:] == failed


def test_cli_graph(cli, base, tmp_path):
    write_run(base)
    dot = cli("graph", "0", "--dir", base).output
    assert dot.startswith("digraph daskflow") and dot.count(" -> ") == len(DEPS)
    assert cli("graph", "--dir", base, "-1").output == dot
    doc = json.loads(cli("graph", "0", "--format", "json", "--dir", base).output)
    assert len(doc["nodes"]) == len(TASKS) and len(doc["edges"]) == len(DEPS)
    out = tmp_path / "prov.json"
    result = cli("graph", "0", "--format", "prov", "-o", str(out), "--dir", base)
    assert result.exit_code == 0 and result.output == ""
    assert len(json.loads(out.read_text())["activity"]) == len(TASKS)


def test_cli_errors(cli, base):
    write_run(base)
    result = CliRunner().invoke(click.Group(commands=cli_provenance.COMMANDS),
                                ["show", "5", "--dir", base])
    assert result.exit_code == 1
    assert "no run '5'" in result.output and "available runs: 000" in result.output
    os.mkdir(os.path.join(base, "001"))
    result = CliRunner().invoke(click.Group(commands=cli_provenance.COMMANDS),
                                ["tasks", "1", "--dir", base])
    assert result.exit_code == 1 and "no provenance database" in result.output


# -- a killed run, concurrency, speed --------------------------------------------

KILLED_WRITER = """
import sys, time
from daskflow.provenance import ProvenanceStore
store = ProvenanceStore(sys.argv[1])
store.start_run({"run_id": "000", "script": "killed.py", "user": "bob", "host": "h",
                 "start": time.time()})
for b in range(3):
    keys = [f"work-{b * 100 + i}-tok" for i in range(100)]
    store.record({
        "tasks": [{"key": k, "tid": str(b * 100 + i), "app": "work", "submitted": time.time()}
                  for i, k in enumerate(keys)],
        "transitions": [(k, "released", "processing", time.time(), "w") for k in keys],
        "updates": [{"key": k, "state": "running", "started": time.time()} for k in keys]})
    print("committed", b, flush=True)
time.sleep(600)
"""


def test_killed_run_is_readable(base, tmp_path):
    run_id, path = new_run_dir(base)
    db = os.path.join(path, DB_NAME)
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), db], stdout=subprocess.PIPE, text=True)
    try:
        for b in range(3):
            assert proc.stdout.readline().strip() == f"committed {b}"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert os.path.getsize(db + "-wal") > 0  # the batches are in the WAL, not checkpointed
    (info,) = list_runs(base)
    assert info["status"] == "killed?" and info["wal"]
    assert info["tasks"] == 300 and info["running"] == 300 and info["end_time"] is None
    with ProvenanceStore(db, readonly=True) as store:
        s = store.summary()
        assert s["n_tasks"] == 300 and s["apps"]["work"]["states"] == {"running": 300}
        assert s["run"]["status"] == "killed?" and s["run"]["script"] == "killed.py"
        assert len(store.transitions()) == 300
    group = click.Group(commands=cli_provenance.COMMANDS)
    out = CliRunner().invoke(group, ["runs", "--dir", base]).output
    assert "killed?" in out.splitlines()[1]


def _write_many(store, n=10_000, batch=500):
    for start in range(0, n, batch):
        keys = [(f"app{i % 5}-{i}-tok", str(i), f"app{i % 5}") for i in range(start, start + batch)]
        t = T0 + start
        store.record({
            "tasks": [{"key": k, "tid": tid, "app": app, "args": "(1, 2)", "submitted": t,
                       "chunk_key": None, "index": None} for k, tid, app in keys],
            "deps": [(k, f"app{(i - 1) % 5}-{i - 1}-tok")
                     for i, (k, _, _) in enumerate(keys, start) if i],
            "transitions": [tr for k, _, _ in keys for tr in (
                (k, "released", "waiting", t, None), (k, "waiting", "processing", t, "w1"),
                (k, "processing", "memory", t + 1, "w1"), (k, "memory", "released", t + 2, None))],
            "updates": [{"key": k, "state": "done", "started": t, "finished": t + 1,
                         "worker": "w1", "nbytes": 28} for k, _, _ in keys],
        })


def test_writer_speed(tmp_path):
    store = ProvenanceStore(str(tmp_path / "p.db"))
    start = time.perf_counter()
    _write_many(store)
    elapsed = time.perf_counter() - start
    print(f"10,000 tasks, 40,000 transitions, 20 batches: {elapsed:.3f} s")
    assert elapsed < 5
    s = store.summary()
    assert s["n_tasks"] == 10_000 and s["states"] == {"done": 10_000}
    assert len(store.dependencies()) == 9_999
    store.close()


def test_reader_while_writer_records(tmp_path):
    db = str(tmp_path / "p.db")
    writer = ProvenanceStore(db)
    writer.start_run({"run_id": "000", "script": "big.py", "start": T0})
    errors: list[BaseException] = []

    def write():
        try:
            _write_many(writer)
            writer.end_run("000", T0 + 99, "completed")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    seen = []
    with ProvenanceStore(db, readonly=True) as reader:
        thread.start()
        while thread.is_alive():
            try:
                n = reader.summary()["n_tasks"]
                reader.tasks(state="done", app="app3")
                seen.append(n)
            except sqlite3.Error as exc:
                errors.append(exc)
                break
        thread.join()
        final = reader.summary()
    writer.close()
    assert not errors, errors
    assert final["n_tasks"] == 10_000 and final["run"]["status"] == "completed"
    assert seen == sorted(seen)                   # never goes back
    assert all(n % 500 == 0 for n in seen)        # a batch is one transaction
    print(f"{len(seen)} reads while writing")
    assert len(seen) > 1


def test_docs_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with open(DOCS) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) == 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, DOCS, "exec"), namespace)
    out = capsys.readouterr().out
    assert "1 fit ValueError: singular matrix" in out and "[('1', '0')]" in out
    assert "000 failed 2 1 1 0" in out and "digraph daskflow {" in out


def test_file_digests_are_remembered_until_the_file_changes(tmp_path):
    import hashlib
    import os

    from daskflow.provenance.report import sha256_file

    path = tmp_path / "data.bin"
    path.write_bytes(b"first")
    first = sha256_file(str(path))
    assert first == hashlib.sha256(b"first").hexdigest()
    os.link(path, tmp_path / "link.bin")  # a link to the same content: same digest
    assert sha256_file(str(tmp_path / "link.bin")) == first
    path.write_bytes(b"other")
    os.utime(path, ns=(1, 1))  # a new mtime whatever the clock's resolution
    assert sha256_file(str(path)) == hashlib.sha256(b"other").hexdigest()
    assert sha256_file(str(tmp_path / "missing")) is None
