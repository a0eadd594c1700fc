"""App decorators: bare and with options, Parsl keywords, metadata, where apps
can be defined, and the errors a user can make at decoration or call time."""

from __future__ import annotations

import threading

import distributed
import pytest

import daskflow
from daskflow import bash_app, join_app, python_app
from daskflow.errors import UnknownExecutor, UnpicklableArgument


@python_app
def add(a, b=0):
    """Add two numbers."""
    return a + b


@python_app(retries=2, walltime=5, cache=True, executors="all", ignore_for_cache=["seed"])
def scaled(x, seed=0):
    return x * 10


def test_bare_decorator_returns_future(client):
    f = add(1, 2)
    assert isinstance(f, daskflow.AppFuture)
    assert isinstance(f, distributed.Future)
    assert f.result() == 3
    assert f.app_name == "add"


def test_decorator_with_options(client):
    assert scaled(4, seed=1).result() == 40
    assert scaled.retries == 2 and scaled.walltime == 5 and scaled.cache is True
    assert scaled.ignore_for_cache == ["seed"]


def test_wraps_metadata():
    assert add.__name__ == "add"
    assert add.__doc__ == "Add two numbers."
    assert add.__wrapped__(2, 3) == 5
    assert add.__module__ == __name__


def test_closure_app(client):
    offset = 100

    @python_app
    def shift(x):
        return x + offset

    assert shift(1).result() == 101


def test_app_defined_in_main_runs(run_script):
    proc = run_script(
        "from daskflow import python_app\n"
        "import daskflow\n"
        "@python_app\n"
        "def square(x):\n"
        "    return x * x\n"
        "if __name__ == '__main__':\n"
        "    with daskflow.Client(n_workers=1, dashboard_address=':0'):\n"
        "        print('RESULT', square(7).result())\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "RESULT 49" in proc.stdout


def test_app_call_never_blocks(client):
    gate = distributed.Event()

    @python_app
    def wait_for_gate(name):
        distributed.Event(name).wait(30)
        return "released"

    f = wait_for_gate(gate.name)  # returns at once although the task blocks
    assert not f.done()
    gate.set()
    assert f.result(timeout=30) == "released"


def test_tids_are_a_sequence(client):
    fs = [add(i) for i in range(5)]
    tids = [f.tid for f in fs]
    assert tids == list(range(tids[0], tids[0] + 5))


def test_parsl_keywords_reach_the_function_only_if_declared(client):
    @python_app
    def declares(inputs=(), walltime=None, parsl_resource_specification=None):
        return list(inputs), walltime, parsl_resource_specification

    @python_app
    def plain(x):
        return x

    spec = {"cores": 1}
    assert declares(inputs=[1, 2], walltime=10, resource_specification=spec).result() == \
        ([1, 2], 10, spec)
    # inputs= is only a dependency list here: plain() does not take it
    assert plain(5, inputs=[add(1)]).result() == 5


def test_kwargs_catch_all_receives_parsl_keywords(client):
    @python_app
    def anything(**kwargs):
        return sorted(kwargs)

    assert anything(inputs=[], x=1).result() == ["inputs", "x"]


def test_inputs_are_dependencies_even_if_not_declared(client, tmp_path):
    marker = tmp_path / "first"

    @python_app
    def first():
        import time
        time.sleep(0.5)
        marker.write_text("done")

    @python_app
    def second():
        return marker.read_text()

    assert second(inputs=[first()]).result() == "done"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"retries": -1}, "retries must be an int >= 0"),
        ({"walltime": 0}, "walltime must be a finite number of seconds > 0"),
        ({"walltime": "5"}, "walltime must be a finite number"),
        ({"executors": "gpu"}, "executors must be 'all' or a list"),
        ({"cache": "yes"}, "cache must be True, False or 'content'"),
        ({"ignore_for_cache": ["nope"]}, "ignore_for_cache names ['nope']"),
    ],
)
def test_bad_decorator_options_name_the_app(options, message):
    with pytest.raises((ValueError, TypeError), match="app 'f'") as info:
        @python_app(**options)
        def f(x):
            return x
    assert message in str(info.value)


def test_decorating_a_non_function_fails():
    with pytest.raises(TypeError, match="must decorate a function"):
        python_app(42)


def test_bad_call_keywords_fail_at_call_time(client):
    with pytest.raises(ValueError, match="walltime"):
        add(1, walltime=-3)
    for never in (float("nan"), float("inf")):  # nan once killed the app at once
        with pytest.raises(ValueError, match=r"app 'add': walltime must be a finite number"):
            add(1, walltime=never)
    with pytest.raises(ValueError, match=r"\(path, mode\)"):
        add(1, stdout=("x.txt", "r"))
    with pytest.raises(ValueError, match="unknown resource specification keys"):
        add(1, parsl_resource_specification={"gpus": 1})
    with pytest.raises(TypeError, match="outputs= takes Files or paths"):
        add(1, outputs=[42])


def test_unpicklable_argument_is_named_at_call_time(client):
    with pytest.raises(UnpicklableArgument) as info:
        add(1, b=threading.Lock())
    assert "argument 'b' of app 'add'" in str(info.value)
    with pytest.raises(UnpicklableArgument, match="argument #0 of app 'add'"):
        add(threading.Lock())


def test_unknown_executor_label_fails_at_call_time(client):
    @python_app(executors=["gpu"])
    def on_gpu():
        return 1

    with pytest.raises(UnknownExecutor, match=r"pinned to executors \['gpu'\].*\['local'\]"):
        on_gpu()


def test_pinning_to_the_only_pool_runs(client):
    @python_app(executors=["local"])
    def on_local():
        return "ran"

    assert on_local().result() == "ran"


def test_data_flow_kernel_argument_is_refused():
    with pytest.raises(TypeError, match="data_flow_kernel"):
        python_app(lambda: 1, data_flow_kernel=object())


def test_app_as_method(client):
    class Model:
        factor = 3

        @python_app
        def times(self, x):
            return self.factor * x

    assert Model().times(5).result() == 15


def test_repr():
    assert repr(add) == "<python_app add>"
    assert "bash_app" in repr(bash_app(lambda: "true"))
    assert "join_app" in repr(join_app(lambda: None))


def test_identical_cached_calls_share_one_task(client, tmp_path):
    counter = tmp_path / "runs"

    @python_app(cache=True, ignore_for_cache=["note"])
    def counted(x, note=""):
        with open(counter, "a") as f:
            f.write("x")
        return x * 2

    a, b, c = counted(3, note="first"), counted(3, note="second"), counted(4)
    assert (a.result(), b.result(), c.result()) == (6, 6, 8)
    assert a.key == b.key != c.key
    assert a.tid != b.tid
    assert counter.read_text() == "xx"  # 3 once, 4 once


def test_cache_key_follows_upstream_futures_by_key(client):
    @python_app(cache=True)
    def cached(x):
        return x

    up = add(1)
    assert cached(up).key == cached(up).key
    assert cached(up).key != cached(add(1)).key  # another task, another key
