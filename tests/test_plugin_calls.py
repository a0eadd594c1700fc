"""The provenance plugin learns of calls from the client, not from the task.

It records a call from the description the client attaches to the call's
task (``provenance.calls``), the task's dependency keys and transitions.
The task body (``worker.task.execute`` and friends) may be wrapped, renamed
or given other parameters: the rows stay the same.
"""

from __future__ import annotations

import os
import sqlite3
import time

import dask
import distributed
import pytest
from distributed.diagnostics.plugin import SchedulerPlugin
from waiting import until

import daskflow
from daskflow import File, bash_app, python_app
from daskflow.client import apps
from daskflow.client.session import session_of
from daskflow.provenance.calls import ANNOTATION
from daskflow.provenance.store import ProvenanceStore
from daskflow.worker import task


@python_app
def add(x, y=0):
    return x + y


@python_app
def pick(x, y=None):
    return x


@python_app
def fails(x):
    raise ValueError(f"no {x}")


@python_app
def name_of(file):
    return os.path.basename(file.filepath)


@bash_app
def write(text, outputs=(), stdout=None):
    return f"printf {text} > {outputs[0]}"


# Task bodies of another shape: what a refactoring of worker/task.py might do.
def wrapped_execute(*parts, **named):
    return task.execute(*parts, **named)


def wrapped_execute_chunk(*parts, **named):
    return task.execute_chunk(*parts, **named)


def wrapped_file_ready(*parts, **named):
    return task.file_ready(*parts, **named)


def _workflow(base) -> None:
    """Calls of every kind the plugin records: plain, with futures (nested
    too), chunked, using a chunked call, bash with an output File and a
    stream, a failure and its dependent."""
    a = add(1, 2)
    b = pick(a, y=[a, {"k": a}])
    chunked = add.map([1, 2, 3], [10, 20, 30], chunksize=2)
    c = add(chunked[2], 5)
    w = write("hi", outputs=[File(str(base / "out.txt"))], stdout=str(base / "w.out"))
    d = name_of(w.outputs[0])
    f = fails(3)
    g = add(f)
    distributed.wait([a, b, c, d, f, g, *chunked])


def _recorded(cluster, base, name: str) -> tuple[list, set]:
    """Run the workflow in a session of its own; its rows (tasks, edges),
    with the session's token taken out of every text."""
    with dask.config.set({"daskflow.run-dir": str(base / name),
                          "daskflow.provenance.record-arguments": True}):
        with daskflow.Client(cluster, set_as_default=False) as client, client.as_current():
            _workflow(base / name)
            session = session_of(client)
            token, run_dir = session.token, session.run_dir
    db = os.path.join(run_dir, "provenance.db")
    with ProvenanceStore(db, readonly=True) as store:
        until(lambda: store.runs()[0]["end_time"] is not None, f"the run in {db} ended")
        tasks, edges = store.tasks(), store.dependencies(by="key")

    def plain(text):
        if text is None:
            return None
        return str(text).replace(token, "TOKEN").replace(str(base / name), "BASE")

    columns = ("key", "tid", "app", "app_hash", "args", "chunk_key", "chunk_index", "state",
               "memo", "tries", "exit_code", "stdout", "exception")
    rows = [tuple(plain(t.get(c)) for c in columns) for t in tasks]
    return rows, {(plain(a), plain(b)) for a, b in edges}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1,
                                  dashboard_address=":0") as cluster:
        yield cluster


def test_rows_do_not_depend_on_the_task_body(cluster, tmp_path, monkeypatch):
    base, base_edges = _recorded(cluster, tmp_path, "plain")
    monkeypatch.setattr(apps, "execute", wrapped_execute)
    monkeypatch.setattr(apps, "execute_chunk", wrapped_execute_chunk)
    monkeypatch.setattr(apps, "file_ready", wrapped_file_ready)
    rows, edges = _recorded(cluster, tmp_path, "wrapped")
    assert rows == base and edges == base_edges
    by_key = {r[0]: r for r in rows}
    assert len(rows) == 11  # 7 calls, 3 chunked calls (their chunks have no rows), 1 output
    assert {r[2] for r in rows} == {"add", "pick", "fails", "write", "name_of", "output"}
    # futures are shown by key; a chunked call as its chunk and index
    b = next(r for r in rows if r[1] == "1")
    assert b[4] == ("((<future add-0-TOKEN>,), {'y': [<future add-0-TOKEN>, "
                    "{'k': <future add-0-TOKEN>}]})")
    assert ("pick-1-TOKEN", "add-0-TOKEN") in edges
    assert ("add-5-TOKEN", "add-4-TOKEN[0]") in edges  # chunked[2]: 2nd chunk, 1st call
    assert by_key["add-5-TOKEN"][4] == "((<future add-4-TOKEN[0]>, 5), {})"
    assert by_key["add-4-TOKEN[0]"][5:8] == ("add-4-TOKEN", "0", "done")
    assert by_key["add-2-TOKEN[1]"][4:8] == ("((2, 20), {})", "add-2-TOKEN", "1", "done")
    assert by_key["write-6-TOKEN"][10:12] == ("0", "BASE/w.out")
    assert ("write-output-6.0-TOKEN", "write-6-TOKEN") in edges
    assert ("name_of-7-TOKEN", "write-output-6.0-TOKEN") in edges
    assert by_key["fails-8-TOKEN"][7:] == ("failed", None, "1", None, None, "ValueError('no 3')")
    assert by_key["add-9-TOKEN"][-1] == "dependency fails tid 8 failed"


def test_the_plugin_reads_no_task_spec():
    """What the plugin knows of a task comes from the client's description,
    its dependency keys and its transitions: never its function or
    arguments (``run_spec``), nor dask's private task classes."""
    from daskflow.provenance import plugin

    source = open(plugin.__file__).read()
    for private in ("run_spec", "_task_spec", "execute", "__name__"):
        assert private not in source, f"provenance/plugin.py uses {private}"


class _Annotations(SchedulerPlugin):
    """Keeps the annotation names each new task came with."""

    name = "test-annotations-seen"

    def __init__(self):
        self.seen: dict = {}

    def update_graph(self, scheduler, *, annotations=None, **kwargs) -> None:
        for name, by_key in (annotations or {}).items():
            for key in by_key:
                self.seen.setdefault(key, set()).add(name)


def test_calls_are_described_only_while_recorded(cluster, tmp_path):
    """Without provenance a call's task carries no description (nothing to
    build, nothing to ship); with it, every call of its session does."""
    keys = {}
    with distributed.Client(cluster) as plain:
        plain.register_plugin(_Annotations())
    for enabled in (False, True):
        with dask.config.set({"daskflow.run-dir": str(tmp_path),
                              "daskflow.provenance.enabled": enabled}):
            with daskflow.Client(cluster, set_as_default=False) as client, \
                    client.as_current():
                futures = [add(1), *add.map([2, 3]), *add.map([4, 5], chunksize=2)]
                distributed.wait(futures)
                keys[enabled] = {f.key for f in futures}
    seen = cluster.scheduler.plugins[_Annotations.name].seen
    assert all(ANNOTATION not in seen.get(key, ()) for key in keys[False])
    assert all(ANNOTATION in seen.get(key, ()) for key in keys[True]), seen


@python_app
def odd_only(x):
    if x % 2 == 0:
        raise ValueError(f"{x} is even")
    return x


def test_a_chunk_of_plain_calls_is_one_row_and_its_failed_call_one_more(cluster, tmp_path):
    """A chunk's plain calls are stored together (``chunk_calls``); the call
    that failed has a row of its own; ``tasks`` reads them all alike, each
    with its tid, arguments digest, times and worker."""
    with dask.config.set({"daskflow.run-dir": str(tmp_path)}):
        with daskflow.Client(cluster, set_as_default=False) as client, client.as_current():
            futures = odd_only.map([1, 2, 3, 5], chunksize=4)
            distributed.wait(futures)
            run_dir = session_of(client).run_dir
    db = os.path.join(run_dir, "provenance.db")
    with ProvenanceStore(db, readonly=True) as store:
        until(lambda: store.runs()[0]["end_time"] is not None, f"the run in {db} ended")
        rows = store.tasks(app="odd_only")
        assert store.runs()[0]["status"] == "failed"
    assert [(r["chunk_index"], r["state"], r["tries"]) for r in rows] == [
        (0, "done", 1), (1, "failed", 1), (2, "done", 1), (3, "done", 1)]
    assert [r["tid"] for r in rows] == [str(int(rows[0]["tid"]) + i) for i in range(4)]
    assert all(r["args"].startswith("hmac-sha256:") for r in rows)
    assert len({r["args"] for r in rows}) == 4
    assert all(r["worker"] and r["submitted"] and r["started"] <= r["finished"]
               for r in rows if r["state"] == "done")
    assert "2 is even" in rows[1]["exception"]
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM chunk_calls").fetchone() == (1,)
        assert c.execute("SELECT key FROM call_rows WHERE app = 'odd_only'").fetchall() == \
            [(rows[1]["key"],)]


def test_a_settle_waits_for_every_call_the_client_described(cluster, tmp_path, logs):
    """``daskflow run``'s last look at a run (a settle through a handler)
    may overtake the client's update-graph messages: the client counts the
    calls it sent with descriptions, and the settle waits for as many, then
    gives up after its bound and says so."""
    with dask.config.set({"daskflow.run-dir": str(tmp_path)}):
        with daskflow.Client(cluster, set_as_default=False) as client, client.as_current():
            distributed.wait([add(i) for i in range(20)] + add.map(range(5), chunksize=5))
            session = session_of(client)
            assert session.described >= 2  # tasks sent, each with its description

            def settled(described):
                return client.sync(client.scheduler.daskflow_workflow, run_id=session.token,
                                   settle=True, described=described)

            snap = settled(session.described)
            assert snap["apps"]["add"]["done"] == 25 and not logs.records
            started = time.monotonic()
            settled(session.described + 1)  # one more than ever went: bounded
            assert 4 < time.monotonic() - started < 30
            assert f"{session.described} of the {session.described + 1} calls" in logs.text
