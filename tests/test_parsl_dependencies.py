"""Dependencies as in Parsl: any concurrent.futures.Future in the arguments
(nested too) is waited for; DependencyError and JoinError carry Parsl's
``dependent_exceptions_tids``; ``daskflow.dependencies`` (Parsl's
dependency_resolver) chooses deep or shallow resolution."""

from __future__ import annotations

import concurrent.futures
import threading

import dask
import pytest

from daskflow import DependencyError, JoinError, join_app, python_app
from daskflow.errors import JoinReturnError, NestedFuture, PropagatedException
from daskflow.parsl.config import Config
from daskflow.parsl.dataflow import dependency_resolvers as dr
from daskflow.parsl.errors import ConfigurationError
from daskflow.parsl.translate import translate


@python_app
def ident(v, inputs=()):
    return v if not inputs else (v, list(inputs))


@python_app
def fail():
    raise ValueError("upstream broke")


@python_app
def add(a, b):
    return a + b


def _stand_ins(client) -> list[str]:
    return [k for k in client.futures if str(k).startswith("concurrent_future-")]


def test_a_pending_future_is_waited_for_and_its_value_passed(client):
    plain = concurrent.futures.Future()
    f = ident(plain)
    assert not f.done()
    plain.set_result("later")
    assert f.result(timeout=60) == "later"


def test_futures_nested_anywhere_are_dependencies(client):
    a, b, k = (concurrent.futures.Future() for _ in range(3))
    f = ident({"list": [a, (b,)], "set": {a}, k: ident(1)})
    for fut, value in ((a, 1), (b, 2), (k, "key")):
        fut.set_result(value)
    assert f.result(timeout=60) == {"list": [1, (2,)], "set": {1}, "key": 1}


def test_app_futures_as_dict_keys_are_resolved(client):
    assert ident({ident("k"): ident(5)}).result(timeout=60) == {"k": 5}


def test_a_done_future_is_passed_by_value_without_a_task(client):
    done = concurrent.futures.Future()
    done.set_result(41)
    before = set(_stand_ins(client))
    assert add(done, 1).result(timeout=60) == 42
    assert set(_stand_ins(client)) == before


def test_a_future_completed_from_another_thread(client):
    plain = concurrent.futures.Future()
    f = ident(plain, inputs=[plain])
    threading.Timer(0.2, plain.set_result, args=("t",)).start()
    assert f.result(timeout=60) == ("t", ["t"])


def test_map_waits_for_plain_futures_too(client):
    futs = [concurrent.futures.Future() for _ in range(3)]
    calls = ident.map(futs, chunksize=2)
    for i, fut in enumerate(futs):
        fut.set_result(i)
    assert [c.result(timeout=60) for c in calls] == [0, 1, 2]


def test_a_failed_future_gives_dependency_error_naming_it(client):
    plain = concurrent.futures.Future()
    f = ident([plain])
    plain.set_exception(ValueError("plain failure"))
    err = f.exception(timeout=60)
    assert isinstance(err, DependencyError) and isinstance(err, PropagatedException)
    assert repr(plain) in str(err)
    (exc, description), = err.dependent_exceptions_tids
    assert isinstance(exc, ValueError) and description.startswith("<Future ")
    assert isinstance(err.__cause__, ValueError)


def test_a_cancelled_future_gives_dependency_error(client):
    plain = concurrent.futures.Future()
    f = ident(plain)
    plain.cancel()
    err = f.exception(timeout=60)
    assert isinstance(err, DependencyError)
    assert isinstance(err.cause, concurrent.futures.CancelledError)


def test_a_value_that_cannot_reach_a_worker_fails_the_call_naming_the_future(client):
    plain = concurrent.futures.Future()
    f = ident(plain)
    plain.set_result(threading.Lock())
    err = f.exception(timeout=60)
    assert isinstance(err, DependencyError) and isinstance(err.cause, TypeError)
    assert "cannot be sent to a worker" in str(err) and repr(plain) in str(err)


def test_dependency_error_lists_the_failed_task_as_parsl_does(client):
    up = fail()
    down = ident(up)
    err = down.exception(timeout=60)
    assert err.dependent_exceptions_tids[0][1] == f"task {up.tid!r}"
    assert f"task {up.tid}" in str(err) and err.task_id == down.tid
    assert err.__cause__ is up.exception()  # the very exception the upstream holds


@join_app
def joins_failures():
    return [fail(), ident(1), fail()]


@join_app
def joins_a_number():
    return 3


def test_join_error_lists_each_failed_inner_call(client):
    err = joins_failures().exception(timeout=60)
    assert isinstance(err, JoinError) and isinstance(err, PropagatedException)
    assert [type(e) for e, _ in err.dependent_exceptions_tids] == [ValueError, ValueError]
    assert all(d.startswith("task '") for _, d in err.dependent_exceptions_tids)
    assert isinstance(err.__cause__, ValueError)


def test_join_returning_no_future_is_a_type_error(client):
    err = joins_a_number().exception(timeout=60)
    assert isinstance(err, JoinReturnError) and isinstance(err, TypeError)
    assert isinstance(err, JoinError) and err.dependent_exceptions_tids == []


def test_shallow_resolves_top_level_futures_and_inputs(client):
    with dask.config.set({"daskflow.dependencies": "shallow"}):
        plain = concurrent.futures.Future()
        plain.set_result(2)
        assert ident(ident(1), inputs=[plain, ident(3)]).result(timeout=60) == (1, [2, 3])


def test_shallow_refuses_a_nested_future_naming_the_argument(client):
    with dask.config.set({"daskflow.dependencies": "shallow"}):
        with pytest.raises(NestedFuture, match=r"argument #0 of app 'ident'.*shallow"):
            ident([ident(1)])
        with pytest.raises(NestedFuture, match=r"argument inputs\[0\]"):
            ident(1, inputs=[{"k": concurrent.futures.Future()}])


def test_an_unknown_mode_is_refused(client):
    with dask.config.set({"daskflow.dependencies": "sideways"}):
        with pytest.raises(ValueError, match="daskflow.dependencies.*sideways"):
            ident([1])


def test_parsl_resolvers_choose_daskflow_dependencies():
    assert "daskflow.dependencies" not in translate(Config()).settings
    deep = translate(Config(dependency_resolver=dr.DEEP_DEPENDENCY_RESOLVER))
    shallow = translate(Config(dependency_resolver=dr.SHALLOW_DEPENDENCY_RESOLVER))
    assert deep.settings["daskflow.dependencies"] == "deep"
    assert shallow.settings["daskflow.dependencies"] == "shallow"
    assert not any("dependency_resolver" in u for u in deep.unused + shallow.unused)


def test_a_resolver_of_ones_own_is_refused_naming_it():
    own = dr.DependencyResolver(traverse_to_gather=lambda o: [], traverse_to_unwrap=lambda o: o)
    with pytest.raises(ConfigurationError, match=r"dependency_resolver.*DependencyResolver\("):
        translate(Config(dependency_resolver=own))


def test_parsl_resolver_functions_traverse_as_parsl_does():
    f = concurrent.futures.Future()
    f.set_result(3)
    nested = [f, (f,), {f: {f}}]
    assert dr.shallow_traverse_to_gather(nested) == []
    assert dr.shallow_traverse_to_gather(f) == [f] and dr.shallow_traverse_to_unwrap(f) == 3
    assert len(dr.deep_traverse_to_gather(nested)) == 4
    assert dr.deep_traverse_to_unwrap(nested) == [3, (3,), {3: {3}}]
