"""Values that cannot travel fail loudly, at once, naming the call.

A value a worker cannot serialize used to stay in its memory as if fine: the
task was ``done`` and a dependent on another worker waited for ever. An app
function a worker cannot unpickle (its module exists only on the driver)
took the worker down instead of failing the call. Real worker processes."""

from __future__ import annotations

import sqlite3
import sys
import threading

import dask
import pytest

from daskflow import python_app
from daskflow.errors import (AppNotLoadable, ArgumentNotLoadable, DependencyError,
                             UnserializableResult)

from waiting import until


@python_app
def mklock(i):
    return threading.Lock()


@python_app
def pair(a, b):
    return "never"


@python_app
def locks_in_a_list(n):
    return [1, threading.Lock()][:n]


def _states(client, keys) -> dict:
    """The provenance states of ``keys`` in the session's run (once written)."""
    path = f"{client._daskflow_session.run_dir}/provenance.db"
    with sqlite3.connect(path) as db:
        rows = db.execute(f"SELECT key, state, exception FROM tasks WHERE key IN "
                          f"({','.join('?' * len(keys))})", keys).fetchall()
    return {key: (state, exception) for key, state, exception in rows}


def test_unserializable_values_on_two_workers_fail_instead_of_hanging(client):
    """The issue's case: pair(mklock(0), mklock(1)) with the two locks made on
    different workers. Before, pair waited for ever; now everything fails
    within the deadline, each error naming its app, task id and type."""
    workers = sorted(client.scheduler_info()["workers"])
    assert len(workers) == 2
    with dask.annotate(workers=[workers[0]], allow_other_workers=False):
        a = mklock(0)
    with dask.annotate(workers=[workers[1]], allow_other_workers=False):
        b = mklock(1)
    p = pair(a, b)
    for f in (a, b):
        with pytest.raises(UnserializableResult) as info:
            f.result(timeout=60)  # the deadline: a hang fails the test
        text = str(info.value)
        assert f"app 'mklock' (tid {f.tid})" in text and "_thread.lock" in text
        assert isinstance(info.value, TypeError)
    with pytest.raises(DependencyError, match="'mklock'"):
        p.result(timeout=60)
    assert client.who_has([a, b]) == {a.key: (), b.key: ()}  # never kept as done
    keys = [a.key, b.key, p.key]
    until(lambda: {s for s, _ in _states(client, keys).values()} == {"failed"},
          "the three calls recorded as failed", timeout=30)
    states = _states(client, keys)
    assert "UnserializableResult" in states[a.key][1]
    assert states[p.key][1] == f"dependency mklock tid {b.tid} failed" \
        or states[p.key][1] == f"dependency mklock tid {a.tid} failed"


def test_one_unserializable_value_names_the_call(client):
    f = locks_in_a_list(2)
    with pytest.raises(UnserializableResult, match=r"'locks_in_a_list' \(tid \d+\).*list"):
        f.result(timeout=60)
    assert locks_in_a_list(1).result(timeout=60) == [1]


def test_unserializable_value_in_a_chunk_fails_only_its_call(client):
    futures = locks_in_a_list.map([1, 2, 1], chunksize=3)
    assert futures[0].result(timeout=60) == [1]
    with pytest.raises(UnserializableResult, match="locks_in_a_list"):
        futures[1].result(timeout=60)
    assert futures[2].result(timeout=60) == [1]


def test_app_whose_module_only_the_driver_has_fails_naming_it(client, tmp_path, monkeypatch):
    """The reverse way: a function the worker cannot unpickle. The call fails
    with AppNotLoadable (the worker stays up), and its dependents too."""
    (tmp_path / "driver_only_mod.py").write_text(
        "import daskflow\n\ndef only_here(x):\n    return x\n\n"
        "app = daskflow.python_app(only_here)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers started without it
    import driver_only_mod

    try:
        f = driver_only_mod.app(1)
        with pytest.raises(AppNotLoadable) as info:
            f.result(timeout=60)
        assert f"app 'only_here' (tid {f.tid})" in str(info.value)
        assert "driver_only_mod" in str(info.value)
        with pytest.raises(DependencyError, match="only_here"):
            pair(f, 2).result(timeout=60)
        ok = python_app(lambda x: x + 1)
        assert ok(1).result(timeout=60) == 2  # the workers are still there
    finally:
        sys.modules.pop("driver_only_mod", None)


@python_app
def show(x):
    return f"{type(x).__name__}:{x.value}"


def test_argument_whose_module_only_the_driver_has_fails_its_call(client, tmp_path,
                                                                  monkeypatch):
    """An argument the worker cannot unpickle once closed every worker that
    received the task, in turn. Now its own call fails with
    ArgumentNotLoadable naming app, tid and type; the workers stay up, and a
    map over such values fails each call alone."""
    (tmp_path / "driver_only_args.py").write_text(
        "class Thing:\n    def __init__(self, value):\n        self.value = value\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers started without it
    import driver_only_args

    try:
        workers = set(client.scheduler_info()["workers"])
        f = show(driver_only_args.Thing(3))
        with pytest.raises(ArgumentNotLoadable) as info:
            f.result(timeout=60)
        text = str(info.value)
        assert f"app 'show' (tid {f.tid})" in text
        assert "driver_only_args.Thing" in text and "driver_only_args" in text
        with pytest.raises(DependencyError, match="show"):
            pair(f, 2).result(timeout=60)
        many = show.map([driver_only_args.Thing(i) for i in range(3)], chunksize=2)
        for g in many:
            with pytest.raises(ArgumentNotLoadable):
                g.result(timeout=60)
        assert show(Local(4)).result(timeout=60) == "Local:4"  # __main__-like: by value
        assert set(client.scheduler_info()["workers"]) == workers  # none was lost
    finally:
        sys.modules.pop("driver_only_args", None)


class Local:
    """A class of the test module: packed too, and loaded on the worker."""

    def __init__(self, value):
        self.value = value
