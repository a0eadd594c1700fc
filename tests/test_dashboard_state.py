"""The live aggregate of a run (dashboard.state): counts, chunks, edges,
failures, bounds; and the same aggregate fed by the real plugin, read
through the scheduler handler."""

from __future__ import annotations

import pytest

import daskflow
from daskflow import python_app
from daskflow.dashboard.state import (FAILURES, INTERVALS, WorkflowRegistry, WorkflowState,
                                      app_of_key)
from daskflow.provenance.blocks import CallBlock


def _task(key, app, tid, chunk=None, index=None):
    return {"key": key, "tid": str(tid), "app": app, "app_hash": None, "args": "()",
            "submitted": 0.0, "chunk_key": chunk, "index": index}


def test_counts_follow_each_task_through_its_states():
    state = WorkflowState({"run_id": "007", "start": 0.0})
    state.apply({"tasks": [_task("a-0-t", "a", 0), _task("b-1-t", "b", 1)],
                 "deps": [("b-1-t", "a-0-t")]})
    assert state.snapshot()["apps"]["a"]["pending"] == 1
    state.apply({"updates": [{"key": "a-0-t", "state": "running", "started": 1.0}]})
    assert state.snapshot()["apps"]["a"]["running"] == 1
    state.apply({"updates": [{"key": "a-0-t", "state": "done", "started": 1.0, "finished": 3.5,
                              "worker": "tcp://w1"},
                             {"key": "b-1-t", "state": "failed", "started": 4.0, "finished": 4.5,
                              "worker": "tcp://w2", "exception": "ValueError: bad"}]})
    snap = state.snapshot(intervals=True)
    assert snap["apps"]["a"] == {"pending": 0, "running": 0, "done": 1, "failed": 0, "memo": 0,
                                 "cancelled": 0, "total": 1, "compute": 2.5}
    assert snap["apps"]["b"]["failed"] == 1 and snap["n_failed"] == 1
    assert snap["edges"] == [["a", "b", 1]]
    assert [f["message"] for f in snap["failures"]] == ["ValueError: bad"]
    assert snap["intervals"] == [["tcp://w1", 1.0, 3.5, "a", "0", "done"],
                                 ["tcp://w2", 4.0, 4.5, "b", "1", "failed"]]
    # the same final state again (a memo report after the transition) counts once
    version = snap["version"]
    state.apply({"updates": [{"key": "a-0-t", "state": "done"}]})
    assert state.snapshot()["apps"]["a"]["done"] == 1 and state.version == version + 1


def test_chunk_calls_run_with_their_chunk_and_leave_with_it():
    state = WorkflowState({"run_id": "1"})
    state.apply({"tasks": [_task(f"c-9-t[{i}]", "sq", i, chunk="c-9-t", index=i)
                           for i in range(3)]})
    state.apply({"transitions": [("c-9-t", "waiting", "processing", 1.0, "tcp://w")]})
    assert state.snapshot()["apps"]["sq"]["running"] == 3
    state.apply({"updates": [{"key": "c-9-t[0]", "state": "done", "started": 1, "finished": 2},
                             {"key": "c-9-t[1]", "state": "failed", "exception": "E: x"}]})
    # forgotten before the last call reported: it never finished
    state.apply({"transitions": [("c-9-t", "memory", "forgotten", 3.0, None)]})
    snap = state.snapshot()["apps"]["sq"]
    assert (snap["done"], snap["failed"], snap["cancelled"], snap["total"]) == (1, 1, 1, 3)
    assert state.sizes()["tasks"] == 0 and state.sizes()["chunks"] == 0


def test_a_block_of_plain_calls_counts_like_its_rows():
    """A chunk's plain calls come as one ``CallBlock``: pending, running
    with the chunk, done when it carries their times (a call reported on
    its own follows its own update); a block seen twice counts once."""
    state = WorkflowState({"run_id": "1"})
    block = CallBlock("c-4-t", "sq", "h", 0.0, ["4", "5", "6"], ["()"] * 3)
    state.apply({"blocks": [block]})
    assert state.snapshot()["apps"]["sq"]["pending"] == 3
    state.apply({"transitions": [("c-4-t", "waiting", "processing", 1.0, "tcp://w")]})
    assert state.snapshot()["apps"]["sq"]["running"] == 3
    block.finish([0, 2], [1.0, 2.0, 2.0, 2.5], "tcp://w", "w", None)
    state.apply({"blocks": [block],
                 "updates": [{"key": "c-4-t[1]", "state": "failed", "exception": "E: x"}]})
    state.apply({"blocks": [block]})
    snap = state.snapshot(intervals=True)
    assert {k: v for k, v in snap["apps"]["sq"].items() if v} == \
        {"done": 2, "failed": 1, "total": 3, "compute": 1.5}
    assert snap["intervals"] == [["tcp://w", 1.0, 2.0, "sq", "4", "done"],
                                 ["tcp://w", 2.0, 2.5, "sq", "6", "done"]]
    state.apply({"updates": [{"key": "c-4-t[2]", "state": "memo"}]})  # done, then told again
    assert {k: v for k, v in state.snapshot()["apps"]["sq"].items() if v} == \
        {"done": 1, "failed": 1, "memo": 1, "total": 3, "compute": 1.5}
    assert state.sizes()["tasks"] == 2  # the two calls with entries of their own
    state.apply({"transitions": [("c-4-t", "memory", "forgotten", 3.0, None)]})
    assert state.sizes()["tasks"] == 0 and state.sizes()["chunks"] == 0


def test_memo_hits_and_released_tasks():
    state = WorkflowState({"run_id": "1"})
    state.apply({"tasks": [_task("m-0-t", "m", 0), _task("m-1-t", "m", 1)],
                 "updates": [{"key": "m-0-t", "state": "memo", "memo": "hit", "started": 1,
                              "finished": 1}]})
    state.apply({"transitions": [("m-1-t", "waiting", "forgotten", 2.0, None)]})
    snap = state.snapshot(intervals=True)
    assert snap["apps"]["m"]["memo"] == 1 and snap["apps"]["m"]["cancelled"] == 1
    assert snap["intervals"] == []  # a cache hit did not run


def test_app_of_key():
    assert app_of_key("my-app-12-0123abcd") == "my-app"
    assert app_of_key("sq-3-0123abcd[7]") == "sq"
    assert app_of_key("plain") == "plain"


def test_100k_tasks_keep_the_drawn_parts_bounded():
    """What the page draws is bounded however many tasks the run has; the
    per-task map empties as the scheduler forgets tasks."""
    state = WorkflowState({"run_id": "big"})
    n = 100_000
    for start in range(0, n, 5000):
        keys = [f"app{i % 7}-{i}-tok" for i in range(start, start + 5000)]
        state.apply({"tasks": [_task(k, f"app{i % 7}", i) for i, k in
                               zip(range(start, start + 5000), keys)],
                     "deps": [(k, f"app{(i - 1) % 7}-{i - 1}-tok") for i, k in
                              zip(range(start, start + 5000), keys) if i],
                     "updates": [{"key": k, "state": "failed" if i % 100 == 0 else "done",
                                  "started": i, "finished": i + 1.0, "worker": f"w{i % 4}",
                                  "exception": "E: x" * (i % 100 == 0)}
                                 for i, k in zip(range(start, start + 5000), keys)]})
    sizes = state.sizes()
    assert sizes["intervals"] == INTERVALS and sizes["failures"] == FAILURES
    assert sizes["apps"] == 7 and sizes["edges"] == 7 and sizes["tasks"] == n
    snap = state.snapshot(intervals=True)
    assert sum(a["total"] for a in snap["apps"].values()) == n
    assert snap["n_failed"] == n // 100
    assert len(snap["intervals"]) == INTERVALS and len(snap["failures"]) == FAILURES
    state.apply({"transitions": [(f"app{i % 7}-{i}-tok", "memory", "forgotten", 0, None)
                                 for i in range(n)]})
    assert state.sizes()["tasks"] == 0
    assert sum(a["done"] for a in state.snapshot()["apps"].values()) == n - n // 100
    # a run that ended keeps its counts, not its tasks (the registry keeps finished runs)
    state.apply({"tasks": [_task("late-0-tok", "late", 0)]})
    state.ended(1.0, "completed")
    assert state.sizes()["tasks"] == 0 and state.snapshot()["apps"]["late"]["pending"] == 1


def test_registry_prefers_the_newest_live_run_and_forgets_old_finished_ones():
    registry = WorkflowRegistry(keep=2)
    first, second, third = (WorkflowState({"run_id": r}, token=r + "tok") for r in "123")
    registry.add(first)
    registry.add(second)
    second.ended(1.0, "completed")
    assert registry.get() is first and registry.get("2") is second
    registry.add(third)  # the finished run leaves first
    assert list(registry.runs) == ["1tok", "3tok"] and registry.get() is third


# ---------------------------------------------------------------- live, real plugin
@python_app
def st_square(x):
    return x * x


@python_app
def st_sum(*xs):
    return sum(xs)


@python_app
def st_fail(i):
    raise ValueError(f"state test failure {i}")


@python_app(cache=True)
def st_cached(x):
    return x + 1


def test_the_plugin_keeps_the_live_state_of_its_run(client):
    """A real run on the test cluster, read through the scheduler handler."""
    squares = [st_square(i) for i in range(6)]
    total = st_sum(*squares)
    chunked = st_square.map(range(20), chunksize=5)
    fails = [st_fail(i) for i in range(3)]
    cached = [st_cached(100 + i) for i in range(2)]
    assert total.result() == 55 and len(daskflow.gather(chunked)) == 20
    assert [f.exception() is not None for f in fails] == [True] * 3
    daskflow.gather(cached)
    again = [st_cached(100 + i) for i in range(2)]  # same session: answered by the first ones
    daskflow.gather(again)
    token = daskflow.client.session.session_of(client).token
    snap = client.sync(client.scheduler.daskflow_workflow, run_id=token, settle=True)
    apps = snap["apps"]
    assert apps["st_square"]["done"] == 26 and apps["st_square"]["total"] == 26
    assert apps["st_sum"]["done"] == 1
    assert apps["st_fail"]["failed"] == 3
    assert apps["st_cached"]["done"] + apps["st_cached"]["memo"] == 4
    assert apps["st_cached"]["memo"] >= 2
    edges = {tuple(e) for e in snap["edges"]}  # msgpack turns lists into tuples
    assert ("st_square", "st_sum", 6) in edges
    assert ("st_cached", "st_cached", 2) in edges  # in-session hits point at their original
    messages = sorted(f["message"] for f in snap["failures"] if f["app"] == "st_fail")
    assert messages == [f"ValueError('state test failure {i}')" for i in range(3)]
    assert snap["run_id"] == daskflow.client.session.session_of(client).run_id
    with pytest.raises(KeyError):
        snap["intervals"]  # only on request
