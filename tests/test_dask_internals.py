"""Each internal of distributed that daskflow relies on, checked against the
installed release: when one changes, its test here fails naming the
``daskflow.dask_internals`` function to update (see that module).

One small in-process cluster (one worker, one thread, a dashboard) serves
them all, so that the scheduler, its worker and the tasks are reachable from
the test."""

from __future__ import annotations

import inspect
import threading
import time

import dask
import distributed
import pytest
from distributed import Client, Event, Future, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin
from waiting import until

from daskflow import dask_internals as di


def changed(what: str, helper: str) -> str:
    return (f"distributed {distributed.__version__} changed {what}: "
            f"daskflow.dask_internals.{helper} must be updated")


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        yield cluster, client


def _keys(tasks) -> set:
    return {ts.key for ts in tasks}


def _block(name: str, i: int) -> int:
    Event(name).wait(timeout=60)
    return i


# -- sites/scaling.py ----------------------------------------------------------

def test_queued_unrunnable_and_processing_tasks(cluster):
    """Root tasks past the worker's saturation are queued; the ones it runs
    are processing on it; a task no worker can run is unrunnable."""
    cluster, client = cluster
    scheduler = cluster.scheduler
    name = f"block-{time.monotonic_ns()}"
    futures = client.map(_block, [name] * 6, range(6), key=[f"root-{name}-{i}" for i in range(6)])
    nowhere = client.submit(int, 1, resources={"nowhere": 1}, key=f"nowhere-{name}")
    try:
        ws = next(iter(scheduler.workers.values()))
        until(lambda: len(_keys(di.processing_tasks(ws))) == 2
              and len(_keys(di.queued_tasks(scheduler))) == 4,
              lambda: changed("Scheduler.queued or WorkerState.processing (6 root tasks on one "
                              f"1-thread worker: processing {_keys(di.processing_tasks(ws))}, "
                              f"queued {_keys(di.queued_tasks(scheduler))})",
                              "queued_tasks/processing_tasks"), timeout=30)
        assert all(scheduler.tasks[ts.key].state == "queued"
                   for ts in di.queued_tasks(scheduler)), changed("Scheduler.queued", "queued_tasks")
        assert all(ts.state == "processing" for ts in di.processing_tasks(ws)), \
            changed("WorkerState.processing", "processing_tasks")
        until(lambda: nowhere.key in _keys(di.unrunnable_tasks(scheduler)),
              lambda: changed("Scheduler.unrunnable (a task needing a resource no worker has "
                              f"is not in it: {_keys(di.unrunnable_tasks(scheduler))})",
                              "unrunnable_tasks"), timeout=30)
        assert scheduler.tasks[nowhere.key].state == "no-worker", \
            changed("Scheduler.unrunnable", "unrunnable_tasks")
    finally:
        Event(name, client=client).set()
        client.cancel([nowhere])
    assert client.gather(futures) == list(range(6))


def test_correct_cluster_state_starts_and_closes_spec_workers(cluster):
    """A worker added to ``worker_spec`` starts; one removed closes."""
    cluster, client = cluster
    spec = dict(next(iter(cluster.worker_spec.values())))
    cluster.worker_spec["extra"] = spec
    try:
        cluster.sync(di.correct_cluster_state, cluster)
        assert "extra" in cluster.workers, changed(
            "SpecCluster._correct_state (it did not start a worker added to worker_spec)",
            "correct_cluster_state")
        until(lambda: len(cluster.scheduler.workers) == 2,
              changed("SpecCluster._correct_state (the worker it started never joined)",
                      "correct_cluster_state"), timeout=30)
    finally:
        cluster.worker_spec.pop("extra", None)
        cluster.sync(di.correct_cluster_state, cluster)
    assert "extra" not in cluster.workers, changed(
        "SpecCluster._correct_state (it did not close a worker removed from worker_spec)",
        "correct_cluster_state")


# -- sites/routing.py ----------------------------------------------------------

def test_future_of_key_is_told_about_a_task_it_did_not_submit(cluster):
    """A second client, which never saw the task, gets its value by key."""
    cluster, client = cluster
    made = client.submit(lambda: 41 + 1, key=f"made-{time.monotonic_ns()}")
    assert made.result(timeout=30) == 42
    with Client(cluster) as other:
        future = di.future_of_key(other, made.key)
        try:
            value = future.result(timeout=30)
        except TimeoutError:
            pytest.fail(changed("the client-desires-keys operation (a Future made from a "
                                "key is never told its task finished)", "future_of_key"))
        assert value == 42, changed("Future(key, client)", "future_of_key")


# -- walltime.py ---------------------------------------------------------------

def _in_helper_thread():
    seen = {}

    @di.in_worker_context
    def target():
        seen["key"] = getattr(distributed.worker.thread_state, "key", None)
        try:
            seen["worker"] = distributed.get_worker().address
        except ValueError as exc:
            seen["worker"] = str(exc)

    helper = threading.Thread(target=target)
    helper.start()
    helper.join(30)
    return seen


def test_in_worker_context_carries_the_task_to_a_helper_thread(cluster):
    """A helper thread running in the task's context knows its key and worker."""
    cluster, client = cluster
    future = client.submit(_in_helper_thread, key=f"helper-{time.monotonic_ns()}")
    seen = future.result(timeout=30)
    assert seen == {"key": future.key, "worker": next(iter(cluster.scheduler.workers))}, \
        changed(f"distributed.worker.thread_state or get_worker's context variable (a helper "
                f"thread saw {seen})", "in_worker_context")


def _where_am_i() -> tuple[bool, bool]:
    inside = di.in_worker_task_thread()
    seen: list = []
    helper = threading.Thread(target=lambda: seen.append(di.in_worker_task_thread()))
    helper.start()
    helper.join()
    return inside, seen[0]


def test_in_worker_task_thread_tells_a_task_thread_from_others(cluster):
    """True in a task of the worker's pool (staging secedes there), False in
    another thread of the worker and on the client."""
    cluster, client = cluster
    seen = client.submit(_where_am_i, key=f"where-{time.monotonic_ns()}").result(timeout=30)
    assert seen == (True, False) and not di.in_worker_task_thread(), changed(
        f"distributed.threadpoolexecutor.thread_state.executor (a task thread and a helper "
        f"thread saw {seen})", "in_worker_task_thread")


class _Interrupt(BaseException):
    pass


def test_raise_in_thread_interrupts_running_python_code():
    """A thread looping in Python gets the exception at once."""
    outcome = {}
    started = threading.Event()

    def spin():
        started.set()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                pass
            outcome["ended"] = "by itself"
        except _Interrupt:
            outcome["ended"] = "interrupted"

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    assert started.wait(30)
    assert di.raise_in_thread(thread, _Interrupt), \
        "ctypes.pythonapi.PyThreadState_SetAsyncExc did not find the thread: " \
        "daskflow.dask_internals.raise_in_thread must be updated"
    thread.join(30)
    assert outcome == {"ended": "interrupted"}, \
        "PyThreadState_SetAsyncExc no longer interrupts a thread: " \
        "daskflow.dask_internals.raise_in_thread must be updated"


# -- dashboard/register.py -----------------------------------------------------

def test_dashboard_applications_and_template_variables(cluster):
    """The dashboard's Bokeh applications are found, with their paths; the
    page template's variables are one memoized dict with a ``pages`` list."""
    cluster, _ = cluster
    scheduler = cluster.scheduler
    apps = di.dashboard_applications(scheduler)
    paths = [p for app in apps for p in app.app_paths]
    assert any(p.rstrip("/").endswith("/status") for p in paths), changed(
        f"Scheduler.http_application.applications (no Bokeh application serves /status: {paths})",
        "dashboard_applications")
    assert callable(getattr(scheduler.http_application, "add_application", None)), changed(
        "Scheduler.http_application.add_application", "add_dashboard_application")
    variables = di.dashboard_template_variables(scheduler)
    assert variables is di.dashboard_template_variables(scheduler), changed(
        "dashboard.scheduler.template_variables (no longer memoized per scheduler: a page "
        "added to it would not show)", "dashboard_template_variables")
    assert "status" in variables.get("pages", ()), changed(
        f"dashboard.scheduler.template_variables['pages'] ({variables.get('pages')})",
        "dashboard_template_variables")


def test_new_dashboard_application_is_served_beside_the_dashboard(cluster):
    """A Bokeh application made by the door is one the scheduler's dashboard
    can serve, and a document dressed like the dashboard gets its theme and
    page template."""
    from bokeh.document import Document

    cluster, _ = cluster
    scheduler = cluster.scheduler
    variables = di.dashboard_template_variables(scheduler)
    try:
        app = di.new_dashboard_application({"/door-check": lambda *a: None}, scheduler, "",
                                           variables)
    except Exception as exc:
        pytest.fail(changed(f"dashboard.core.BokehApplication ({exc!r})",
                            "new_dashboard_application"))
    assert any(p.endswith("/door-check") for p in app.app_paths), changed(
        f"BokehApplication.app_paths ({app.app_paths})", "new_dashboard_application")
    doc = Document()
    try:
        di.dress_like_dashboard(doc)
    except Exception as exc:
        pytest.fail(changed(f"dashboard.components.scheduler BOKEH_THEME/env ({exc!r})",
                            "dress_like_dashboard"))
    assert doc.template is not None and doc.theme is not None, changed(
        "the dashboard's page template", "dress_like_dashboard")


def test_run_like_dask_worker_runs_a_coroutine_with_logs_silenced():
    """The coroutine runs to its end in distributed's loop, and distributed's
    log lines below the level are dropped while it runs."""
    import logging

    seen = []

    async def main():  # distributed's console handlers, at the level asked
        seen.extend(h.level for h in logging.getLogger("distributed").handlers
                    if isinstance(h, logging.StreamHandler))

    try:
        di.run_like_dask_worker(main, logging.ERROR)
    except Exception as exc:
        pytest.fail(changed(f"compatibility.asyncio_run, config.get_loop_factory or "
                            f"utils.silence_logging_cmgr ({exc!r})", "run_like_dask_worker"))
    assert seen and set(seen) == {logging.ERROR}, changed(
        f"utils.silence_logging_cmgr (distributed logged at level {seen})",
        "run_like_dask_worker")


# -- futures.py, apps.py ---------------------------------------------------------

class _Mine(Future):
    pass


def _fail():
    raise ValueError("meant")


def test_swap_future_class_and_future_state(cluster):
    """A Future becomes an instance of a subclass in place and still works;
    its state is read without a round trip."""
    _, client = cluster
    good = client.submit(lambda: 7, key=f"good-{time.monotonic_ns()}")
    try:
        swapped = di.swap_future_class(good, _Mine)
    except TypeError as exc:
        pytest.fail(changed(f"Future's layout ({exc})", "swap_future_class"))
    assert swapped is good and type(good) is _Mine
    assert good.result(timeout=30) == 7, changed("Future (a swapped Future no longer works)",
                                                 "swap_future_class")
    state = di.future_state(good)
    assert state.status == "finished" and state.done(), changed("Future._state", "future_state")
    bad = client.submit(_fail, key=f"bad-{time.monotonic_ns()}")
    distributed.wait(bad, timeout=30)
    state = di.future_state(bad)
    assert state.status == "error" and state.done(), changed(
        f"Future._state.status ({state.status})", "future_state")
    assert inspect.iscoroutinefunction(state.wait), changed("FutureState.wait", "future_state")
    try:
        exc, tb = di.reported_exception(state)
    except Exception as error:
        pytest.fail(changed(f"core.clean_exception ({error!r})", "reported_exception"))
    assert isinstance(exc, ValueError) and str(exc) == "meant", changed(
        f"FutureState.exception ({exc!r})", "future_state")
    assert tb is None or hasattr(tb, "tb_frame"), changed(
        f"core.clean_exception's traceback ({tb!r})", "reported_exception")


# -- provenance/plugin.py ------------------------------------------------------

class _DropsAnnotation(SchedulerPlugin):
    name = "test-drops-annotation"

    def update_graph(self, scheduler, *, annotations=None, **kwargs) -> None:
        for key in (annotations or {}).get("dropped-here", {}):
            di.drop_annotation(scheduler.tasks[key], "dropped-here")


def _own_annotations() -> dict:
    from distributed import get_worker

    worker = get_worker()
    return dict(worker.state.tasks[worker.get_current_task()].annotations or {})


def test_drop_annotation_keeps_it_off_the_worker(cluster):
    """A plugin reads an annotation in update_graph and drops it: the worker
    gets the task's other annotations only."""
    cluster, client = cluster
    client.register_plugin(_DropsAnnotation())
    try:
        with dask.annotate(**{"dropped-here": {"big": "x" * 100}, "kept": 1}):
            future = client.submit(_own_annotations, key=f"annotated-{time.monotonic_ns()}")
        seen = future.result(timeout=30)
    finally:
        client.unregister_scheduler_plugin(_DropsAnnotation.name)
    assert seen.get("kept") == 1, changed("the annotations a worker gets with a task "
                                          "(TaskState.annotations)", "drop_annotation")
    assert "dropped-here" not in seen, changed(
        "TaskState.annotations (a dropped annotation still reached the worker)",
        "drop_annotation")


# -- already in dask_internals before: what they rely on exists ----------------

def test_import_dotted_resolves_a_settings_name():
    try:
        found = di.import_dotted("daskflow.dask_internals.import_dotted")
    except Exception as exc:
        pytest.fail(changed(f"utils.import_term ({exc!r})", "import_dotted"))
    assert found is di.import_dotted, changed("utils.import_term", "import_dotted")


class _Recorder:
    """A scheduler plugin keeping the keyword names each transition gets."""

    def __init__(self):
        self.seen: dict[tuple, set] = {}

    def transition(self, key, start, finish, *args, **kwargs):
        self.seen.setdefault((key, finish), set()).update(kwargs)


def test_transition_facts_are_passed_by_name(cluster):
    """A task that finishes tells its worker, times and size; one that errs
    its exception, texts and cause, under the names provenance reads."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    cluster, client = cluster
    recorder = type("Recorder", (_Recorder, SchedulerPlugin), {})()
    cluster.scheduler.add_plugin(recorder, name=f"recorder-{time.monotonic_ns()}")
    good = client.submit(lambda: 7, key=f"facts-good-{time.monotonic_ns()}")
    bad = client.submit(_fail, key=f"facts-bad-{time.monotonic_ns()}")
    distributed.wait([good, bad], timeout=30)
    until(lambda: (good.key, "memory") in recorder.seen and (bad.key, "erred") in recorder.seen,
          "the plugin saw no end of the tasks", timeout=30)
    for key, finish, names in ((good.key, "memory", {"worker", "startstops", "nbytes"}),
                               (bad.key, "erred", {"exception", "exception_text",
                                                   "traceback_text", "cause"})):
        got = recorder.seen[key, finish]
        assert names <= got, changed(f"SchedulerPlugin.transition's keywords on {finish} "
                                     f"(missing {sorted(names - got)})", "transition_facts")
        assert set(di.transition_facts({n: 1 for n in got})) >= names, changed(
            "SchedulerPlugin.transition's keywords", "transition_facts")


def _tell_and_return(value):
    assert di.tell_when_finished("door", {"said": value, "times": b"\x00\x01"})
    return value


def test_a_task_tells_the_scheduler_with_its_finished_message(cluster):
    """What a task leaves with ``tell_when_finished`` reaches a scheduler
    plugin's ``transition`` hook to memory (``finished_metadata``), which
    takes it out of the scheduler's ``TaskState.metadata``; outside a task
    nothing is sent."""
    cluster, client = cluster
    got = {}

    class Reader(SchedulerPlugin):
        def transition(self, key, start, finish, *args, **kwargs):
            if finish == "memory" and str(key).startswith("told-"):
                got[key] = di.finished_metadata(cluster.scheduler, key, kwargs, "door")

    cluster.scheduler.add_plugin(Reader(), name=f"reader-{time.monotonic_ns()}")
    future = client.submit(_tell_and_return, 5, key=f"told-{time.monotonic_ns()}")
    assert future.result(timeout=30) == 5
    until(lambda: future.key in got, "the plugin saw no end of the task", timeout=30)
    assert got[future.key] == {"said": 5, "times": b"\x00\x01"}, changed(
        "what a task's finished message carries to SchedulerPlugin.transition "
        "(WorkerState.tasks[key].metadata, TaskFinishedMsg.metadata)", "tell_when_finished")
    assert "door" not in (cluster.scheduler.tasks[future.key].metadata or {}), changed(
        "TaskState.metadata on the scheduler", "finished_metadata")
    assert di.tell_when_finished("door", {}) is False  # not in a task


def test_the_rest_still_exists():
    from distributed import Nanny, Scheduler
    from distributed.scheduler import TaskState, WorkerState

    for name in ("_transition", "_transitions", "send_all"):
        assert callable(getattr(Scheduler, name, None)), changed(f"Scheduler.{name}",
                                                                 "err_waiting_tasks")
    assert "exception_blame" in TaskState.__slots__, changed("TaskState.exception_blame",
                                                             "blamed_key")
    assert "memory_limit" in WorkerState.__slots__, changed("WorkerState.memory_limit",
                                                            "worker_memory_limit")
    assert inspect.iscoroutinefunction(getattr(Nanny, "_on_worker_exit", None)), changed(
        "Nanny._on_worker_exit", "exit_reporting_nanny")
    sync = getattr(Nanny, "_on_worker_exit_sync", None)
    assert callable(sync) and not inspect.iscoroutinefunction(sync), changed(
        "Nanny._on_worker_exit_sync", "exit_reporting_nanny")
    assert "on_exit=self._on_worker_exit_sync" in inspect.getsource(Nanny.instantiate), changed(
        "Nanny.instantiate (its worker's exit callback)", "exit_reporting_nanny")


# -- latency.py ----------------------------------------------------------------

def _streams(cluster, client) -> dict:
    worker = next(iter(cluster.workers.values()))  # in this process (processes=False)
    return {
        "Scheduler.stream_comms": di.scheduler_to_worker_stream(cluster.scheduler,
                                                                worker.address),
        "Scheduler.client_comms": di.scheduler_to_client_stream(cluster.scheduler, client.id),
        "Worker.batched_stream": di.worker_to_scheduler_stream(worker),
        "Client.scheduler_comm": di.client_to_scheduler_stream(client),
    }


def test_the_four_batched_streams_are_found_and_their_interval_set(cluster):
    """The scheduler's streams to a worker and to a client, the worker's and
    the client's are ``BatchedSend``s with distributed's batching (above 0),
    whose interval is set and read back."""
    from distributed.batched import BatchedSend

    cluster, client = cluster
    for what, stream in _streams(cluster, client).items():
        assert isinstance(stream, BatchedSend), changed(
            f"{what} (not a BatchedSend: {stream!r})", "the stream functions of latency.py")
        before = di.stream_interval(stream)
        assert isinstance(before, float) and before > 0, changed(
            f"BatchedSend.interval of {what} ({before!r}, seconds expected)", "stream_interval")
        di.set_stream_interval(stream, 0.25)
        try:
            assert di.stream_interval(stream) == 0.25, changed("BatchedSend.interval",
                                                               "set_stream_interval")
        finally:
            di.set_stream_interval(stream, before)
    assert "self.interval" in inspect.getsource(BatchedSend._background_send), changed(
        "BatchedSend._background_send (it no longer reads BatchedSend.interval)",
        "set_stream_interval")


def test_a_streams_interval_paces_its_writes(cluster):
    """After a write, a stream set to a long interval holds the next one
    back that long: the writer reads the interval that was set."""
    from distributed.metrics import time as dask_time

    cluster, _ = cluster
    with Client(cluster) as other:
        stream = di.client_to_scheduler_stream(other)
        di.set_stream_interval(stream, 3600)
        other.submit(int, 1, key=f"paced-{time.monotonic_ns()}")  # one write, then a deadline
        until(lambda: stream.next_deadline is not None
              and stream.next_deadline - dask_time() > 1800,
              lambda: changed(f"BatchedSend's pacing (next write due {stream.next_deadline} "
                              "after a write at a 3600 s interval)", "set_stream_interval"),
              timeout=30)


class _SeesClientStreams(SchedulerPlugin):
    def __init__(self):
        self.seen: dict = {}

    def add_client(self, scheduler, client) -> None:
        di.after_client_stream_starts(scheduler, client,
                                      lambda stream: self.seen.setdefault(client, stream))


def test_after_client_stream_starts_gives_the_new_clients_stream(cluster):
    """A plugin's add_client hook gets, once it exists, the scheduler's
    stream to the client that joined."""
    cluster, _ = cluster
    plugin = _SeesClientStreams()
    name = f"sees-client-streams-{time.monotonic_ns()}"
    cluster.scheduler.add_plugin(plugin, name=name)
    try:
        with Client(cluster) as other:
            until(lambda: other.id in plugin.seen,
                  changed("Scheduler.add_client (no stream to the new client after the "
                          "add_client hook)", "after_client_stream_starts"), timeout=30)
            assert plugin.seen[other.id] is cluster.scheduler.client_comms[other.id], changed(
                "Scheduler.client_comms", "after_client_stream_starts")
    finally:
        cluster.scheduler.remove_plugin(name)


class _Marks(distributed.WorkerPlugin):
    def __init__(self, name):
        self.name = name

    def setup(self, worker) -> None:
        worker.marked_by_door = self.name


def test_register_worker_plugin_here_reaches_the_workers(cluster):
    """A worker plugin registered from the scheduler's side is set up on the
    running workers and kept for the ones that join later."""
    cluster, client = cluster
    name = f"door-mark-{time.monotonic_ns()}"
    try:
        cluster.sync(di.register_worker_plugin_here, cluster.scheduler, _Marks(name), name)
    except Exception as exc:
        pytest.fail(changed(f"Scheduler.register_worker_plugin ({exc!r})",
                            "register_worker_plugin_here"))
    try:
        worker = next(iter(cluster.workers.values()))
        until(lambda: getattr(worker, "marked_by_door", None) == name,
              changed("Scheduler.register_worker_plugin (the running worker never set the "
                      "plugin up)", "register_worker_plugin_here"), timeout=30)
        assert name in cluster.scheduler.worker_plugins, changed(
            "Scheduler.worker_plugins (the plugin is not kept for later workers)",
            "register_worker_plugin_here")
    finally:
        client.unregister_worker_plugin(name)


def _inc(x):
    return x + 1


def test_submit_sends_nothing_for_a_key_the_client_holds(cluster):
    """Why ``send_held`` hides a held key: ``Client.submit`` returns the
    existing future of a key in ``Client.futures`` without sending a task."""
    _, client = cluster
    state = di.hold_key(client, "held-nothing-sent", lambda: None)
    try:
        client.submit(_inc, 1, key="held-nothing-sent", pure=False)
        time.sleep(0.2)
        on_scheduler = client.run_on_scheduler(
            lambda dask_scheduler: "held-nothing-sent" in dask_scheduler.tasks)
        assert not on_scheduler, changed("Client.submit for a known key", "send_held")
    finally:
        state.release = None
        client.futures.pop("held-nothing-sent", None)


def test_held_keys_are_sent_by_what_waits_on_them(cluster):
    """``hold_key`` futures exist before their task; every waiter of
    distributed awaits ``FutureState.wait``, which sends them
    (``send_held``, on the event loop)."""
    _, client = cluster
    waiters = {
        "result": lambda f: f.result(timeout=30),
        "wait": lambda f: distributed.wait([f], timeout=30) and f.result(),
        "as_completed": lambda f: next(iter(distributed.as_completed([f], timeout=30))).result(),
        "gather": lambda f: client.gather(f),
        "done_callback": lambda f: _after_callback(f),
    }
    for name, waiter in waiters.items():
        key = f"held-{name}"
        sent = []

        def release(key=key, sent=sent):
            sent.append(key)
            di.send_held(client, key, lambda: client.submit(_inc, 41, key=key, pure=False),
                         lambda task: sent.append(di.is_held(future)))  # still held here

        di.hold_key(client, key, release)
        future = Future(key, client)
        assert di.is_held(future)
        assert waiter(future) == 42, changed(f"how {name} waits on a future", "HeldState")
        assert sent == [key, True] and not di.is_held(future)


def _after_callback(future):
    done = threading.Event()
    future.add_done_callback(lambda f: done.set())
    assert done.wait(30)
    return future.result()


def test_as_completed_with_results_awaits_future_result(cluster):
    """``AppFuture._result`` gives a chunk member its own value: it is what
    ``as_completed(..., with_results=True)`` and ``await future`` call."""
    _, client = cluster
    calls = []

    class Probe(Future):
        async def _result(self, raiseit=True):
            calls.append(self.key)
            return await super()._result(raiseit)

    future = di.swap_future_class(client.submit(_inc, 1, pure=False), Probe)
    assert [r for _, r in distributed.as_completed([future], with_results=True)] == [2]
    assert calls == [future.key], changed("as_completed's with_results", "AppFuture._result")


# -- futures.py: dropped futures -----------------------------------------------

class _Batched(Future):
    def release(self):
        di.release_soon(self)


def _on_scheduler(client, keys) -> set:
    return set(client.run_on_scheduler(
        lambda dask_scheduler, keys=tuple(keys): [k for k in keys if k in dask_scheduler.tasks]))


def test_release_soon_lets_go_of_dropped_futures_in_batches(cluster):
    """Futures released by ``release_soon`` leave the client and the
    scheduler as with ``Future.release``, with one wake-up of the client's
    loop for a batch; a key still held by another future stays."""
    _, client = cluster
    name = f"drop-{time.monotonic_ns()}"
    futures = [di.swap_future_class(f, _Batched) for f in
               client.map(_inc, range(200), key=[f"{name}-{i}" for i in range(200)])]
    distributed.wait(futures, timeout=30)
    keys = [f.key for f in futures]
    kept = Future(keys[0], client)  # a second future on the first key
    wakeups = []
    add_callback = client.loop.add_callback
    client.loop.add_callback = lambda *a, **k: (wakeups.append(a), add_callback(*a, **k))[1]
    try:
        del futures
    finally:
        client.loop.add_callback = add_callback
    until(lambda: _on_scheduler(client, keys) == {keys[0]},
          lambda: changed("how a dropped future is let go (Client._dec_ref, Future._cleared, "
                          f"Future._generation): left {_on_scheduler(client, keys)}",
                          "release_soon"), timeout=30)
    assert all(k not in client.futures for k in keys[1:]) and keys[0] in client.futures
    assert len(wakeups) < 10, f"{len(wakeups)} wake-ups of the loop for 200 dropped futures"
    assert kept.result(timeout=30) == 1


def _submit_and_drop(client, name: str, n: int) -> None:
    for i in range(n):
        di.swap_future_class(client.submit(_inc, i, key=f"{name}-{i}", pure=False), _Batched)


def test_release_soon_never_overtakes_the_task_it_releases(cluster):
    """A future dropped at once after its submit, from another thread, while
    releases are pending: the scheduler still ends with none of the tasks
    (a release sent before its task would leave the task wanted forever)."""
    _, client = cluster
    name = f"fire-{time.monotonic_ns()}"
    threads = [threading.Thread(target=_submit_and_drop, args=(client, f"{name}-{t}", 300))
               for t in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = [f"{name}-{t}-{i}" for t in range(3) for i in range(300)]
    until(lambda: not _on_scheduler(client, keys),
          lambda: f"{len(_on_scheduler(client, keys))} dropped tasks stay on the scheduler",
          timeout=30)
    assert not [k for k in keys if k in client.futures]


def test_default_client_follows_distributeds_choice(cluster):
    """``default_client`` gives what ``distributed.default_client`` gives: the
    current client when one is bound, else the latest default that is not
    closed, also after that one closes."""
    cluster, client = cluster
    for name in ("_current_client", "_global_client_index", "_global_clients"):
        assert hasattr(distributed.client, name), changed(f"distributed.client.{name}",
                                                          "default_client")
    with Client(cluster.scheduler_address, set_as_default=True) as newer:
        assert di.default_client() is newer is distributed.default_client()
        with client.as_current():
            assert di.default_client() is client
        assert di.default_client() is newer
    assert di.default_client() is distributed.default_client()
    assert di.default_client().status != "closed"


# -- sites/drain.py ------------------------------------------------------------

async def _stop_taking_tasks(worker) -> None:
    di.stop_taking_tasks(worker)


async def _executing(worker) -> list:
    return di.executing_keys(worker)


def test_a_draining_worker_takes_no_task_runs_its_own_and_hands_its_results_over():
    """stop_taking_tasks: the scheduler places no new task on the worker and
    its running task goes on (executing_keys); retire_self: the result only
    it held moves to the other worker, and the scheduler forgets it."""
    from distributed import Status

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        a, b = cluster.workers.values()
        name = f"drain-{time.monotonic_ns()}"
        held = client.submit(int, 42, workers=[a.address], key=f"held-{name}")
        assert held.result(timeout=30) == 42
        running = client.submit(_block, name, 1, workers=[a.address], key=f"running-{name}")
        until(lambda: cluster.sync(_executing, a) == [running.key],
              lambda: changed("Worker.state.executing", "executing_keys"), timeout=30)
        cluster.sync(_stop_taking_tasks, a)
        until(lambda: cluster.scheduler.workers[a.address].status == Status.closing_gracefully,
              lambda: changed("the Worker.status setter (the scheduler was not told)",
                              "stop_taking_tasks"), timeout=30)
        later = client.map(int, range(4), key=[f"later-{name}-{i}" for i in range(4)])
        distributed.wait(later, timeout=30)
        assert {w for ws in client.who_has(later).values() for w in ws} == {b.address}, \
            changed("what a worker closing gracefully is given", "stop_taking_tasks")
        Event(name).set()
        assert running.result(timeout=30) == 1  # it ran to its end
        until(lambda: cluster.sync(_executing, a) == [],
              lambda: changed("Worker.state.executing", "executing_keys"), timeout=30)
        assert cluster.sync(di.retire_self, a) is True, changed(
            "the scheduler's retire_workers handler", "retire_self")
        assert a.address not in cluster.scheduler.workers
        assert list(client.who_has(held)[held.key]) == [b.address] and held.result(timeout=30) == 42


# -- cancellation.py, client/cancels.py, worker/cancel.py ---------------------

def test_err_task_fails_a_task_wherever_it_waits(cluster):
    """A task waiting for a dependency, one queued and one processing each
    err at once with the exception given; a dependent errs with them."""
    cluster, client = cluster
    scheduler = cluster.scheduler
    name = f"gate-{time.monotonic_ns()}"
    running = client.submit(_block, name, 0, key=f"running-{name}")
    queued = [client.submit(_block, name, i, key=f"queued-{name}-{i}") for i in (1, 2, 3)]
    waiting = client.submit(_inc, running, key=f"waiting-{name}")
    dependent = client.submit(_inc, waiting, key=f"dependent-{name}")
    try:
        def state_of(future):
            ts = scheduler.tasks.get(future.key)
            return ts.state if ts is not None else None

        until(lambda: state_of(running) == "processing" and state_of(queued[-1]) == "queued"
              and state_of(waiting) == "waiting", "the tasks never got placed", timeout=30)
        for future in (waiting, queued[-1], running):
            state = scheduler.tasks[future.key].state
            ok = cluster.sync(_err, scheduler, future.key)
            assert ok, changed(f"Scheduler._transition ({state} -> erred refused)", "err_task")
            with pytest.raises(KeyError, match=future.key):
                future.result(timeout=10)
            assert scheduler.tasks[future.key].state == "erred", changed(
                f"Scheduler._transition (a {state} task did not err)", "err_task")
        with pytest.raises(KeyError, match=waiting.key):
            dependent.result(timeout=10)
        assert cluster.sync(_err, scheduler, waiting.key) is False
    finally:
        Event(name, client=client).set()
    assert client.gather(queued[:-1]) == [1, 2]


async def _err(scheduler, key):
    return di.err_task(scheduler, key, KeyError(key), "door-test")


def test_clear_interrupt_drops_an_interrupt_that_has_not_arrived():
    """A thread blocked in a C call gets an interrupt only when the call
    returns; cleared meanwhile, it never arrives."""
    outcome = {}
    gate, started = threading.Event(), threading.Event()

    def blocked():
        started.set()
        try:
            gate.wait(60)
            total = sum(range(100_000))  # bytecodes enough for a pending exception
            outcome["ended"] = f"by itself {total > 0}"
        except _Interrupt:
            outcome["ended"] = "interrupted"

    thread = threading.Thread(target=blocked, daemon=True)
    thread.start()
    assert started.wait(30)
    assert di.raise_in_thread_id(thread.ident, _Interrupt)
    di.raise_in_thread_id(thread.ident, None)  # as clear_interrupt does, from another thread
    gate.set()
    thread.join(30)
    assert outcome == {"ended": "by itself True"}, \
        "PyThreadState_SetAsyncExc(id, NULL) no longer clears a pending exception: " \
        "daskflow.dask_internals.clear_interrupt must be updated"


class _Listens(distributed.WorkerPlugin):
    def __init__(self, op):
        self.op = op

    def setup(self, worker):
        worker.door_heard = []
        di.add_worker_stream_handler(worker, self.op, lambda said, **_: worker.door_heard.append(
            said))


class _Present(SchedulerPlugin):
    name = "door-present"

    async def start(self, scheduler):
        scheduler.door_present = True


def test_plugins_from_the_client_and_a_worker_stream_handler(cluster):
    """Plugins registered by the client's own coroutine reach the scheduler
    and the workers; a worker's stream handler gets the scheduler's message."""
    cluster, client = cluster
    op = f"door-op-{time.monotonic_ns()}"
    try:
        client.sync(di.register_worker_plugin_from_client, client, _Listens(op), op)
        client.sync(di.register_scheduler_plugin_from_client, client, _Present(), "door-present")
    except Exception as exc:
        pytest.fail(changed(f"the register_*_plugin handlers ({exc!r})",
                            "register_*_plugin_from_client"))
    try:
        assert getattr(cluster.scheduler, "door_present", False), changed(
            "Scheduler.register_scheduler_plugin", "register_scheduler_plugin_from_client")
        worker = next(iter(cluster.workers.values()))
        assert op in cluster.scheduler.worker_plugins and hasattr(worker, "door_heard"), \
            changed("Scheduler.register_worker_plugin", "register_worker_plugin_from_client")
        address = next(iter(cluster.scheduler.workers))
        di.scheduler_to_worker_stream(cluster.scheduler, address).send({"op": op, "said": "hi"})
        until(lambda: worker.door_heard == ["hi"], changed(
            "Worker.stream_handlers (the handler never got the message)",
            "add_worker_stream_handler"), timeout=10)
    finally:
        client.unregister_worker_plugin(op)
        cluster.scheduler.remove_plugin("door-present")
