"""python apps: walltime and retries."""

from __future__ import annotations

import time

import pytest

from daskflow import AppTimeout, python_app


@python_app
def spin(seconds, walltime=None):
    end = time.time() + seconds
    while time.time() < end:
        pass
    return "finished"


def test_walltime_raises_app_timeout_in_the_callers_future(client):
    start = time.time()
    f = spin(20, walltime=1)
    with pytest.raises(AppTimeout) as info:
        f.result(timeout=30)
    assert time.time() - start < 10
    assert info.value.tid == f.tid and info.value.walltime == 1
    assert f"app 'spin' (tid {f.tid}) exceeded its walltime of 1 s" in str(info.value)


def test_walltime_interrupts_the_python_code(client):
    """The runaway function is stopped, so the worker is free again soon."""
    spin(30, walltime=0.5).exception()
    start = time.time()
    results = [spin(0, walltime=5) for _ in range(4)]
    assert [r.result(timeout=20) for r in results] == ["finished"] * 4
    assert time.time() - start < 10


def test_within_walltime_returns_normally(client):
    assert spin(0.1, walltime=10).result() == "finished"


def test_walltime_passes_exceptions_through(client):
    @python_app(walltime=5)
    def bad():
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        bad().result()


def _counting(path):
    with open(path, "a") as f:
        f.write("x")
    with open(path) as f:
        return len(f.read())


def test_retries_allow_n_more_tries(client, tmp_path):
    counter = str(tmp_path / "tries")

    @python_app(retries=2)
    def flaky(path):
        n = _counting(path)
        if n < 3:
            raise RuntimeError(f"try {n} failed")
        return n

    assert flaky(counter).result() == 3


def test_last_exception_surfaces_when_retries_run_out(client, tmp_path):
    counter = str(tmp_path / "tries")

    @python_app(retries=1)
    def always_fails(path):
        raise RuntimeError(f"try {_counting(path)} failed")

    with pytest.raises(RuntimeError, match="try 2 failed"):
        always_fails(counter).result()
    assert open(counter).read() == "xx"


def test_retries_also_apply_to_bash_apps(client, tmp_path):
    from daskflow import bash_app

    counter = tmp_path / "n"

    @bash_app(retries=2)
    def flaky_cmd():
        return f'echo x >> {counter}; [ $(wc -l < {counter}) -ge 3 ]'

    assert flaky_cmd().result() == 0
    assert counter.read_text().count("x") == 3


@python_app
def where_am_i(walltime=None):
    import distributed

    return distributed.get_worker().address


def test_an_app_with_a_walltime_still_sees_its_worker(client):
    """The walltime runs the app in a helper thread: it must carry the
    worker's context (distributed.get_worker() raised "No worker found")."""
    address = where_am_i(walltime=30).result(timeout=60)
    assert address in client.scheduler_info()["workers"]
