"""App.map: many calls in one round trip; chunksize=K packs K calls per Dask
task while each call keeps its own future, result or exception."""

from __future__ import annotations

import distributed
import dask
import pytest
from distributed import as_completed, wait

from daskflow import AppFuture, DependencyError, python_app


@python_app
def square(x):
    return x * x


@python_app
def picky(x):
    if x % 3 == 0:
        raise ValueError(f"no multiples of 3: {x}")
    return x


@python_app
def plus(a, b=0):
    return a + b


def test_map_returns_app_futures_in_order(client):
    fs = square.map(range(10))
    assert all(isinstance(f, AppFuture) for f in fs)
    assert [f.result() for f in fs] == [x * x for x in range(10)]
    assert [f.tid for f in fs] == sorted(f.tid for f in fs)
    assert len({f.key for f in fs}) == 10


def test_map_with_several_iterables_and_broadcast_kwargs(client):
    assert client.gather(plus.map([1, 2, 3], [10, 20, 30])) == [11, 22, 33]
    assert client.gather(plus.map([1, 2, 3], b=100)) == [101, 102, 103]


def test_map_of_unequal_lengths_is_an_error_naming_the_app(client):
    with pytest.raises(ValueError, match=r"app 'plus': map\(\) needs iterables of the same "
                                         r"length, got lengths 2, 1"):
        plus.map([1, 2], (x for x in [1]))
    with pytest.raises(TypeError, match=r"app 'plus': map\(\) argument 2 is not iterable \(int\)"):
        plus.map([1, 2], 3)


def test_map_refuses_shared_outputs(client):
    with pytest.raises(ValueError, match="outputs= in map"):
        square.map([1], outputs=["x.txt"])


def test_bad_chunksize(client):
    with pytest.raises(ValueError, match="chunksize"):
        square.map([1], chunksize=0)


def test_empty_map(client):
    assert square.map([]) == []


def test_chunked_calls_share_tasks_but_keep_own_futures(client):
    fs = square.map(range(25), chunksize=10)
    assert len(fs) == 25
    assert len({f.key for f in fs}) == 3  # 3 Dask tasks
    assert [f.index for f in fs[:12]] == list(range(10)) + [0, 1]
    assert len({f.tid for f in fs}) == 25
    assert [f.result() for f in fs] == [x * x for x in range(25)]


def test_chunked_calls_have_their_own_exceptions(client):
    fs = picky.map(range(7), chunksize=7)
    for x, f in enumerate(fs):
        if x % 3 == 0:
            with pytest.raises(ValueError, match=f"no multiples of 3: {x}"):
                f.result()
            assert isinstance(f.exception(), ValueError)
        else:
            assert f.result() == x and f.exception() is None


def test_chunked_member_as_dependency(client):
    fs = picky.map(range(4), chunksize=4)
    assert plus(fs[1], 10).result() == 11
    assert plus(b=fs[2], a=[0][0]).result() == 2
    with pytest.raises(DependencyError) as info:
        plus(fs[0], 1).result()
    assert info.value.upstream_app == "picky" and info.value.upstream_tid == fs[0].tid


def test_chunked_pipeline(client):
    first = square.map(range(20), chunksize=5)
    second = plus.map(first, [1] * 20, chunksize=5)
    assert client.gather(second) == [x * x + 1 for x in range(20)]


def test_chunked_pipeline_isolates_failures(client):
    first = picky.map(range(6), chunksize=6)
    second = plus.map(first, chunksize=6)
    for x, f in enumerate(second):
        if x % 3 == 0:
            with pytest.raises(DependencyError, match="no multiples of 3"):
                f.result()
        else:
            assert f.result() == x


def test_calls_on_plain_futures_are_not_packed(client):
    """A failed plain upstream fails only the calls that use it."""
    with dask.config.set({"daskflow.batching.enabled": False}):
        upstream = [picky(x) for x in (0, 1, 2, 4)]
    fs = plus.map(upstream, chunksize=4)
    assert len({f.key for f in fs}) == 4
    with pytest.raises(DependencyError):
        fs[0].result()
    assert [f.result() for f in fs[1:]] == [1, 2, 4]


def test_members_work_with_wait_and_as_completed(client):
    fs = square.map(range(6), chunksize=3)
    done, _ = wait(fs, timeout=30)
    assert len(done) == 6
    assert sorted(f.result() for f in as_completed(fs)) == [x * x for x in range(6)]


def test_daskflow_gather_unpacks_members(client):
    fs = square.map(range(6), chunksize=4)
    assert client.gather(fs) == [x * x for x in range(6)]
    with pytest.raises(ValueError, match="no multiples"):
        client.gather(picky.map(range(3), chunksize=3))


def test_chunked_retries_are_per_call(client, tmp_path):
    @python_app(retries=1)
    def flaky_once(x, base):
        import os
        marker = os.path.join(base, str(x))
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("first try fails")
        return x

    assert client.gather(flaky_once.map(range(5), base=str(tmp_path), chunksize=5)) == \
        list(range(5))


def test_chunked_walltime_is_per_call(client):
    from daskflow import AppTimeout

    @python_app
    def maybe_spin(x, walltime=None):
        import time
        end = time.time() + (30 if x == 1 else 0)
        while time.time() < end:
            pass
        return x

    fs = maybe_spin.map(range(3), walltime=1, chunksize=3)
    assert fs[0].result(timeout=60) == 0 and fs[2].result() == 2
    with pytest.raises(AppTimeout):
        fs[1].result()


def test_members_as_dask_arguments_give_their_own_values(client):
    """daskflow.Client's submit and map give a task each member's own value
    (a small task picks it from the chunk); a failed member fails the task."""
    fs = square.map(range(3), chunksize=3)
    assert client.submit(lambda x: x, fs[2]).result() == 4
    assert client.submit(sum, [fs[0], fs[1], fs[2]]).result() == 5
    assert client.gather(client.map(lambda x: -x, fs)) == [0, -1, -4]
    bad = picky.map([0, 1], chunksize=2)
    with pytest.raises(ValueError):
        client.submit(lambda x: x, bad[0]).result()


def test_members_for_the_base_class_resolve_to_their_chunk(client):
    """Documented limit: distributed.Client's own submit sees the chunk's outcomes."""
    fs = square.map(range(2), chunksize=2)
    raw = distributed.Client.submit(client, len, fs[0])
    assert raw.result() == 2


def test_map_with_distributed_client(client):
    assert isinstance(client, distributed.Client)
    assert client.gather(square.map(range(3), chunksize=2)) == [0, 1, 4]
