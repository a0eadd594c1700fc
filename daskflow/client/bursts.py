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
from ..worker.task import execute, execute_chunk
from .arguments import futures_in
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

    __slots__ = ("app", "opts", "resources", "key", "capacity", "calls", "futures", "state")

    def __init__(self, app, opts, resources, key: str, capacity: int, state):
        self.app, self.opts, self.resources = app, opts, resources
        self.key, self.capacity, self.state = key, capacity, state
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
        #: app -> [calls left to send unheld (``LONE_SKIP``), last call's tid, calls in a row]
        self.skip: dict[str, list] = {}

    @property
    def holding(self) -> bool:
        """Whether some calls may be held (cheap; exact only on the loop)."""
        return bool(self.open or self.due)

    def hold(self, app, tid, opts, resources, args: tuple, kwargs: dict) -> AppFuture | None:
        """The future of the call, held in its app's open chunk; None if the
        app's calls are not known to be short enough to pack."""
        capacity = self.durations.capacity(app.name)
        if capacity < 2 or not _enabled():
            return None
        if self.skip and app.name in self.skip and self._skipped(app.name, tid):
            return None
        group = (app, id(opts), None if resources is None else tuple(sorted(resources.items())))
        opened = full = False
        with self.lock:
            chunk = self.open.get(group)
            if chunk is None:
                key = f"{app.name}-{tid}-{self.session.token}"
                chunk = Chunk(app, opts, resources, key, capacity,
                              hold_key(self.client, key, self.release))
                self.open[group] = chunk
                opened = True
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
            try:
                self._send(chunk)
            except Exception as exc:  # the calls' futures say it: nothing is lost silently
                logger.error("daskflow: could not send %d held call(s) of app '%s': %s",
                             len(chunk.calls), chunk.app.name, exc)
                chunk.state.release = None
                chunk.state.set_error(exc, exc.__traceback__)

    def _send(self, chunk: Chunk) -> None:
        session, client, app, opts = self.session, self.client, chunk.app, chunk.opts
        key, resources = chunk.key, chunk.resources
        line = session.lines[app.name]
        if len(chunk.calls) == 1:  # alone: a plain task, as if it had not been held
            tid, args, kwargs = chunk.calls[0]
            description = {key: of_call(app.definition, tid, *arguments(args, kwargs), opts)}
            with described(description) if opts.run.report else nullcontext():
                send_held(client, key, lambda: distributed.Client.submit(
                    client, execute, app.definition, tid, key, opts, args, kwargs,
                    key=key, pure=False, resources=resources))
            enqueue(line, chunk.futures[0])
            return
        calls = [(tid, f"{key}[{i}]", a, kw) for i, (tid, a, kw) in enumerate(chunk.calls)]
        description = {key: of_chunk(app.definition, opts, [
            (tid, *arguments(a, kw)) for tid, _, a, kw in calls])}
        with described(description) if opts.run.report else nullcontext():
            holder = send_held(client, key, lambda: distributed.Client.submit(
                client, execute_chunk, app.definition, opts, calls, key=key, pure=False,
                resources=resources))
        swap_future_class(holder, ChunkFuture)
        session.failed_members.track(holder)
        for index, member in enumerate(chunk.futures):
            member.__dict__.update(index=index, _chunk=holder)
        enqueue(line, holder)
        session.has_chunks = True


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
