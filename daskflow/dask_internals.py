"""The one door to distributed's internals.

daskflow lives on distributed's public API where it can. What it cannot do
through that API is done here, and only here, so that a distributed release
that changes an internal breaks one function, caught by
``tests/test_dask_internals.py``, not a behaviour somewhere else.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from typing import Awaitable, Callable

from distributed.client import FutureState
from distributed.protocol.serialize import Serialized, serialize

WAITING_FOR_A_WORKER = ("no-worker", "queued")


def err_waiting_tasks(scheduler, why: Callable[[object], BaseException | None],
                      stimulus_id: str) -> int:
    """Err the tasks waiting for a worker for which ``why(task_state)`` gives
    an exception, as if they had raised it: their futures, their dependents
    and the scheduler plugins see it. Returns how many tasks erred.

    Uses ``Scheduler.unrunnable``, ``Scheduler.queued``, ``_transition``,
    ``_transitions`` and ``send_all`` (distributed has no public way to fail
    a task that never ran).
    """
    count = 0
    for ts in [*scheduler.unrunnable, *scheduler.queued]:
        if ts.state not in WAITING_FOR_A_WORKER:
            continue  # erred meanwhile, as a dependent of another
        exc = why(ts)
        if exc is None:
            continue
        recs, client_msgs, worker_msgs = scheduler._transition(
            ts.key, "erred", stimulus_id, cause=ts.key,
            exception=Serialized(*serialize(exc)), traceback=None,
            exception_text=f"{type(exc).__name__}: {exc}", traceback_text="")
        scheduler._transitions(recs, client_msgs, worker_msgs, stimulus_id)
        scheduler.send_all(client_msgs, worker_msgs)
        count += 1
    return count


def err_task(scheduler, key, exc: BaseException, stimulus_id: str) -> bool:
    """Err the unfinished task ``key`` as if it had raised ``exc``, wherever
    it is (waiting, queued, processing: its worker's outcome is then
    ignored); its future, dependents and the scheduler plugins see it.
    False if it had finished or is not known.

    Uses ``Scheduler.tasks``, ``_transition``, ``_transitions`` and
    ``send_all``; a task that waits for its dependencies goes through
    ``released``, which takes its exception from the ``TaskState`` itself."""
    ts = scheduler.tasks.get(key)
    if ts is None or ts.state in ("memory", "erred", "forgotten"):
        return False
    facts = {"cause": key, "exception": Serialized(*serialize(exc)), "traceback": None,
             "exception_text": f"{type(exc).__name__}: {exc}", "traceback_text": ""}
    if ts.state == "processing":
        facts["worker"] = ts.processing_on.address
    elif ts.state not in WAITING_FOR_A_WORKER:
        ts.exception, ts.traceback = facts["exception"], None
        ts.exception_text, ts.traceback_text = facts["exception_text"], ""
        ts.exception_blame = ts
        facts = {}
    recs, client_msgs, worker_msgs = scheduler._transition(key, "erred", stimulus_id, **facts)
    scheduler._transitions(recs, client_msgs, worker_msgs, stimulus_id)
    scheduler.send_all(client_msgs, worker_msgs)
    return True


TRANSITION_FACTS = ("worker", "startstops", "nbytes", "exception", "exception_text",
                    "traceback_text", "cause")


def transition_facts(kwargs: dict) -> dict:
    """What a scheduler plugin's ``transition`` hook is told of a task that
    provenance records: where it ran, its start/stop times, its result's
    size, or its exception (pickled and as text) and the task to blame.

    Relies on the keyword names distributed passes to
    ``SchedulerPlugin.transition`` (only ``**kwargs`` in its signature):
    ``worker``, ``startstops`` and ``nbytes`` when a task finishes;
    ``exception``, ``exception_text``, ``traceback_text`` and ``cause`` when
    it errs."""
    return {name: kwargs[name] for name in TRANSITION_FACTS if name in kwargs}


def worker_memory_limit(scheduler, address: str) -> int | None:
    """The memory limit (bytes) of a worker the scheduler knows, if it has one.

    Uses ``Scheduler.workers`` and ``WorkerState.memory_limit``."""
    ws = scheduler.workers.get(address)
    return getattr(ws, "memory_limit", None) or None


def blamed_key(scheduler, key) -> object | None:
    """The key of the task whose failure made task ``key`` err as a dependent
    (distributed tells plugins a dependent erred, not because of which task).

    Uses ``Scheduler.tasks`` and ``TaskState.exception_blame``."""
    ts = scheduler.tasks.get(key)
    blame = getattr(ts, "exception_blame", None)
    return None if blame is None else blame.key


def exit_reporting_nanny(topic: str):
    """A ``distributed.Nanny`` that tells the scheduler, as event ``topic``
    (``{worker, exitcode}``), how its worker's process ended when it ended
    on its own (not while the Nanny closes): distributed's Nanny only logs
    it locally.

    A worker that ends while its Nanny still starts (a task that exits the
    process moments after the worker joined, before the Nanny read the
    worker's hello) fails the Nanny's start; its exit status is kept in
    ``exit_while_starting`` for the caller to report (``sites.nanny_process``).

    Overrides ``Nanny._on_worker_exit`` and ``Nanny._on_worker_exit_sync``
    (no public hook sees the exit code).
    """
    from distributed import Nanny
    from distributed.core import Status

    class ExitReportingNanny(Nanny):
        exit_while_starting: int | None = None

        def _on_worker_exit_sync(self, exitcode):
            if self.status == Status.init:  # Server.start is still running start_unsafe
                self.exit_while_starting = int(exitcode)
            return super()._on_worker_exit_sync(exitcode)

        async def _on_worker_exit(self, exitcode):
            if self.status == Status.running and self.worker_address:
                try:
                    self.log_event(topic, {"worker": self.worker_address,
                                           "exitcode": int(exitcode)})
                except Exception:  # telling is a courtesy: restarting matters more
                    pass
            return await super()._on_worker_exit(exitcode)

        async def call_scheduler(self, op: str, timeout: float, **msg):
            """The answer of the scheduler's handler ``op``, on a connection
            of its own (this Nanny's may be closed: it failed to start)."""
            from distributed.core import rpc

            async with rpc(self.scheduler_addr, connection_args=self.connection_args) as r:
                return await asyncio.wait_for(getattr(r, op)(**msg), timeout)

    return ExitReportingNanny


# -- the scheduler's task states (sites/scaling.py) -------------------------

def queued_tasks(scheduler):
    """The tasks in state ``queued`` (waiting for a worker slot under
    distributed's root-task queuing).

    Uses ``Scheduler.queued`` (a ``HeapSet`` of ``TaskState``): distributed
    has no public count of queued tasks per resource restriction."""
    return scheduler.queued


def unrunnable_tasks(scheduler):
    """The tasks in state ``no-worker`` (no worker has what they need).

    Uses ``Scheduler.unrunnable`` (a mapping keyed by ``TaskState``)."""
    return scheduler.unrunnable


def processing_tasks(worker_state):
    """The tasks the scheduler has assigned to one worker (``WorkerState``).

    Uses ``WorkerState.processing`` (a set of ``TaskState``)."""
    return worker_state.processing


def in_worker_task_thread() -> bool:
    """Whether this thread runs a task of a worker's thread pool (so that
    ``secede`` may be called).

    Uses ``distributed.threadpoolexecutor.thread_state.executor`` (set in a
    pool thread) and ``get_worker`` (raises ``ValueError`` outside a worker)."""
    from distributed.threadpoolexecutor import thread_state
    from distributed.worker import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return getattr(thread_state, "executor", None) is not None


async def correct_cluster_state(cluster) -> None:
    """Make a SpecCluster start the workers of its ``worker_spec`` that it
    has not started yet, and close the ones no longer in it.

    Uses ``SpecCluster._correct_state`` (the coroutine ``scale`` schedules;
    ``scale`` itself counts workers and cannot add named blocks)."""
    await cluster._correct_state()


# -- a Future made from a key (sites/routing.py) ----------------------------

def future_of_key(client, key):
    """A Future on task ``key`` that the scheduler keeps ``client`` told
    about, though ``client`` did not submit it (a relay task reading a value
    it was given by key only).

    Uses ``Future(key, client)`` (distributed asks users not to make one)
    and ``Client._send_to_scheduler`` with the ``client-desires-keys``
    operation: what ``Client.get_dataset`` does for the futures it unpickles,
    through ``_inform_scheduler_of_futures``, which sends every key the
    client holds. There is no public way to desire one key."""
    from distributed import Future

    future = Future(key, client)
    client._send_to_scheduler({"op": "client-desires-keys", "keys": [key]})
    return future


# -- threads of a worker (walltime.py) ---------------------------------------

def in_worker_context(func: Callable) -> Callable:
    """``func`` wrapped to run, in any thread, as in the calling worker
    thread: with the task's key and execution state, and ``get_worker()``
    and ``get_client()`` finding the worker (a plain ``threading.Thread``
    starts with neither).

    Uses ``distributed.worker.thread_state`` (a ``threading.local`` holding
    ``key``, ``execution_state``, ``start_time``), copied, and the context
    variable from which ``get_worker`` reads the worker (``_worker_cvar``),
    carried with ``contextvars.copy_context``."""
    import contextvars

    from distributed.worker import thread_state

    state = dict(thread_state.__dict__)
    context = contextvars.copy_context()

    def run(*args, **kwargs):
        thread_state.__dict__.update(state)
        return context.run(func, *args, **kwargs)

    return run


def raise_in_thread(thread, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` in ``thread`` at its next Python bytecode (a thread
    blocked inside a C call finishes that call first). True if the thread was
    found.

    Uses CPython's ``PyThreadState_SetAsyncExc`` through ``ctypes.pythonapi``
    (not distributed's, but as private: Python has no public way)."""
    return raise_in_thread_id(thread.ident, exc_type)


def raise_in_thread_id(thread_id: int, exc_type: type[BaseException] | None) -> bool:
    """``raise_in_thread`` by the thread's ident; ``exc_type`` None clears
    an exception raised so that has not arrived yet."""
    import ctypes

    found = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type else None)
    return found == 1


def clear_interrupt(thread_id: int) -> None:
    """Drop an exception ``raise_in_thread_id`` raised in that thread that has
    not arrived yet (called from the thread itself)."""
    raise_in_thread_id(thread_id, None)


# -- the scheduler's dashboard (dashboard/register.py) -----------------------

def dashboard_applications(scheduler) -> list:
    """The Bokeh server applications of the scheduler's dashboard (none when
    it has no dashboard, or bokeh is missing).

    Uses ``Scheduler.http_application`` (a ``RoutingApplication``), its
    ``applications`` list and ``BokehApplication.app_paths``."""
    http = getattr(scheduler, "http_application", None)
    return [app for app in getattr(http, "applications", ()) if hasattr(app, "app_paths")]


def add_dashboard_application(scheduler, app) -> None:
    """Serve one more Bokeh application from the scheduler's dashboard.

    Uses ``Scheduler.http_application.add_application`` (tornado's)."""
    scheduler.http_application.add_application(app)


def new_dashboard_application(routes: dict, scheduler, prefix: str, template_variables: dict):
    """A Bokeh application serving ``routes`` (path -> document function)
    beside the scheduler's own pages.

    Uses ``distributed.dashboard.core.BokehApplication``."""
    from distributed.dashboard.core import BokehApplication

    return BokehApplication(routes, scheduler, prefix=prefix,
                            template_variables=template_variables)


def dress_like_dashboard(doc) -> None:
    """Give a Bokeh document the theme and page template of the dashboard's
    own pages (navigation bar included).

    Uses ``distributed.dashboard.components.scheduler.BOKEH_THEME`` and its
    Jinja ``env`` with the ``simple.html`` template."""
    from distributed.dashboard.components.scheduler import BOKEH_THEME, env

    doc.theme = BOKEH_THEME
    doc.template = env.get_template("simple.html")


def dashboard_template_variables(scheduler) -> dict:
    """The dict every dashboard page of ``scheduler`` renders (the same
    object each call): its ``"pages"`` list is the navigation bar.

    Uses ``distributed.dashboard.scheduler.template_variables``, memoized
    per scheduler, and its ``"pages"`` key."""
    from distributed.dashboard.scheduler import template_variables

    return template_variables(scheduler)


# -- Futures (futures.py, apps.py) -------------------------------------------

def swap_future_class(future, cls):
    """Turn ``future`` into an instance of ``cls``, a subclass of ``Future``
    that adds no slots, in place: no second Future on the same key.

    Relies on ``Future`` instances having a ``__dict__`` and no
    ``__slots__`` of their own, so that ``__class__`` can be assigned."""
    future.__class__ = cls
    return future


def future_state(future):
    """The ``FutureState`` of ``future``: ``status``, ``done()``,
    ``wait()`` (a coroutine), ``exception`` and ``traceback``, read without
    a round trip (``Future.exception`` waits in the client's loop, and an
    AppFuture translates it).

    Uses ``Future._state``."""
    return future._state


def reported_exception(state) -> tuple[BaseException, object]:
    """The exception and traceback a ``FutureState`` holds, unpacked as
    ``Future.exception()`` and ``Future.result()`` unpack them.

    Uses ``distributed.core.clean_exception``."""
    from distributed.core import clean_exception

    _, exc, tb = clean_exception(state.exception, state.traceback)
    return exc, tb


class HeldState(FutureState):
    """The state of a key whose task is not sent yet (calls held by
    ``client.bursts``): whatever waits on its futures calls ``release``
    first, on the client's event loop, which sends the task.

    Relies on every waiter (``Future.result``, ``wait``, ``as_completed``,
    ``Client.gather``, ``add_done_callback``) awaiting ``FutureState.wait``,
    and on ``FutureState`` declaring ``__slots__``."""

    __slots__ = ("release",)

    async def wait(self, timeout=None):
        release = self.release
        if release is not None:
            release()
        await super().wait(timeout)


def is_held(future) -> bool:
    """Whether ``future``'s task is held, not sent yet."""
    state = getattr(future, "_state", None)
    return type(state) is HeldState and state.release is not None


def hold_key(client, key, release: Callable[[], None]):
    """Register ``key`` with ``client`` before its task exists, so that
    ``Future(key, client)`` works at once; waiting on it calls ``release``.

    Uses ``Client.futures`` (the client's states by key) and
    ``Client._refcount_lock``."""
    state = HeldState(key)
    state.release = release
    with client._refcount_lock:
        client.futures[key] = state
    return state


def send_held(client, key, submit: Callable[[], object],
              then: Callable[[object], None] | None = None):
    """Send the task of a held ``key``: ``submit()`` (a ``Client.submit``)
    returns its future, which then shares the held state, so the futures
    handed out already follow the task. Call on the client's event loop
    only: the scheduler's reply about ``key`` is handled there, so it cannot
    arrive while the key is briefly unregistered. ``then(future)`` runs
    while the key still reads as held (``is_held``), so that no other thread
    sees the sent task before its futures are told of it.

    ``Client.submit`` sends nothing for a key its ``futures`` already hold;
    this hides the key while it sends. Uses ``Client.futures``,
    ``Client._refcount_lock`` and ``Future._state``."""
    with client._refcount_lock:
        held = client.futures.pop(key, None)
        try:
            future = submit()
        finally:
            if held is not None:
                client.futures[key] = held
    if held is not None:
        future._state = held
    if then is not None:
        then(future)
    if held is not None:
        held.release = None
    return future


# -- dropped futures (futures.py) ---------------------------------------------

class _Releases:
    """Keys of one client whose futures were dropped, released by its event
    loop in batches: ``Future.release`` wakes the loop once per future, which
    costs the dropping thread several microseconds (a write to the loop's
    wake-up socket), as much as an app call itself.

    A key is released by a flush scheduled after the key was added, so
    after whatever the client had queued for that key before (its task's
    ``update-graph``): no release overtakes its own task."""

    __slots__ = ("client", "lock", "keys", "scheduled")

    def __init__(self, client):
        self.client = client
        self.lock = threading.RLock()  # re-entrant: a __del__ may run inside add()
        self.keys: deque = deque()  # (key, the client's generation when it was added)
        self.scheduled = False  # whether a flush is due on the loop

    def add(self, key, generation: int) -> None:
        with self.lock:
            self.keys.append((key, generation))
            if self.scheduled:
                return
            self.scheduled = True
            count = len(self.keys)
        try:
            self.client.loop.add_callback(self.flush, count)
        except (AttributeError, TypeError, RuntimeError):  # the client's loop is gone
            with self.lock:
                self.keys.clear()
                self.scheduled = False

    def flush(self, count: int) -> None:
        """Release the first ``count`` keys; schedule another flush for those
        added since this one was scheduled."""
        with self.lock:
            batch = [self.keys.popleft() for _ in range(min(count, len(self.keys)))]
            more = len(self.keys)
            self.scheduled = bool(more)
        if more:
            self.client.loop.add_callback(self.flush, more)
        client = self.client
        generation = client.generation
        for key, added_in in batch:
            if added_in == generation:  # not a key forgotten by a restart since
                client._dec_ref(key)


def release_soon(future) -> None:
    """``Future.release`` (called when a future is dropped), batched with
    the other releases of its client (see ``_Releases``).

    Uses ``Future._cleared``, ``Future._generation``, ``Client.generation``
    and ``Client._dec_ref``, as ``Future.release`` does."""
    future._verify_initialized()
    client = future.client
    if future._cleared or client.generation != future._generation:
        return
    future._cleared = True
    releases = client.__dict__.get("_daskflow_releases")
    if releases is None:
        releases = client.__dict__.setdefault("_daskflow_releases", _Releases(client))
    releases.add(future.key, future._generation)


# -- the default client (client/session.py) -----------------------------------

_last_default: tuple = (None, None)  # (the registry's index then, weakref to that client)


def default_client():
    """``distributed.default_client()``, without its cost per app call:
    with no client bound as current, distributed sorts its registry of
    default clients on every call (a few microseconds). The client found is
    kept (weakly) until another is made the default, or it closes.

    Raises ``ValueError`` when there is none, as distributed does.
    Uses ``distributed.client._current_client`` and ``_global_client_index``
    (the registry's next index, raised each time a client is made the
    default)."""
    global _last_default
    from distributed import client as dclient

    current = dclient._current_client.get()
    if current:
        return current
    index = dclient._global_client_index[0]
    seen, ref = _last_default
    if seen == index:
        client = ref()
        if client is not None and client.status != "closed":
            return client
    client = dclient.default_client()
    _last_default = (index, weakref.ref(client))
    return client


# -- names in settings (worker/task.py, sites/start.py) -----------------------

def import_dotted(name: str):
    """The object a dotted path names (``"package.module.attribute"``), as
    distributed resolves its own settings' names.

    Uses ``distributed.utils.import_term``."""
    from distributed.utils import import_term

    return import_term(name)


# -- worker processes (sites/nanny_process.py) --------------------------------

def run_like_dask_worker(main: Callable[[], Awaitable], log_level: int) -> None:
    """Run the coroutine ``main()`` as ``dask worker`` runs its Nanny: in
    distributed's event loop (uvloop when configured), with distributed's
    log lines at ``log_level`` for the whole run.

    Uses ``distributed.compatibility.asyncio_run``,
    ``distributed.config.get_loop_factory`` and
    ``distributed.utils.silence_logging_cmgr``."""
    from distributed.compatibility import asyncio_run
    from distributed.config import get_loop_factory
    from distributed.utils import silence_logging_cmgr

    with silence_logging_cmgr(log_level):
        asyncio_run(main(), loop_factory=get_loop_factory())


# -- a task's annotations (provenance/plugin.py) ------------------------------

def drop_annotation(ts, name: str) -> None:
    """Remove annotation ``name`` from a new task's ``TaskState`` (a
    scheduler plugin read it in ``update_graph``), so that it does not go on
    to the task's worker, nor stay in the scheduler's logs of messages sent.

    Relies on ``TaskState.annotations`` being the task's own dict, the one
    ``Scheduler._task_to_msg`` ships to the worker when the task is
    computed (after ``update_graph``), and on the scheduler reading no
    annotation it does not know after ``update_graph``."""
    annotations = ts.annotations
    if annotations:
        annotations.pop(name, None)


# -- a finished task's own facts (provenance/report.py, plugin.py) -----------

def tell_when_finished(name: str, msg) -> bool:
    """Have ``msg`` reach the scheduler with the running task's finished
    message, as ``metadata[name]``; False outside a worker's task (then
    nothing is sent).

    A chunk's report as a Dask event of its own was a message more each
    way per chunk (a wake-up of the worker's loop, a write, a read and a
    dispatch on the scheduler). Relies on ``Worker.get_current_task``, on
    ``WorkerState.tasks[key].metadata`` going out whole in the task's
    ``TaskFinishedMsg``, and on the scheduler passing it to
    ``SchedulerPlugin.transition`` as the ``metadata`` keyword (see
    ``finished_metadata``). It must be msgpack-serializable."""
    from distributed.worker import get_worker

    try:
        worker = get_worker()
        ts = worker.state.tasks[worker.get_current_task()]
    except (ValueError, KeyError):
        return False
    ts.metadata[name] = msg
    return True


def finished_metadata(scheduler, key, kwargs: dict, name: str):
    """What the task ``key`` left as ``metadata[name]`` (``tell_when_finished``),
    taken from a ``transition`` hook's keywords as it goes to memory, and
    dropped from the scheduler's ``TaskState.metadata`` (which keeps what
    workers send for as long as the task lives); None if nothing."""
    metadata = kwargs.get("metadata")
    if not metadata or name not in metadata:
        return None
    ts = scheduler.tasks.get(key) if scheduler is not None else None
    if ts is not None and ts.metadata:
        ts.metadata.pop(name, None)
    return metadata[name]


# -- batched streams (latency.py) ---------------------------------------------
#
# distributed batches the messages of its long-lived streams: each is a
# ``distributed.batched.BatchedSend`` that writes at most once per
# ``interval`` seconds (hard-coded where the stream is made: scheduler to
# worker 5 ms, worker to scheduler 2 ms, scheduler to client 2 ms, client to
# scheduler 10 ms). A chain of dependent tasks waits for them at every hop.

def scheduler_to_worker_stream(scheduler, address: str):
    """The scheduler's batched stream to worker ``address`` (None if gone).

    Uses ``Scheduler.stream_comms`` (address -> ``BatchedSend``), filled in
    ``Scheduler.add_worker`` before the plugins' ``add_worker`` hooks run."""
    return scheduler.stream_comms.get(address)


def scheduler_to_client_stream(scheduler, client: str):
    """The scheduler's batched stream to client ``client`` (an id), or None
    while it is not made yet or after the client left.

    Uses ``Scheduler.client_comms`` (client id -> ``BatchedSend``), filled in
    ``Scheduler.add_client`` just after the plugins' ``add_client`` hooks."""
    return scheduler.client_comms.get(client)


def after_client_stream_starts(scheduler, client: str, callback: Callable) -> None:
    """Call ``callback(stream)`` with the scheduler's batched stream to
    ``client`` once it exists; for a plugin's ``add_client`` hook, which
    distributed calls just before it makes that stream. Not called if the
    client left meanwhile.

    Relies on ``Scheduler.add_client`` making the stream and storing it in
    ``client_comms`` without awaiting anything after the hooks, so that a
    callback scheduled on the scheduler's event loop (``Scheduler.loop``)
    runs once it is there."""
    def later():
        stream = scheduler_to_client_stream(scheduler, client)
        if stream is not None:
            callback(stream)

    scheduler.loop.add_callback(later)


def worker_to_scheduler_stream(worker):
    """A worker's batched stream to its scheduler.

    Uses ``Worker.batched_stream`` (made in ``Worker.__init__``)."""
    return worker.batched_stream


def client_to_scheduler_stream(client):
    """A client's batched stream to its scheduler (None before it connected,
    or for a client of an in-process scheduler without a stream).

    Uses ``Client.scheduler_comm`` (the ``BatchedSend`` that
    ``Client._send_to_scheduler`` writes to)."""
    return getattr(client, "scheduler_comm", None)


def stream_interval(stream) -> float:
    """The batching interval of a batched stream, in seconds.

    Uses ``BatchedSend.interval`` (seconds; ``__init__`` parses it)."""
    return stream.interval


def set_stream_interval(stream, seconds: float) -> None:
    """Make a batched stream write at most once per ``seconds`` (0: as soon
    as it can; messages queued while a write is under way still go out
    together in the next one).

    Sets ``BatchedSend.interval``, which ``BatchedSend._background_send``
    reads before each wait."""
    stream.interval = float(seconds)


def add_worker_stream_handler(worker, op: str, handler: Callable) -> None:
    """Let the scheduler send ``{"op": op, ...}`` to ``worker`` on its stream:
    ``handler(**rest of the message)`` runs in the worker's event loop.

    Uses ``Worker.stream_handlers``, read for every message of the stream."""
    worker.stream_handlers[op] = handler


async def register_worker_plugin_here(scheduler, plugin, name: str) -> None:
    """Register a worker plugin from inside the scheduler's process (no
    client yet): workers that join later get it when they register, and
    running ones at once, as with ``Client.register_plugin``.

    Uses the ``Scheduler.register_worker_plugin`` handler with the plugin
    pickled by ``distributed.protocol.pickle.dumps``, as the client sends it."""
    from distributed.protocol.pickle import dumps

    await scheduler.register_worker_plugin(None, dumps(plugin), name, idempotent=True)


def stop_taking_tasks(worker) -> None:
    """Make ``worker`` (in its event loop) take no new task while those it
    runs go on: the scheduler places none on it, and it starts none of the
    tasks queued on it (the scheduler sends them elsewhere when it leaves).

    Sets ``Worker.status`` to ``Status.closing_gracefully``: the setter tells
    the scheduler (``worker-status-change``, which drops the worker from
    ``Scheduler.running``) and pauses the worker's state machine (``PauseEvent``)."""
    from distributed.core import Status

    worker.status = Status.closing_gracefully


def executing_keys(worker) -> list:
    """The keys of the tasks ``worker`` runs now, seceded ones too.

    Reads ``Worker.state.executing`` and ``Worker.state.long_running``."""
    state = worker.state
    return [ts.key for ts in (*state.executing, *state.long_running)]


async def retire_self(worker) -> bool:
    """Have the scheduler copy the results only ``worker`` holds to other
    workers, then forget the worker (which stays up: its caller closes it);
    False if no other worker could take them (the worker is kept).
    ``Worker.close_gracefully`` does this too, but on a worker already
    closing gracefully it only waits for the worker's close.

    Calls the scheduler's ``retire_workers`` handler through ``Worker.scheduler``
    (its RPC) with ``close_workers=False, remove=True``; the answer maps the
    addresses of the workers it retired to their identities."""
    import time

    retired = await worker.scheduler.retire_workers(
        workers=[worker.address], close_workers=False, remove=True,
        stimulus_id=f"daskflow-drain-{time.time()}")
    return worker.address in retired


async def register_scheduler_plugin_from_client(client, plugin, name: str) -> None:
    """``Client.register_plugin`` of a scheduler plugin, awaited in the
    client's loop (the public method blocks, or returns a coroutine only
    for an asynchronous client); idempotent.

    Uses the ``Scheduler.register_scheduler_plugin`` handler with the plugin
    pickled by ``distributed.protocol.pickle.dumps``, as the client sends it."""
    from distributed.protocol.pickle import dumps

    await client.scheduler.register_scheduler_plugin(plugin=dumps(plugin), name=name,
                                                     idempotent=True)


async def register_worker_plugin_from_client(client, plugin, name: str) -> None:
    """``Client.register_plugin`` of a worker plugin, awaited in the
    client's loop: the running workers set it up before this returns, and
    those that join later when they register; idempotent.

    Uses the ``Scheduler.register_worker_plugin`` handler, as the client does."""
    from distributed.protocol.pickle import dumps

    await client.scheduler.register_worker_plugin(plugin=dumps(plugin), name=name,
                                                  idempotent=True)
