"""AppFuture is a distributed.Future: Dask's tools accept it, and it adds
Parsl's attributes, kept results and batched fetching."""

from __future__ import annotations

import concurrent.futures
import threading

import distributed
from distributed import as_completed, wait
import pytest
from waiting import until

import daskflow
from daskflow import python_app
from daskflow.client.futures import AppFuture


@python_app
def inc(x):
    return x + 1


@python_app(batch=False)
def inc_alone(x):
    return x + 1


@python_app
def sleepy(seconds, value=None):
    import time
    time.sleep(seconds)
    return value


def test_result_exception_done(client):
    f = inc(1)
    assert f.result(timeout=30) == 2
    assert f.done()
    assert f.exception() is None
    assert f.status == "finished"


def test_result_timeout(client):
    f = sleepy(1)
    with pytest.raises(TimeoutError):
        f.result(timeout=0.2)
    assert f.result(timeout=30) is None


@python_app
def blocked(event_name):
    distributed.Event(event_name).wait(30)


def test_cancel(client):
    """Cancelled at once, wherever the call is; its thread, blocked inside a
    C call here, is interrupted when that call returns (tests/test_cancel.py)."""
    gate = distributed.Event()
    f = blocked(gate.name)
    f.cancel()
    assert f.cancelled()
    with pytest.raises(concurrent.futures.CancelledError):
        f.result(timeout=10)
    gate.set()


def test_add_done_callback(client):
    seen = []
    done = threading.Event()
    f = inc(41)

    def callback(fut):
        seen.append(fut.result())
        done.set()

    f.add_done_callback(callback)
    assert done.wait(30)
    assert seen == [42]


def test_works_with_wait_as_completed_and_gather(client):
    fs = [inc(i) for i in range(10)]
    done, not_done = wait(fs, timeout=30)
    assert len(done) == 10 and not not_done
    assert sorted(f.result() for f in as_completed(fs)) == list(range(1, 11))
    assert sorted(r for _, r in as_completed(fs, with_results=True)) == list(range(1, 11))
    assert client.gather(fs) == list(range(1, 11))
    assert [client.gather(f) for f in fs] == list(range(1, 11))
    g = client.submit(lambda xs: sum(xs), fs, pure=False)
    assert g.result() == sum(range(1, 11))


def test_unpacked_calls_are_tasks_of_their_own_for_any_dask_client(client):
    """With ``batch=False`` each call is one Dask task, so the base class's
    gather (what a plain ``distributed.Client`` does) gives each call's value."""
    fs = [inc_alone(i) for i in range(10)]
    assert len({f.key for f in fs}) == 10
    assert distributed.Client.gather(client, fs) == list(range(1, 11))


def test_is_an_argument_of_client_submit(client):
    f = inc(1)
    g = client.submit(lambda x: x * 10, f)
    assert g.result(timeout=30) == 20


def test_plain_dask_future_is_a_dependency_of_an_app(client):
    raw = client.submit(lambda: 5)
    assert inc(raw).result() == 6


def test_result_is_kept_after_first_fetch(client, monkeypatch):
    f = inc(1)
    assert f.result() == 2
    calls = []
    monkeypatch.setattr(distributed.Client, "gather",
                        lambda *a, **k: calls.append(a) or [])
    for _ in range(100):
        assert f.result() == 2
    assert calls == []  # no round trip once the value is known


def test_finished_siblings_are_fetched_in_one_round_trip(client, monkeypatch):
    fs = inc.map(range(50))
    wait(fs)
    batches = []
    real_gather = distributed.Client.gather

    def counting_gather(self, futures, *args, **kwargs):
        batches.append(len(futures))
        return real_gather(self, futures, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "gather", counting_gather)
    assert [f.result() for f in fs] == list(range(1, 51))
    assert batches == [len({f.key for f in fs})]  # one task per call, or per chunk


def test_prefetch_can_be_turned_off(client, monkeypatch):
    fs = inc.map(range(5))
    wait(fs)
    batches = []
    real_gather = distributed.Client.gather
    monkeypatch.setattr(distributed.Client, "gather",
                        lambda self, futs, *a, **k: batches.append(len(futs))
                        or real_gather(self, futs, *a, **k))
    import dask
    with dask.config.set({"daskflow.result-prefetch": 0}):
        assert [f.result() for f in fs] == [1, 2, 3, 4, 5]
    assert batches == [1] * len({f.key for f in fs})


def test_dropped_futures_release_their_tasks(client):
    f = inc(1)
    key = f.key
    f.result()
    del f
    until(lambda: key not in client.futures, "the dropped future's task was not released",
          timeout=10, interval=0.05)


def test_pickled_appfuture_is_a_plain_future_reference(client):
    import pickle
    f = inc(1)
    f.result()
    g = client.submit(lambda futs: futs[0] + 1, [f])
    assert g.result() == 3
    assert pickle.loads(pickle.dumps(f)).key == f.key


def test_repr_names_app_and_tid(client):
    f = inc(1)
    f.result()
    assert f"<AppFuture inc tid={f.tid}: finished" in repr(f)
    assert "AppFuture" in f._repr_html_()


def test_top_level_gather_helper(client):
    fs = inc.map(range(3), chunksize=2) + [inc(10)]
    assert daskflow.gather(fs) == [1, 2, 3, 11]


def test_appfuture_class_is_exported():
    assert daskflow.AppFuture is AppFuture


def test_prefetch_line_does_not_grow_with_dropped_futures(client, monkeypatch):
    from daskflow.client.futures import Line
    from daskflow.client.session import session_of

    @python_app
    def dropped(x):
        return x

    monkeypatch.setattr(Line, "sweep_at", 100)
    line = session_of(client).lines["dropped"]
    kept = dropped.map(range(10))
    for _ in range(4):
        fs = dropped.map(range(150))
        wait(fs)
        del fs
    assert len(line) <= 200
    assert all(any(ref() is f for ref in line) for f in kept)
