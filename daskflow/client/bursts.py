"""Transparent batching: calls made in a burst share chunk tasks.

Dask spends about a millisecond of scheduler and worker time on every task,
so a loop of short calls is bound by that, not by the calls. A call of an
app whose calls are known to be short (``durations``), with plain
arguments and no per-call options, is therefore *held*: it joins the app's
open chunk, and its AppFuture, a real Future on the chunk's key, is
returned at once. The chunk becomes one Dask task (``execute_chunk``: each
call keeps its own tries, walltime, result or exception and provenance row)
as soon as

* it holds as many calls as fill ``daskflow.batching.chunk-duration``;
* ``daskflow.batching.window`` has passed since its first call;
* anything waits on one of its futures (``result()``, ``gather``, ``wait``,
  ``as_completed``, ``add_done_callback``: the held state sends first, see
  ``dask_internals.HeldState``), a call or a task depends on one, or the
  client closes.

A call may also take futures (``linked``): members of its app's open chunk
join that chunk (``f = app(f)`` in a loop: the chain runs inside chunk
tasks, one call after another on one worker, rather than one scheduler round
trip per call); other futures it takes are the chunk's *externals*, which
it waits for as a whole, so a call only joins a chunk that waits for no
more than the call does. A call given another app's held future sends the
held calls instead.

A chunk of one call becomes a plain task. Tasks are sent on the client's
event loop, in the order their chunks closed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from contextlib import nullcontext

import dask
import distributed
from dask.utils import parse_timedelta

from ..dask_internals import hold_key, is_held, send_held, swap_future_class
from ..provenance.calls import arguments, described, of_call, of_chunk
from ..shipped import MemberRef
from ..worker.task import execute, execute_chunk
from .arguments import ATOM_TYPES, futures_in, substitute
from .durations import Durations
from .futures import AppFuture, ChunkFuture, enqueue

logger = logging.getLogger("daskflow")

#: calls of an app not held after a call depended on a lone held call of it
#: (``g(f(i))`` in a loop: holding f's calls would only delay each g)
LONE_SKIP = 1000
#: calls of that app in a row, with no other call between them, that end the
#: skip early: a plain loop of its calls began (``[f(i) for i in ...]``)
LOOP_AGAIN = 16


class Chunk:
    """Held calls of one app with the same options: one task once sent."""

    __slots__ = ("app", "opts", "resources", "key", "capacity", "calls", "futures", "state",
                 "externals", "linked")

    def __init__(self, app, opts, resources, key: str, capacity: int, state,
                 externals: frozenset = frozenset()):
        self.app, self.opts, self.resources = app, opts, resources
        self.key, self.capacity, self.state = key, capacity, state
        self.externals = externals  # keys of sent tasks its calls take futures of
        self.linked = bool(externals)  # some call takes futures: substituted when sent
        self.calls: list[tuple] = []  # (tid, args, kwargs)
        self.futures: list[AppFuture] = []  # held strongly until sent, as a task would be


class Burst:
    """The held calls of one session (see the module docstring)."""

    def __init__(self, session, window: float, durations: Durations):
        self.session = session
        self.client = session.client
        self.window = window
        self.durations = durations
        self.lock = threading.Lock()
        self.open: dict[tuple, Chunk] = {}  # (app, options, resources) -> its open chunk
        self.due: deque[Chunk] = deque()  # closed, for the event loop to send in order
        self.sending = 0  # chunks the event loop is sending now
        #: app -> [calls left to send unheld (``LONE_SKIP``), last call's tid, calls in a row]
        self.skip: dict[str, list] = {}

    @property
    def holding(self) -> bool:
        """Whether some calls may be held or being sent (cheap; exact only
        on the loop)."""
        return bool(self.open or self.due or self.sending)

    def hold(self, app, tid, opts, resources, args: tuple, kwargs: dict,
             linked: bool = False) -> AppFuture | None:
        """The future of the call, held in its app's open chunk; None if the
        app's calls are not known to be short enough to pack, or if a
        ``linked`` call (one that takes futures, at the top level of its
        arguments) cannot join one (see the module docstring)."""
        capacity = self.durations.capacity(app.name)
        if capacity < 2 or not _enabled():
            return None
        if self.skip and app.name in self.skip and self._skipped(app.name, tid):
            return None
        group = (app, id(opts), None if resources is None else tuple(sorted(resources.items())))
        opened = full = False
        with self.lock:
            if linked:
                group = self._group_of_linked(group, args, kwargs)
                if group is None:
                    return None
            chunk = self.open.get(group)
            if chunk is None:
                key = f"{app.name}-{tid}-{self.session.token}"
                chunk = Chunk(app, opts, resources, key, capacity,
                              hold_key(self.client, key, self.release),
                              group[3] if len(group) > 3 else frozenset())
                self.open[group] = chunk
                opened = True
            chunk.linked = chunk.linked or linked
            future = AppFuture(chunk.key, self.client)
            future.__dict__.update(tid=tid, app_name=app.name, outputs=[],
                                   stdout=opts.stdout, stderr=opts.stderr)
            chunk.calls.append((tid, args, kwargs))
            chunk.futures.append(future)
            if len(chunk.calls) >= chunk.capacity:
                del self.open[group]
                self.due.append(chunk)
                full = True
        loop = self.client.loop
        if opened and not full:
            loop.add_callback(loop.call_later, self.window, self._expire, group, chunk)
        if full:
            loop.add_callback(self._send_due)
        return future

    def _group_of_linked(self, group: tuple, args: tuple, kwargs: dict) -> tuple | None:
        """The open chunk a call that takes futures joins: the one whose
        members it takes (if that chunk waits for all it waits for), else one
        of the calls that wait for the same tasks. None: it is not held
        (another chunk's held future, or more than one open chunk's)."""
        into, externals, members = None, set(), []
        for value in (*args, *kwargs.values()):
            if type(value) in ATOM_TYPES:
                continue
            if is_held(value):
                if into is not None and into != value.key:
                    return None
                into = value.key
                members.append(value)
            else:
                externals.add(value.key)
        if into is None:
            return (*group, frozenset(externals))
        for candidate, chunk in self.open.items():
            if chunk.key == into:
                if candidate[:3] == group and externals <= chunk.externals \
                        and all(_one_of(m, chunk.futures) for m in members):
                    return candidate
                return None
        return None  # closed already, or another app's

    def flush_for(self, obj) -> None:
        """Send the held calls if ``obj`` (a call's arguments) holds a held future."""
        held = {f.key for f in futures_in(obj) if is_held(f)}
        if not held:
            return
        with self.lock:
            lone = {c.app.name for c in self.open.values() if c.key in held and len(c.calls) == 1}
        for name in lone:
            self.skip[name] = [LONE_SKIP, None, 0]
        self.flush()

    def _skipped(self, name: str, tid) -> bool:
        """Whether this call of a skipped app is sent unheld."""
        state = self.skip[name]
        left, last, streak = state
        streak = streak + 1 if isinstance(tid, int) and last == tid - 1 else 0
        if left <= 0 or streak >= LOOP_AGAIN:
            del self.skip[name]
            return False
        state[:] = left - 1, tid, streak
        return True

    def flush(self) -> None:
        """Send every held call; from any thread, done when it returns."""
        if not self.holding:
            return
        if _on_loop(self.client):
            self.release()
        elif self.client.status in ("running", "connecting", "newly-created"):
            self.client.sync(self._release_soon)

    async def _release_soon(self) -> None:
        self.release()

    def release(self) -> None:
        """Close every open chunk and send all (on the event loop)."""
        with self.lock:
            self.due.extend(self.open.values())
            self.open.clear()
        self._send_due()

    def _expire(self, group: tuple, chunk: Chunk) -> None:
        with self.lock:
            if self.open.get(group) is not chunk:
                return  # sent already
            del self.open[group]
            self.due.append(chunk)
        self._send_due()

    def _send_due(self) -> None:
        while True:
            with self.lock:
                if not self.due:
                    return
                chunk = self.due.popleft()
                self.sending += 1  # a flush from another thread waits for it
            try:
                self._send(chunk)
            except Exception as exc:  # the calls' futures say it: nothing is lost silently
                logger.error("daskflow: could not send %d held call(s) of app '%s': %s",
                             len(chunk.calls), chunk.app.name, exc)
                chunk.state.release = None
                chunk.state.set_error(exc, exc.__traceback__)
            finally:
                with self.lock:
                    self.sending -= 1

    def _send(self, chunk: Chunk) -> None:
        session, client, app, opts = self.session, self.client, chunk.app, chunk.opts
        key, resources = chunk.key, chunk.resources
        line = session.lines[app.name]
        if len(chunk.calls) == 1:  # alone: a plain task, as if it had not been held
            tid, args, kwargs = chunk.calls[0]
            table = ()
            if chunk.linked:  # members of sent chunks: markers, their chunks once
                args, kwargs, marked, chunks = substitute((args, kwargs), client, app.name,
                                                          session.pack)
                opts = opts.replace(has_members=True) if marked else opts
                table = (chunks,) if chunks else ()
            description = {key: of_call(app.definition, tid, *arguments(args, kwargs), opts)}
            with described(description, session.sent) if opts.run.report else nullcontext():
                send_held(client, key, lambda: distributed.Client.submit(
                    client, execute, app.definition, tid, key, opts, args, kwargs, *table,
                    key=key, pure=False, resources=resources, priority=opts.priority))
            enqueue(line, chunk.futures[0])
            return
        calls = [(tid, f"{key}[{i}]", a, kw) for i, (tid, a, kw) in enumerate(chunk.calls)]
        table = ()
        if chunk.linked:
            calls, opts, table = self._linked(chunk, calls)
        description = {key: of_chunk(app.definition, opts, [
            (tid, *arguments(a, kw)) for tid, _, a, kw in calls])}
        def annotated(holder):  # the members learn their chunk before they read as sent
            swap_future_class(holder, ChunkFuture)
            for index, member in enumerate(chunk.futures):
                member.__dict__.update(index=index, _chunk=holder)

        with described(description, session.sent) if opts.run.report else nullcontext():
            holder = send_held(client, key, lambda: distributed.Client.submit(
                client, execute_chunk, app.definition, opts, calls, *table, key=key,
                pure=False, resources=resources, priority=opts.priority), annotated)
        session.failed_members.track(holder)
        enqueue(line, holder)
        session.has_chunks = True

    def _linked(self, chunk: Chunk, calls: list) -> tuple[list, object, tuple]:
        """A chunk whose calls take futures (each an argument of its own,
        see ``arguments.linkable``): a member of this chunk becomes a marker
        of its own key, which ``execute_chunk`` resolves from the outcomes so
        far; a member of a sent chunk a marker, its chunk going once in the
        table; other futures stay for Dask to resolve. The members are not
        touched: another thread may be reading them meanwhile."""
        own = {id(member): index for index, member in enumerate(chunk.futures)}
        table: dict = {}
        marked = False

        def shipped(value):
            nonlocal marked
            if type(value) in ATOM_TYPES:
                return value
            index = own.get(id(value))
            if index is not None:
                marked = True
                return (MemberRef, chunk.key, index)
            if getattr(value, "index", None) is not None:  # a member of a sent chunk
                marked = True
                table[value.key] = value._chunk
                return (MemberRef, value.key, value.index)
            return value

        out = [(tid, ident, tuple(shipped(a) for a in args),
                {k: shipped(v) for k, v in kwargs.items()})
               for tid, ident, args, kwargs in calls]
        opts = chunk.opts.replace(has_members=True) if marked else chunk.opts
        return out, opts, (table,) if table else ()


def _one_of(member, futures: list) -> bool:
    """Whether ``member`` is one of ``futures`` itself (another Future on the
    chunk's key cannot say which call it stands for); the last ones first,
    as a chain takes the call just made."""
    return any(f is member for f in reversed(futures))


def _enabled() -> bool:
    """``daskflow.batching.enabled``, read at each call (a direct read: cheap)."""
    return dask.config.config.get("daskflow", {}).get("batching", {}).get("enabled", True)


def _on_loop(client) -> bool:
    try:
        return asyncio.get_running_loop() is client.loop.asyncio_loop
    except RuntimeError:
        return False


def start(session) -> Burst | None:
    """The session's burst, listening to the workers' durations; None when
    ``daskflow.batching.enabled`` is off."""
    cfg = dask.config.get("daskflow.batching")
    if not cfg.get("enabled", True):
        return None
    durations = Durations(session.run.token, parse_timedelta(cfg["chunk-duration"]),
                          int(cfg["max-calls"]))
    try:
        durations.listen(session.client)
    except Exception:  # a client that cannot subscribe: nothing is ever known, nothing held
        logger.debug("daskflow: no durations from the workers", exc_info=True)
        return None
    return Burst(session, parse_timedelta(cfg["window"]), durations)
