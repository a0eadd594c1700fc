"""``python_app``, ``bash_app`` and ``join_app``: an app call is a Dask task.

Calling an app never blocks: it becomes one ``client.submit`` whose arguments
are the upstream futures themselves, so the Dask scheduler resolves the
dependencies and data moves worker to worker, or, for a burst of short calls
with plain arguments, a place in a chunk task (``bursts``). ``App.map``
sends many calls in one ``client.map``; with ``chunksize=K`` it packs K calls
in each Dask task.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
from contextlib import nullcontext
from typing import Callable, Iterable

import cloudpickle
import dask
import distributed
from dask.base import tokenize

from .. import staging
from ..dask_internals import swap_future_class
from ..errors import UnknownExecutor, UnknownResourceKeys, UnpicklableArgument
from ..files import File
from ..pool_resources import task_resources
from ..provenance import report
from ..provenance.calls import (arguments, described, described_for_later, of_call, of_chunk,
                                of_output)
from ..shipped import AppDef, Options, Packed, RunSettings
from ..sites.routing import route
from ..worker.bash import is_auto, std_target
from ..worker.containers import as_container
from ..worker.limits import check_limits
from ..worker.limits import resolve as resolve_limits
from ..worker.mpi import MpiSpec
from ..worker.mpi import plan as plan_mpi
from ..worker.task import execute, execute_chunk, file_ready
from . import app_docs
from . import session as _client
from .arguments import Unpicklable, atoms, by_key, linkable, plain, scan_call, substitute
from .futures import AppFuture, ChunkFuture, DataFuture, as_app_future, enqueue

SPECIAL = frozenset(
    ("inputs", "outputs", "stdout", "stderr", "walltime",
     "parsl_resource_specification", "resource_specification")
)
RESOURCE_KEYS = frozenset(
    ("cores", "memory", "disk", "num_nodes", "num_ranks", "ranks_per_node",
     "launcher_options", "running_time_min", "priority")
)
#: a call keyword of every app whose function has no parameter of that name
PRIORITY = "priority"


@app_docs.filled
class App:
    """A function whose calls run as Dask tasks and return AppFutures at once.

    Made by `python_app`, `bash_app` or `join_app`, which pass their options
    on. The function's ``functools.wraps`` metadata is kept
    (``app.__wrapped__`` is the plain function); an app defined in a class
    body works as a method.

    Parameters
    ----------
    func : callable
        The function.
    kind : {"python", "bash", "join"}
        What a call runs: the function's value, the command line it returns,
        or the futures it returns.
    %(app_options)s
    %(container)s

    Raises
    ------
    TypeError, ValueError
        An option is invalid; the message names the app.
    """

    #: malformed ``stdout=``/``stderr=`` raise at the call (Parsl's apps: from the future)
    check_streams_at_call = True

    def __init__(self, func: Callable, kind: str, *, retries: int | None = None,
                 walltime: float | None = None, cache: bool | str = False,
                 executors: str | list[str] = "all",
                 ignore_for_cache: Iterable[str] | None = None,
                 retry_handler: Callable | None = None, limits: dict | None = None,
                 container: dict | None = None, batch: bool = True, priority: float = 0):
        if not callable(func):
            raise TypeError(f"@{kind}_app must decorate a function, got {func!r}")
        functools.update_wrapper(self, func)
        name = func.__name__
        if retries is not None and (
            not isinstance(retries, int) or isinstance(retries, bool) or retries < 0
        ):
            raise ValueError(f"app '{name}': retries must be an int >= 0, got {retries!r}")
        if retry_handler is not None and not callable(retry_handler):
            raise TypeError(f"app '{name}': retry_handler must be a function "
                            "retry_handler(exception, task_record) -> float")
        _check_walltime(name, walltime)
        if executors != "all" and (
            isinstance(executors, str)
            or not all(isinstance(e, str) for e in executors)
        ):
            raise TypeError(f"app '{name}': executors must be 'all' or a list of labels, "
                            f"got {executors!r}")
        if not isinstance(batch, bool):
            raise TypeError(f"app '{name}': batch must be True or False, got {batch!r}")
        _check_priority(name, "priority", priority or 0)
        if cache not in (False, True, "content"):
            raise ValueError(f"app '{name}': cache must be True, False or 'content'")
        sig = inspect.signature(func)
        self.ignore_for_cache = list(ignore_for_cache or ())
        unknown = [n for n in self.ignore_for_cache if n not in sig.parameters]
        if unknown:
            raise ValueError(f"app '{name}': ignore_for_cache names {unknown}, which are not "
                             f"parameters of {name}{sig}")
        takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        accepts = None if takes_any else frozenset(SPECIAL.intersection(sig.parameters))
        # a function's own ``priority`` parameter stays its own: its calls give a
        # priority with parsl_resource_specification (or the decorator's) instead
        self._special_names = SPECIAL if PRIORITY in sig.parameters else SPECIAL | {PRIORITY}
        self.name = name
        self.kind = kind
        self.retries = retries
        self.walltime = walltime
        self.cache = cache
        self.executors = executors
        self.signature = sig
        self.retry_handler = retry_handler
        self.limits = check_limits(name, limits)
        if container is not None and kind != "bash":
            raise ValueError(f"app '{name}': container= applies to bash apps only")
        self.container = as_container(name, container)
        self.defaults = {n: p.default for n, p in sig.parameters.items()
                         if n in SPECIAL and p.default is not p.empty}
        #: streams whose signature default is AUTO_LOGNAME: named per call
        self._auto_streams = tuple(n for n in ("stdout", "stderr")
                                   if is_auto(self.defaults.get(n)))
        # a generated name differs per call: not part of a cache key (as in Parsl)
        self.ignore_for_cache += [n for n in self._auto_streams
                                  if n in sig.parameters and n not in self.ignore_for_cache]
        self.definition = AppDef(func, name, kind, accepts, _identity(func), cache,
                                 tuple(self.ignore_for_cache), retry_handler)
        self._options: dict[tuple, Options] = {}  # default options per (run, retries, handler)
        self.batch = batch
        self.priority = priority or 0
        # calls that may be held and packed (client.bursts): a cached call's key is its
        # arguments' token, a join waits for its own calls, outputs give DataFutures
        self._batched = batch and kind != "join" and cache is not True and \
            not self._auto_streams and not self.defaults.get("outputs")

    # ------------------------------------------------------------------ calls
    def __call__(self, *args, **kwargs) -> AppFuture:
        """Submit one call: one Dask task, whose future is returned at once.

        Futures anywhere in the arguments (nested in lists, tuples and dicts
        too) are dependencies, resolved by the Dask scheduler.

        Parameters
        ----------
        *args, **kwargs
            The function's arguments, and Parsl's call keywords below. The
            function receives a call keyword only if its signature names it
            (or has ``**kwargs``); a signature default is used when the call
            gives none, so ``def f(stdout="f.out")`` redirects by default.
        inputs : list, optional
            Dependencies (futures, DataFutures) and input Files; local Files
            must exist where the app runs (`MissingInputs`), remote ones are
            staged in.
        outputs : list of File or str, optional
            Files the app creates; each gives a `DataFuture` in
            ``future.outputs``.
        stdout, stderr : str, File or tuple, optional
            Bash apps: where the command's streams go, appended to;
            ``(path, "w")`` truncates first.
        walltime : float, optional
            Seconds for this call, instead of the app's ``walltime``.
        parsl_resource_specification : dict, optional
            Parsl's keys (``cores``, ``memory``, ``disk``, ``num_nodes``,
            ``num_ranks``, ``ranks_per_node``, ``priority``, ...), checked
            here; ranks or nodes make it an MPI call; ``priority`` is Parsl's
            (lower runs first). Also spelt ``resource_specification``.
        priority : float, optional
            Dask's priority of this call (higher runs first among calls
            ready to run), instead of the app's. A keyword of the function
            if it has a ``priority`` parameter.

        Returns
        -------
        AppFuture

        Raises
        ------
        TypeError, ValueError
            A call keyword is invalid, an argument cannot be pickled, or the
            app is pinned to a pool the client lacks.
        """
        session, tid, run = _client.current()
        special = self._special(kwargs)
        if self._auto_streams or (special is not self.defaults and _has_auto(special)):
            special = self._auto_names(special, session, tid, args, kwargs)
        opts = self._call_options(special, run, session)
        resources, opts = self._placement(session, special, opts)
        kwargs = self._function_kwargs(kwargs, special)
        settings = staging.check_call(self.name, args, kwargs, opts.outputs)
        burst = session.burst
        if burst is not None:
            simple = atoms(args, kwargs)
            if self._batched and special is self.defaults and settings is None \
                    and opts.mpi is None and session.reach is None \
                    and (simple or linkable(args, kwargs)):
                future = burst.hold(self, tid, opts, resources, args, kwargs, not simple)
                if future is not None:
                    return future
            if not simple and burst.holding:  # calls this one depends on are sent first
                burst.flush_for((args, kwargs))
        if settings is not None:  # remote Files: the worker stages them (staging/)
            opts = opts.replace(staging=settings)
        chunks = ()
        if session.has_chunks or not plain(args, kwargs):
            try:
                args, kwargs, has_members, chunks = substitute(
                    (args, kwargs), session.client, self.name, session.pack)
            except Unpicklable as exc:
                raise self._explain_submit_error(exc, args, kwargs) from None
            if has_members:
                opts = _with_members(opts)
        relays = ()
        if session.reach is not None:
            args, kwargs, relays = route(session, self.name, self.executors, args, kwargs)
        key = self._key(run.token, tid, args, kwargs, run.memo)
        client = session.client
        shared = self.cache and key in client.futures  # an identical call is in flight or held
        table = (chunks,) if chunks else ()  # the chunks its members come from
        try:
            if run.report:  # the provenance plugin learns of the call from its annotation
                with described({key: self._description(tid, opts, args, kwargs)},
                               None if shared else session.sent):
                    future = _submit(client, execute, self.definition, tid, key, opts, args,
                                     kwargs, *table, key=key, pure=False, resources=resources,
                                     priority=opts.priority)
            else:
                future = _submit(client, execute, self.definition, tid, key, opts, args, kwargs,
                                 *table, key=key, pure=False, resources=resources,
                                 priority=opts.priority)
        except Exception as exc:
            raise self._explain_submit_error(exc, args, kwargs) from exc
        outputs = list(special.get("outputs") or ())
        future = as_app_future(future, tid=tid, app_name=self.name,
                               stdout=special.get("stdout"), stderr=special.get("stderr"),
                               outputs=outputs)
        enqueue(session.lines[self.name], future)
        if session.reach is not None:
            future.pools = self.executors
            if relays:
                future.relays = relays
        if outputs:
            future.outputs = self._data_futures(session, run, future, outputs)
        if shared and run.report:
            report.note_shared(client, run.token, self.definition, tid, key)
        return future

    def delayed(self, *args, **kwargs):
        """This call as a ``dask.delayed`` object, for a ``dask.compute`` graph.

        Nothing runs until it is computed (``dask.compute``, ``.compute()``,
        ``client.compute``) on the current daskflow client's cluster; then it
        runs as the app's calls do (tries, walltime, memo, a bash app's exit
        code) and is recorded in the run's provenance. Dask collections and
        futures in its arguments are its dependencies, computed in the same
        graph.

        Parameters
        ----------
        *args, **kwargs
            As for a call (``__call__``), but not ``outputs=`` (its
            DataFutures would have no task to wait for) nor an MPI
            resource specification.

        Returns
        -------
        dask.delayed.Delayed

        Examples
        --------
        >>> total = dask.delayed(sum)([double.delayed(i) for i in range(3)])  # doctest: +SKIP
        >>> total.compute()  # doctest: +SKIP
        6
        """
        from dask import delayed

        session, tid, run = _client.current()
        special = self._special(kwargs)
        if special.get("outputs") or self._auto_streams or _has_auto(special):
            raise ValueError(f"app '{self.name}': .delayed() takes no outputs= nor "
                             "generated log names; call the app instead")
        opts = self._call_options(special, run, session)
        resources, opts = self._placement(session, special, opts)
        if opts.mpi is not None:
            raise ValueError(f"app '{self.name}': an MPI call cannot be .delayed(); "
                             "call the app instead")
        kwargs = self._function_kwargs(kwargs, special)
        settings = staging.check_call(self.name, args, kwargs, opts.outputs)
        if settings is not None:
            opts = opts.replace(staging=settings)
        # chunk members become markers; collections stay, for the graph to compute
        args, kwargs, has_members, chunks = substitute((args, kwargs), None, self.name,
                                                       session.pack)
        if has_members:
            opts = _with_members(opts)
        key = self._key(run.token, tid, args, kwargs, run.memo)
        table = (chunks,) if chunks else ()
        task = delayed(execute, pure=False)
        with described_for_later({key: self._description(tid, opts, args, kwargs)}) \
                if run.report else nullcontext(), dask.annotate(priority=opts.priority,
                                                  **({"resources": resources} if resources
                                                     else {})):
            return task(self.definition, tid, key, opts, args, kwargs, *table,
                        dask_key_name=key)

    def map(self, *iterables: Iterable, chunksize: int | None = None, **kwargs) -> list[AppFuture]:
        """Call the app once per item of the iterables, in one round trip.

        Parameters
        ----------
        *iterables : iterable
            One per positional argument, all of the same length.
        chunksize : int, optional
            Pack this many calls into each Dask task, to cut the scheduler's
            per-task cost. Each call still gets its own AppFuture, result or
            exception; calls that depend on a plain (not chunked) future get a
            task each, so one failed upstream fails only the calls that use it.
            None: packed as a burst of calls is (transparent batching, when the
            app's calls are known to be short), else a task per call.
        **kwargs
            Given to every call (call keywords too, but not ``outputs=``:
            every call would write the same files).

        Returns
        -------
        list of AppFuture
            In the order of the iterables.

        Examples
        --------
        >>> fs = multiply.map(range(100_000), range(100_000), chunksize=100)  # doctest: +SKIP
        """
        if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
            raise ValueError(f"app '{self.name}': chunksize must be an int >= 1")
        if "outputs" in kwargs:
            raise ValueError(f"app '{self.name}': outputs= in map() would make every call "
                             "write the same files; call the app once per item instead")
        calls = _map_calls(self.name, iterables)
        if not calls:
            return []
        if self._auto_streams or _has_auto(kwargs):  # a log file name per call
            return [self(*args, **kwargs) for args in calls]
        session, tids, run = _client.next_tids(len(calls))
        special = self._special(kwargs)
        opts = self._call_options(special, run, session)
        resources, opts = self._placement(session, special, opts)
        burst = session.burst
        if burst is not None:
            if burst.holding:  # held calls these depend on are sent first
                burst.flush_for((calls, kwargs))
            if chunksize is None and self._batched and opts.mpi is None:
                chunksize = burst.durations.capacity(self.name) or None  # known short: packed
        kwargs = self._function_kwargs(kwargs, special)
        settings = staging.check_call(self.name, (), kwargs, ())
        schemes = set(settings.schemes) if settings else set()
        for args in calls:
            if any(isinstance(a, File) for a in args):
                settings = staging.check_call(self.name, args, {}, ())
                schemes.update(settings.schemes if settings else ())
        if schemes:
            opts = opts.replace(staging=staging.snapshot(sorted(schemes)))
        single, chunked, held = [], [], {}
        for tid, args in zip(tids, calls):
            try:
                args, kw, has_members, has_futures, chunks = scan_call(
                    args, kwargs, session.client, self.name, session.pack)
            except Unpicklable as exc:
                raise self._explain_submit_error(exc, args, kwargs) from None
            if has_futures and session.reach is not None:
                args, kw, held[tid] = route(session, self.name, self.executors, args, kw)
            plain = chunksize is None or chunksize == 1 or has_futures
            (single if plain else chunked).append((tid, args, kw, has_members, chunks))
        futures = self._submit_single(session, run.token, opts, single, special, resources)
        for future in futures:
            if held.get(future.tid):
                future.relays = held[future.tid]
        if chunked:
            futures += self._submit_chunks(session, run.token, opts, chunked, chunksize,
                                           resources)
        if single and chunked:  # back to call order
            order = {tid: i for i, tid in enumerate(tids)}
            futures.sort(key=lambda f: order[f.tid])
        return futures

    # --------------------------------------------------------------- helpers
    def _submit_single(self, session, token, opts, calls, special,
                       resources) -> list[AppFuture]:
        if not calls:
            return []
        keys = [self._key(token, tid, a, kw, opts.run.memo) for tid, a, kw, *_ in calls]
        client = session.client
        options = [_with_members(opts) if c[3] else opts for c in calls]
        descriptions = {key: self._description(tid, o, a, kw)
                        for key, (tid, a, kw, *_), o in zip(keys, calls, options)} \
            if opts.run.report else None
        try:
            with described(descriptions, session.sent) if descriptions else nullcontext():
                futures = _map(client,
                    execute, [self.definition] * len(calls), [c[0] for c in calls], keys,
                    options, [c[1] for c in calls], [c[2] for c in calls], [c[4] for c in calls],
                    key=keys, pure=False, resources=resources, priority=opts.priority,
                )
        except Exception as exc:
            raise self._explain_submit_error(exc, *calls[0][1:3]) from exc
        line = session.lines[self.name]
        out = []
        for (tid, *_), future in zip(calls, futures):
            future = as_app_future(future, tid=tid, app_name=self.name, outputs=[],
                                   stdout=special.get("stdout"), stderr=special.get("stderr"))
            enqueue(line, future)
            out.append(future)
        if session.reach is not None:
            for future in out:
                future.pools = self.executors
        return out

    def _submit_chunks(self, session, token, opts, calls, chunksize,
                       resources) -> list[AppFuture]:
        session.has_chunks = True
        chunks, keys, tables = [], [], []
        for start in range(0, len(calls), chunksize):
            part = calls[start:start + chunksize]
            key = f"{self.name}-{part[0][0]}-{token}"
            keys.append(key)
            chunks.append([(tid, f"{key}[{i}]", a, kw) for i, (tid, a, kw, *_) in enumerate(part)])
            tables.append({k: f for c in part if c[4] for k, f in c[4].items()} or None)
        has_members = any(c[3] for c in calls)
        opts = _with_members(opts) if has_members else opts
        descriptions = {key: of_chunk(self.definition, opts, [
            (tid, *arguments(a, kw)) for tid, _, a, kw in chunk])
            for key, chunk in zip(keys, chunks)} if opts.run.report else None
        client = session.client
        try:
            with described(descriptions, session.sent) if descriptions else nullcontext():
                chunk_futures = _map(client,
                    execute_chunk, [self.definition] * len(chunks), [opts] * len(chunks),
                    chunks, tables, key=keys, pure=False, resources=resources,
                    priority=opts.priority,
                )
        except Exception as exc:
            raise self._explain_submit_error(exc, *calls[0][1:3]) from exc
        line = session.lines[self.name]
        out = []
        for key, chunk, cf in zip(keys, chunks, chunk_futures):
            swap_future_class(cf, ChunkFuture)
            session.failed_members.track(cf)
            enqueue(line, cf)
            for i, (tid, _, _, _) in enumerate(chunk):
                member = AppFuture(key, client)
                member.__dict__.update(tid=tid, app_name=self.name, outputs=[], index=i,
                                       _chunk=cf)
                out.append(member)
            if session.reach is not None:
                cf.pools = self.executors
        return out

    def _special(self, kwargs: dict) -> dict:
        """The Parsl keywords of this call (signature defaults, then the call's)."""
        names = self._special_names
        if kwargs and not names.isdisjoint(kwargs):
            special = dict(self.defaults)
            special.update((k, kwargs[k]) for k in names.intersection(kwargs))
            if "resource_specification" in special:
                special["parsl_resource_specification"] = special.pop("resource_specification")
            self._check_special(special)
            return special
        return self.defaults

    def _check_special(self, special: dict) -> None:
        _check_walltime(self.name, special.get("walltime"))
        if PRIORITY in special:
            if special[PRIORITY] is None:  # as if not given
                del special[PRIORITY]
            else:
                _check_priority(self.name, "priority", special[PRIORITY])
        if self.check_streams_at_call:
            for name in ("stdout", "stderr"):
                if not is_auto(special.get(name)):
                    std_target(special.get(name))
        outputs = special.get("outputs")
        if outputs is not None:
            special["outputs"] = [_as_file(self.name, "outputs", f) for f in outputs]
        spec = special.get("parsl_resource_specification")
        if spec is not None:
            if not isinstance(spec, dict):
                raise TypeError(f"app '{self.name}': parsl_resource_specification must be a "
                                f"dict, got {type(spec).__name__}")
            unknown = set(spec) - RESOURCE_KEYS
            if unknown:
                raise UnknownResourceKeys(self.name, unknown, RESOURCE_KEYS)
            if PRIORITY in spec:
                _check_priority(self.name, "parsl_resource_specification's priority",
                                spec[PRIORITY])

    def _call_options(self, special: dict, run: RunSettings, session) -> Options:
        """The call's options; retries come from the app, else the site
        profile, else the ``daskflow.retries`` config."""
        site_retries = session.default_retries
        retries = self.retries
        if retries is None:
            retries = site_retries if site_retries is not None else \
                dask.config.get("daskflow.retries")
        handler = self._run_retry_handler()
        cached = special is self.defaults and self._options.get((run.token, retries, handler))
        if cached:
            return cached
        opts = Options(
            priority=self._priority(special),
            walltime=special.get("walltime", self.walltime),
            stdout=special.get("stdout"), stderr=special.get("stderr"),
            outputs=tuple(_as_file(self.name, "outputs", f) for f in special.get("outputs") or ()),
            retries=retries, run=run, retry_handler=_shipped_handler(handler),
            limits=resolve_limits(self.name, self.limits, session.limits) if self.limits else (),
            containers=(("*", self.container),) if self.container else (
                session.containers if self.kind == "bash" else ()),
        )
        if special is self.defaults:
            self._options[(run.token, retries, handler)] = opts
        return opts

    def _priority(self, special: dict) -> float:
        """Dask's priority of a call (higher first): its ``priority=``, else
        Parsl's ``parsl_resource_specification={"priority": p}`` (Parsl's
        meaning, lower first: -p), else the app's."""
        if PRIORITY in special:
            return special[PRIORITY]
        spec = special.get("parsl_resource_specification")
        if spec and PRIORITY in spec:
            return -spec[PRIORITY]
        return self.priority

    def _run_retry_handler(self):
        """The run's retry handler: a dotted path (``daskflow.retry-handler``)
        or, for Parsl's apps, the loaded configuration's function."""
        return dask.config.get("daskflow.retry-handler")

    def _auto_names(self, special: dict, session, tid, args: tuple, kwargs: dict) -> dict:
        """``special`` with each ``AUTO_LOGNAME`` stream replaced by the name
        `_std_autopath` gives it (what the future's ``stdout``/``stderr`` show)."""
        special = dict(special)
        record = {"id": tid, "tid": tid, "func_name": self.name, "app_name": self.name,
                  "func": self.definition.func, "try_id": 0, "fail_count": 0, "fail_cost": 0,
                  "args": args, "kwargs": {**kwargs, **special},
                  "run_dir": session.run_dir or os.path.abspath(
                      dask.config.get("daskflow.run-dir"))}
        for name in ("stdout", "stderr"):
            if is_auto(special.get(name)):
                special[name] = self._std_autopath(record, name)
        return special

    def _std_autopath(self, task_record: dict, stream: str):
        """The log file of ``stream`` for the call ``task_record`` describes,
        named as Parsl names it: ``RUN-DIR/task_logs/0000/task_0007_app[_label].stdout``."""
        tid = str(task_record["id"])
        label = task_record["kwargs"].get("label")
        bucket = f"{int(tid.split('.')[0]) // 10000:04d}"  # 10,000 logs per directory
        name = f"task_{tid.zfill(4)}_{self.name}{'' if label is None else f'_{label}'}.{stream}"
        return os.path.join(task_record["run_dir"], "task_logs", bucket, name)

    def _placement(self, session, special: dict, opts: Options) -> tuple[dict | None, Options]:
        """The Dask resources of the call (its pools; MPI slots for an MPI
        call, whose options then carry what the worker needs to launch it)."""
        resources = self._resources(session)
        spec = MpiSpec.parse(self.name, special.get("parsl_resource_specification"))
        if spec is None or self.kind == "join":
            return resources, opts
        resources, call = plan_mpi(self.name, spec, session.mpi, self.executors,
                                   session.pools or [])
        return resources, opts.replace(mpi=call)

    def _function_kwargs(self, kwargs: dict, special: dict) -> dict:
        """The keywords sent to the task: Parsl keywords the function takes.

        ``inputs`` always travels (its futures are dependencies); the task
        body drops it before the call if the function does not take it.
        """
        if special is self.defaults and not self.defaults:
            return kwargs
        kwargs = {k: v for k, v in kwargs.items() if k not in self._special_names}
        accepts = self.definition.accepts
        for name, value in special.items():
            if accepts is None or name in accepts or name == "inputs":
                kwargs[name] = value
        if accepts and "resource_specification" in accepts and \
                "parsl_resource_specification" in special:
            kwargs["resource_specification"] = special["parsl_resource_specification"]
        return kwargs

    def _key(self, token, tid, args, kwargs, memo: str = "dask") -> str:
        # cache="content": a File's content may change under the same path, so
        # calls are not shared in the session; the worker's memo look-up decides
        if self.cache is not True or memo == "off":
            return f"{self.name}-{tid}-{token}"
        bound = self.signature.bind_partial(*args, **kwargs).arguments
        for name in self.ignore_for_cache:
            bound.pop(name, None)
        return f"{self.name}-{tokenize(self.definition.identity, by_key(bound))}-{token}"

    def _resources(self, session) -> dict | None:
        if self.executors == "all":
            return None
        known = session.pools
        if known is None:  # a scheduler daskflow did not start: pools unknown
            return task_resources(self.executors, ())
        missing = [label for label in self.executors if label not in known]
        if missing:
            raise UnknownExecutor(self.name, self.executors, known)
        return task_resources(self.executors, known)

    def _description(self, tid, opts: Options, args: tuple, kwargs: dict) -> dict:
        """What the provenance plugin records of a call (``provenance.calls``)."""
        return of_call(self.definition, tid, *arguments(args, kwargs), opts)

    def _data_futures(self, session, run: RunSettings, parent: AppFuture,
                      files: list[File]) -> list[DataFuture]:
        keys = [f"{self.name}-output-{parent.tid}.{i}-{run.token}" for i in range(len(files))]
        descriptions = {key: of_output(file) for key, file in zip(keys, files)} \
            if run.report else None
        with described(descriptions, session.sent) if descriptions else nullcontext():
            futures = _map(session.client, file_ready, [parent] * len(files), files, key=keys,
                                         pure=False)
        for f, file in zip(futures, files):
            swap_future_class(f, DataFuture)
            f.file, f.parent = file, parent
        return futures

    def _explain_submit_error(self, exc: Exception, args: tuple, kwargs: dict) -> Exception:
        """Name the argument that cannot be pickled, if that is what failed."""
        named = [(f"#{i}", a) for i, a in enumerate(args)] + [(f"'{k}'", v) for k, v in kwargs.items()]
        for label, value in named:
            try:
                cloudpickle.dumps(value)
            except Exception as cause:
                return UnpicklableArgument(self.name, label, f"{type(cause).__name__}: {cause}")
        try:
            cloudpickle.dumps(self.definition.func)
        except Exception as cause:
            return UnpicklableArgument(self.name, "the app function itself",
                                       f"{type(cause).__name__}: {cause}")
        return exc

    def __repr__(self) -> str:
        return f"<{self.kind}_app {self.name}>"

    def __reduce__(self):
        # An app referred to by another app's function travels by value too.
        return (_rebuild_app, (self.definition, self.retries, self.walltime, self.cache,
                               self.executors, self.ignore_for_cache, self.retry_handler,
                               self.limits, self.container, self.batch, self.priority))

    def __get__(self, obj, objtype=None):
        # An app defined in a class body behaves like a function (bound method).
        return self if obj is None else functools.partial(self, obj)


def _rebuild_app(definition: AppDef, retries, walltime, cache, executors, ignore_for_cache,
                 retry_handler, limits=None, container=None, batch=True, priority=0):
    return App(definition.func, definition.kind, retries=retries, walltime=walltime,
               cache=cache, executors=executors, ignore_for_cache=ignore_for_cache,
               retry_handler=retry_handler, limits=limits, container=container, batch=batch,
               priority=priority)


def _identity(func: Callable) -> str:
    """The app's module, name and source digest: editing the function changes it."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        source = func.__code__.co_code.hex()
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return f"{func.__module__}.{func.__qualname__}:{digest}"


# ---------------------------------------------------------------- decorators
def _decorator(kind: str):
    def decorator(function: Callable | None = None, *, data_flow_kernel=None, **options):
        if data_flow_kernel is not None:
            raise TypeError("data_flow_kernel= is Parsl's; daskflow uses the current Dask client")
        if function is None:
            return lambda f: App(f, kind, **options)
        return App(function, kind, **options)

    decorator.__name__ = f"{kind}_app"
    decorator.__doc__ = app_docs.decorator_doc(kind)
    return decorator


python_app = _decorator("python")
bash_app = _decorator("bash")
join_app = _decorator("join")


# --------------------------------------------------------------- arguments
def _check_priority(name: str, what: str, priority) -> None:
    if isinstance(priority, bool) or not isinstance(priority, (int, float)) \
            or not math.isfinite(priority):
        raise ValueError(f"app '{name}': {what} must be a finite number, got {priority!r}")


def _check_walltime(name: str, walltime) -> None:
    # nan compares false with everything, so `walltime <= 0` alone lets it through
    if walltime is not None and (
        isinstance(walltime, bool) or not isinstance(walltime, (int, float))
        or not math.isfinite(walltime) or walltime <= 0
    ):
        raise ValueError(f"app '{name}': walltime must be a finite number of seconds > 0 "
                         f"(or None for no limit), got {walltime!r}")


def _map_calls(name: str, iterables: tuple) -> list[tuple]:
    """The argument tuples of ``map``: one per position of the iterables,
    which must all have the same length (a shorter one would drop calls)."""
    columns = []
    for number, iterable in enumerate(iterables, 1):
        try:
            columns.append(list(iterable))
        except TypeError:
            raise TypeError(f"app '{name}': map() argument {number} is not iterable "
                            f"({type(iterable).__name__})") from None
    lengths = [len(column) for column in columns]
    if len(set(lengths)) > 1:
        raise ValueError(f"app '{name}': map() needs iterables of the same length, got "
                         f"lengths {', '.join(map(str, lengths))}")
    return list(zip(*columns))


def _as_file(app: str, what: str, value) -> File:
    if isinstance(value, File):
        return value
    if isinstance(value, (str, os.PathLike)):
        return File(value)
    raise TypeError(f"app '{app}': {what}= takes Files or paths, got {type(value).__name__}")


def _shipped_handler(handler):
    """A run-wide handler function travels packed: loaded in the task body,
    so one the worker cannot import fails its call, not the worker."""
    if handler is None or isinstance(handler, str):
        return handler
    if not callable(handler):
        raise TypeError(f"retry_handler must be a function retry_handler(exception, "
                        f"task_record) -> float or its dotted path, got {handler!r}")
    name = getattr(handler, "__qualname__", type(handler).__qualname__)
    module = getattr(handler, "__module__", None)
    name = f"{module}.{name}" if module else name
    return Packed(cloudpickle.dumps(handler), f"{name} (the retry handler)")


def _has_auto(special: dict) -> bool:
    return is_auto(special.get("stdout")) or is_auto(special.get("stderr"))


# Dask's own submit and map: daskflow.Client's first send every held call
# (client.bursts), while an app call sends only those it depends on
_submit = distributed.Client.submit
_map = distributed.Client.map


def _with_members(opts: Options) -> Options:
    return opts.replace(has_members=True)


__all__ = ["App", "python_app", "bash_app", "join_app"]
