"""Futures returned by app calls: real ``distributed.Future`` objects.

``AppFuture`` is a ``distributed.Future`` (so ``wait``, ``as_completed``,
``client.gather`` and ``client.submit`` accept it) with Parsl's extras:
``tid``, ``app_name``, ``outputs``, ``stdout``, ``stderr``. Two things differ
from a plain Future:

* errors: an exception that came from an upstream task is raised as
  ``DependencyError`` naming that task (the upstream future still raises its
  own exception);
* results are kept once fetched, and fetching one finished result also
  fetches other finished results of the same app in the same round trip, so
  Parsl's ``[f.result() for f in futures]`` costs one round trip per batch,
  not one per future (``daskflow.result-prefetch`` sets the batch size).

Calls packed by ``App.map(chunksize=K)`` share one Dask task: each of their
AppFutures is a Future on that task's key with its own ``index``.

As in Parsl, ``future[key]`` and ``future.name`` (a public name the class
does not have) are *lifted*: each is a small app call depending on the
future, whose AppFuture gives the item or attribute (``lifted`` registers
them here, since this module cannot import the apps).
"""

from __future__ import annotations

import weakref
from collections import deque
from typing import Any, Iterable

import dask
from dask.utils import key_split
from distributed import Client, Future, KilledWorker

from ..dask_internals import (future_state, is_held, release_soon, reported_exception,
                              swap_future_class)
from ..errors import AppCancelled, DependencyError, WorkerLost
from ..shipped import ORIGIN, Failure, Shared

PREFETCH_SCAN = 4  # look at up to this many times the batch size for finished futures
#: names daskflow reads with a default from any Future (routing, staging): never lifted
NOT_LIFTED = frozenset(("pools", "relays", "file", "parent", "filepath"))


class _Fetchable(Future):
    """A Future that keeps its value once fetched (``_has``, ``_value``)."""

    _has = False
    _value: Any = None
    _line: Line | None = None  # the prefetch line it waits in, if any

    def release(self) -> None:
        """Let go of the key (when the future is dropped), batched with the
        client's other releases: a loop of calls drops as many futures."""
        release_soon(self)


class ChunkFuture(_Fetchable):
    """The Dask task of a chunk of calls; its value is the list of outcomes."""

    _failed: frozenset = frozenset()  # indices of failed calls (``failed_members``)
    _cancelled: frozenset = frozenset()  # those of them that were cancelled


class AppFuture(_Fetchable):
    """The future of one app call: a ``distributed.Future`` with Parsl's extras.

    Dask's ``wait``, ``as_completed``, ``Client.gather`` and ``Client.submit``
    take it as they take any Future. Two things differ: an exception that
    came from an upstream task is raised as `DependencyError` naming that task,
    and a value is kept once fetched; fetching one also fetches other finished
    results of the same app (``daskflow.result-prefetch`` of them), so
    ``[f.result() for f in futures]`` costs one round trip per batch.

    Attributes
    ----------
    tid : int or str
        Task id, a sequence number in the run (``"7.2"`` for the 2nd call made
        inside the join app with tid 7).
    app_name : str
        The app's name (its function's).
    outputs : list of DataFuture
        One per ``outputs=`` File; each completes when the file exists.
    stdout, stderr : str, tuple or None
        Where a bash app's streams were redirected, as given.
    index : int or None
        Position in its chunk for calls made by ``map(chunksize=K)``.
    """

    tid: int | str
    app_name: str
    outputs: list
    stdout: Any = None
    stderr: Any = None
    index: int | None = None
    _chunk: ChunkFuture | None = None
    _lift: Any = None  # lifted.lift, registered by that module

    __iter__ = None  # not iterable: with __getitem__ lifted, Python would try fut[0], fut[1]...

    def __getitem__(self, key: Any) -> AppFuture:
        """The future of ``result()[key]``: a call that depends on this one
        (a missing key raises at its ``result()``, not here)."""
        return self._lift("getitem", self, key)

    def __getattr__(self, name: str) -> AppFuture:
        """The future of ``result().name``, for public names this class does
        not have (Parsl's lifted attributes); private names and those
        daskflow itself probes on any future raise ``AttributeError``."""
        if name.startswith("_") or name in NOT_LIFTED or hasattr(type(self), name) \
                or "_id" not in self.__dict__ or self._lift is None:  # _id: initialized
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return self._lift("getattr", self, name)

    @property
    def status(self) -> str:
        """Dask's status; for a call packed in a chunk (which itself
        succeeds), "error" if the call failed."""
        status = Future.status.fget(self)
        chunk = self._chunk
        if status == "finished" and chunk is not None and self.index in chunk._failed:
            return "error"
        return status

    @property
    def ident(self) -> str:
        return self.key if self.index is None else f"{self.key}[{self.index}]"

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the call and return its value.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; None waits as long as it takes.

        Returns
        -------
        object
            The function's value (0 for a bash app; the inner result(s) for
            a join app).

        Raises
        ------
        Exception
            The app's own exception after its last try; `DependencyError`
            if an app it depends on failed; `WorkerLost` if workers died
            running it; ``TimeoutError`` after ``timeout``.
        """
        holder = self._chunk or self
        if not holder._has:
            self._wait(timeout)
            if future_state(self).status != "finished":
                raise self._failure()
            holder = self._chunk or self  # a held call learns its chunk when sent
            fetch(holder)
        value = self._value if self._chunk is None else self._pick(self._chunk._value)
        return value.load() if type(value) is Shared else value

    def exception(self, timeout: float | None = None, **kwargs) -> BaseException | None:
        """Wait for the call and return what `result` would raise, or None.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; None waits as long as it takes.
        **kwargs
            Accepted for ``distributed.Future.exception``'s signature.

        Returns
        -------
        BaseException or None
            As `result` would raise it (`DependencyError` for an upstream
            failure); None if the call succeeded.
        """
        self._wait(timeout)
        if future_state(self).status != "finished":
            return self._failure()
        if self._chunk is None:
            return None
        if not self._chunk._has:
            fetch(self._chunk)
        outcome = self._chunk._value[self.index]
        return self._translate(outcome.exc) if isinstance(outcome, Failure) else None

    def cancel(self, reason=None, msg=None, **kwargs):
        """Cancel the call, and stop it if it runs (Parsl cannot).

        The call fails with `AppCancelled` (a
        ``concurrent.futures.CancelledError``), so its dependents fail with
        `DependencyError` naming it; a running bash or MPI command has its
        process group killed, a running Python app is interrupted as at its
        walltime; a call packed in a chunk is cancelled alone. Provenance
        records it as ``cancelled``. Dask's own ``client.cancel(futures)``
        still releases tasks the Dask way.

        Returns
        -------
        bool
            True if the call was cancelled; False if it had finished first
            (an asynchronous client gets an awaitable of it).
        """
        self._verify_initialized()
        if self._chunk is None and future_state(self).done() and not is_held(self):
            return False
        release_held([self])  # a call held for packing is sent first
        from .cancels import cancel_calls

        answer = cancel_calls(self.client, [(self.key, self.ident, self.app_name, self.tid)])
        return answer[0] if isinstance(answer, list) else _first(answer)

    def cancelled(self) -> bool:
        """True if the call was cancelled (`cancel`, or Dask's ``client.cancel``)."""
        if Future.cancelled(self):
            return True
        chunk = self._chunk
        if chunk is not None:  # known without a round trip: Dask's wait asks in its loop
            return self.index in chunk._cancelled
        state = future_state(self)
        if state.status != "error":
            return False
        exc = reported_exception(state)[0]  # a dependent's is its upstream's: not its own
        return isinstance(exc, AppCancelled) and getattr(exc, ORIGIN, (0, 0, 0))[2] == self.ident

    async def _result(self, raiseit=True):
        """What Dask awaits for ``await future`` and ``as_completed(...,
        with_results=True)``: for a chunk member, its own value or failure."""
        value = await super()._result(raiseit)
        if self._chunk is None or future_state(self).status != "finished":
            return value
        outcome = value[self.index]
        if isinstance(outcome, Failure):
            failure = self._translate(outcome.exc)
            if raiseit:
                raise failure
            return failure
        return outcome.load() if type(outcome) is Shared else outcome

    def _wait(self, timeout: float | None) -> None:
        self._verify_initialized()
        state = future_state(self)
        if not state.done():
            self.client.sync(state.wait, callback_timeout=timeout)

    def _failure(self) -> BaseException:
        state = future_state(self)
        if state.status == "cancelled":
            return state.exception
        exc, tb = reported_exception(state)
        return self._translate(exc).with_traceback(tb)

    def _lost(self, exc: KilledWorker, app_name: str, tid) -> BaseException:
        """A ``KilledWorker`` → ``WorkerLost`` saying why the worker left
        (asked of the scheduler once per future; kept)."""
        if isinstance(exc, WorkerLost):
            return exc
        known = self.__dict__.setdefault("_worker_lost", {})
        if exc.task in known:
            return known[exc.task]
        address = getattr(exc.last_worker, "address", None)
        fate = None
        if address and not self.client.asynchronous:
            from ..worker_fates import ask

            fate = ask(self.client, address)
        if fate is None:
            from ..worker_fates import lost_text

            fate = lost_text(address or "?", None)
        lost = known[exc.task] = WorkerLost(exc.task, exc.last_worker, exc.allowed_failures,
                                            app_name, tid, fate)
        return lost

    def _pick(self, outcomes: list) -> Any:
        """This call's value in its chunk's outcomes (raises its failure)."""
        outcome = outcomes[self.index]
        if isinstance(outcome, Failure):
            raise self._translate(outcome.exc)
        return outcome

    def _unpack(self, value: Any) -> Any:
        """Used where a gathered value arrives: a chunk's outcomes → this call's."""
        return value if self.index is None else value[self.index]

    def _translate(self, exc: BaseException) -> BaseException:
        """An upstream task's exception becomes a DependencyError naming it."""
        origin = getattr(exc, ORIGIN, None)
        if origin is not None:
            app, tid, ident = origin
            if ident != self.ident:
                return DependencyError(self.app_name, self.tid, app, tid,
                                       self._upstream_exception(ident, exc))
        elif isinstance(exc, KilledWorker) and exc.task != self.key:
            app, tid = _app_and_tid(exc.task)
            return DependencyError(self.app_name, self.tid, app, tid, self._lost(exc, app, tid))
        elif isinstance(exc, KilledWorker):
            return self._lost(exc, self.app_name, self.tid)
        return exc

    def _upstream_exception(self, ident, exc: BaseException) -> BaseException:
        """The very exception the upstream future holds, if this client holds
        that future (so ``cause is upstream.exception()``); else ``exc``."""
        state = self.client.futures.get(ident) if self.client is not None else None
        if state is not None and state.status == "error":
            own, _ = reported_exception(state)
            if type(own) is type(exc):
                return own
        return exc

    def __repr__(self) -> str:
        where = "" if self.index is None else f" [{self.index}]"
        return f"<AppFuture {self.app_name} tid={self.tid}: {self.status}, key: {self.key}{where}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: status, and what the client knows without a round trip."""
        from .views import future_html

        return future_html(self)


async def _first(answers) -> bool:
    return (await answers)[0]


def _app_and_tid(key) -> tuple[str, int | str | None]:
    """The app and task id in an app call's key (``"{app}-{tid}-{token}"``);
    the tid is None where the key does not hold one (cached apps)."""
    parts = str(key).rsplit("-", 2)
    if len(parts) == 3 and parts[1].replace(".", "").isdigit():
        return parts[0], int(parts[1]) if parts[1].isdigit() else parts[1]
    return key_split(key), None


class DataFuture(Future):
    """The future of one output File of an app call (``future.outputs[i]``).

    It completes when the producing app succeeded and the file exists. Pass it
    in ``inputs=`` of the next app to make that app wait for the file.

    Attributes
    ----------
    file : File
        The output File, as given in ``outputs=``.
    parent : AppFuture
        The call that writes it.
    """

    file: Any
    parent: AppFuture

    @property
    def tid(self):
        return self.parent.tid

    @property
    def filepath(self) -> str:
        return self.file.filepath

    def result(self, timeout: float | None = None):
        """Wait for the file and return it (known here: no round trip).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; None waits as long as it takes.

        Returns
        -------
        File

        Raises
        ------
        Exception
            The producing app's exception; `MissingOutputs` if it succeeded
            without creating the file.
        """
        state = future_state(self)
        if not state.done():
            self.client.sync(state.wait, callback_timeout=timeout)
        if state.status == "finished":
            return self.file  # known here: no round trip to the worker
        raise self.parent._failure() if self.parent.done() else self._own_failure()

    def exception(self, timeout: float | None = None, **kwargs):
        """Wait, and return what `result` would raise, or None.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; None waits as long as it takes.
        **kwargs
            Accepted for ``distributed.Future.exception``'s signature.

        Returns
        -------
        BaseException or None
        """
        try:
            self.result(timeout)
        except Exception as exc:
            return exc
        return None

    def _own_failure(self) -> BaseException:
        state = future_state(self)
        if state.status == "cancelled":
            return state.exception
        exc, tb = reported_exception(state)
        return self.parent._translate(exc).with_traceback(tb)

    def __repr__(self) -> str:
        return f"<DataFuture {self.file.url} of {self.parent.app_name} tid={self.tid}: {self.status}>"


def as_app_future(future: Future, **attrs) -> AppFuture:
    """Turn the Future that ``client.submit`` returned into an AppFuture in place.

    The class of a Future can be swapped because AppFuture adds no slots; this
    avoids registering a second Future on the same key for every call.
    """
    swap_future_class(future, AppFuture)
    future.__dict__.update(attrs)
    return future  # type: ignore[return-value]


class Line(deque):
    """An app's prefetch line: weak references in submission order.

    Entries leave it when fetched or found dead during a fetch; if results
    are never asked for, ``enqueue`` sweeps out dead entries whenever the
    line doubles, so its length follows the futures the user still holds.
    """

    sweep_at = 4096


def enqueue(line: Line, holder: _Fetchable) -> None:
    """Put a holder in its app's prefetch line (weakly: dropping it frees it)."""
    holder._line = line
    line.append(weakref.ref(holder))
    if len(line) > line.sweep_at:
        alive = [ref for ref in line if (h := ref()) is not None and not h._has]
        line.clear()
        line.extend(alive)
        line.sweep_at = max(Line.sweep_at, 2 * len(alive))


def fetch(holder: _Fetchable) -> None:
    """Fetch ``holder``'s value, with other finished holders of the same line."""
    batch = [holder]
    line = holder._line
    limit = dask.config.get("daskflow.result-prefetch", 256)
    if line is not None and limit > 1:
        try:
            _scan(line, holder, batch, limit)
        except IndexError:  # emptied meanwhile by a sweep on the event loop (held calls sent)
            pass
    values = Client.gather(holder.client, batch)  # not a subclass' override
    for h, v in zip(batch, values):
        h._value = v
        h._has = True


def _scan(line: Line, holder: _Fetchable, batch: list, limit: int) -> None:
    """Add finished holders of ``line`` to ``batch``; drop dead or fetched ones."""
    scanned = 0
    while line and scanned < PREFETCH_SCAN * limit and len(batch) < limit:
        other = line[0]()
        if other is None or other._has or other is holder:
            line.popleft()
            continue
        state = future_state(other)
        if not state.done():
            line.rotate(-1)  # not finished yet: look at it again later
        elif state.status == "finished":
            line.popleft()
            batch.append(other)
        else:
            line.popleft()  # failed: nothing to fetch
        scanned += 1


def release_held(futures: Iterable[Future]) -> None:
    """Send the held calls (``client.bursts``) among ``futures`` now."""
    for future in futures:
        if is_held(future):  # its release sends every held call of its client
            future.client.sync(_release, future_state(future))


async def _release(state) -> None:
    release = state.release
    if release is not None:
        release()


def gather_values(futures: Iterable[Future]) -> list:
    """Results of many futures in one round trip (``daskflow.gather``).

    Unlike ``distributed.Client.gather``, a call of a chunked map gives its
    own value, not its chunk's list.

    Parameters
    ----------
    futures : iterable of Future
        AppFutures, DataFutures or plain Dask futures, of one client.

    Returns
    -------
    list
        One value per future, in the order given.

    Raises
    ------
    Exception
        The first failure in the order given, as `AppFuture.result` raises it.

    Examples
    --------
    >>> daskflow.gather(multiply.map(range(10), range(10), chunksize=5))  # doctest: +SKIP
    [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
    """
    futures = list(futures)
    release_held(futures)  # held calls learn their chunks when sent
    holders = [getattr(f, "_chunk", None) or f for f in futures]
    todo = list({id(h): h for h in holders if not getattr(h, "_has", False)}.values())
    try:
        fetched = Client.gather(futures[0].client, todo) if todo else []
    except Exception:
        for f in futures:
            if f.status in ("error", "cancelled"):
                f.result()  # raises this future's failure, translated
        raise
    plain = {}
    for h, v in zip(todo, fetched):
        if isinstance(h, _Fetchable):
            h._value, h._has = v, True
        else:
            plain[id(h)] = v
    values = [
        f.result() if isinstance(f, AppFuture)
        else h._value if isinstance(h, _Fetchable) else plain[id(h)]
        for f, h in zip(futures, holders)
    ]
    return [v.load() if type(v) is Shared else v for v in values]
