"""Lifted futures, as in Parsl: ``future[key]`` and ``future.name`` are app
calls depending on the future; they never wait, a missing key or attribute
raises at their ``result()``, and the AppFuture stays a Dask future."""

from __future__ import annotations

import concurrent.futures

import distributed
import pytest

from daskflow import AppFuture, DependencyError, python_app


class Point:
    def __init__(self):
        self.x, self.y = 1, [2, 3]


@python_app
def record():
    return {"a": "X", "b": [1, 2]}


@python_app
def point():
    return Point()


@python_app
def ident(v):
    return v


@python_app
def fail():
    raise ValueError("upstream broke")


def _lifted_keys(client) -> list[str]:
    return [k for k in client.futures if str(k).startswith("deferred_")]


def test_getitem_gives_the_item_as_a_future(client):
    f = record()
    item = f["b"][1]
    assert isinstance(item, AppFuture) and item.app_name == "deferred_getitem"
    assert item.result(timeout=60) == 2
    assert f["a"].result(timeout=60) == "X"


def test_missing_key_raises_at_result_not_at_the_subscript(client):
    lifted = record()["missing"]  # no error here
    assert isinstance(lifted.exception(timeout=60), KeyError)
    with pytest.raises(KeyError, match="missing"):
        lifted.result()


def test_getattr_gives_the_attribute_as_a_future(client):
    p = point()
    assert p.x.result(timeout=60) == 1
    assert p.y[0].result(timeout=60) == 2
    assert isinstance(point().nothing_here.exception(timeout=60), AttributeError)


def test_lifted_futures_are_dependencies_of_other_calls(client):
    f = record()
    assert ident([f["a"], {"n": f["b"][0]}]).result(timeout=60) == ["X", {"n": 1}]


def test_lifting_does_not_wait_for_the_future(client):
    gate = concurrent.futures.Future()
    top = ident(gate)
    lifted = top["a"]  # would hang here if lifting waited for top
    assert not top.done() and not lifted.done()
    gate.set_result({"a": "late"})
    assert lifted.result(timeout=60) == "late"


def test_failed_upstream_fails_the_lifted_future_with_dependency_error(client):
    lifted = fail()["a"]
    err = lifted.exception(timeout=60)
    assert isinstance(err, DependencyError) and err.upstream_app == "fail"


def test_private_names_and_futures_own_attributes_are_not_lifted(client):
    f = record()
    f.result(timeout=60)
    before = set(_lifted_keys(client))
    with pytest.raises(AttributeError):
        f._nosuch
    with pytest.raises(AttributeError):
        f.__nosuch__
    assert f.status == "finished" and f.key and f.client is client
    assert f.app_name == "record" and f.outputs == [] and f.index is None
    for name in ("pools", "relays", "file", "parent", "filepath"):  # read by daskflow itself
        assert getattr(f, name, "default") in ("default", None)
    assert set(_lifted_keys(client)) == before


def test_an_app_future_is_not_iterable(client):
    f = record()
    with pytest.raises(TypeError, match="not iterable"):
        iter(f)
    with pytest.raises(TypeError):
        "a" in f  # noqa: B015


def test_dask_api_on_app_futures_lifts_nothing(client):
    before = set(_lifted_keys(client))
    f = record()
    g = client.submit(lambda d: d["a"], f, pure=False)
    distributed.wait([f, g])
    assert client.gather([f, g]) == [{"a": "X", "b": [1, 2]}, "X"]
    assert set(_lifted_keys(client)) == before
