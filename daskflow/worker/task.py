"""The task body: what runs on the worker for each app call.

``execute`` is the function every app call submits to Dask. Dask has already
replaced the upstream futures in the arguments by their values; the body runs
the app (a Python function, a bash command, or a join), checks the declared
outputs and tags any exception with its origin (app, tid, ident) so that the
client can tell a task's own failure from a failed dependency
(``DependencyError``). ``execute_chunk`` runs many calls of one app in one
Dask task, keeping an outcome per call.

This module never imports the client-side modules (apps, futures, client).
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from typing import Any

import cloudpickle
from distributed.protocol import serialize

from .. import failure_log, staging
from ..dask_internals import import_dotted
from ..errors import (AppCancelled, AppNotLoadable, ArgumentNotLoadable, BadCommand,
                      BashExitFailure, MissingInputs, MissingOutputs, RemoteError,
                      UnserializableResult, brief)
from ..files import File
from ..memo import keys as memo
from ..provenance import report
from ..provenance.report import CallRecord
from ..shipped import (ORIGIN, UNLOADABLE, AppDef, Failure, MemberRef, NotLoadable, Options,
                       Outcomes, Packed, Shared, shared_objects)
from . import cancel, durations, failed_members, recovery
from .bash import run_command, stream_target
from .cancel import CallCancelled
from .containers import in_container
from .limits import held
from .mpi import PREFIX_VARIABLES, mpi_command, seceded, worker_pool_label
from .mpi_python import run_python_mpi
from .usage import Meter
from .walltime import call_with_walltime

logger = logging.getLogger("daskflow")

MAX_MESSAGE = 9000  # distributed rebuilds longer messages and loses the class


def execute(app: AppDef, tid: int | str, ident: str, opts: Options, args: tuple, kwargs: dict,
            chunks: dict | None = None):
    """Run one app call on the worker; see the module docstring. ``chunks``
    maps the key of each chunk the call's members come from to its outcomes."""
    record = CallRecord(tid, ident)
    # cached apps have keys that repeat by design; their memo store guards them
    kept = None if app.cache else opts.run.results
    if kept:
        done, value = recovery.recall(kept, ident)
        if done:  # finished before; its worker died with the result: do not run again
            return value
    start = time.perf_counter()
    try:
        if opts.has_members or opts.run.shares:  # markers, or results by reference
            args, kwargs = resolve_arguments(app, tid, args, kwargs, chunks)
        value = run_cancellable(app, record, opts, args, kwargs)
        spent = time.perf_counter() - start  # the call's, not the bookkeeping's below
        if kept:
            recovery.remember_soon(kept, ident, value, opts.run.results_max_bytes)
    except CallCancelled:
        failure = cancelled(app.name, tid, ident)
        record.error = brief(failure)
    except Exception as exc:
        failure = tag(exc, app.name, tid, ident)
        record.error = brief(failure)
    else:
        report.send_finished(opts.run, record)
        durations.note(opts.run.token, app.name, 1, spent)
        return value
    report.send(opts.run, [record])  # with its usage: a task that raises leaves no metadata
    durations.note(opts.run.token, app.name, 1, time.perf_counter() - start)
    failure_log.quiet(ident)  # the client and provenance get it, with its traceback
    raise failure  # outside the except block: no implicit __context__ to ship


def execute_chunk(app: AppDef, opts: Options, calls: list, chunks: dict | None = None) -> list:
    """Run ``calls`` (``[(tid, ident, args, kwargs), ...]``) one after another
    (``chunks``: as for ``execute``, for all of them; a marker of this chunk's
    own key takes an earlier call's outcome).

    Returns one outcome per call: the value, or a ``Failure``. A call whose
    argument is a failed member of another chunk does not run; its outcome is
    that upstream failure. Each call has its own tries, walltime and memo.
    """
    kept = None if app.cache else opts.run.results
    chunk_ident = calls[0][1].rsplit("[", 1)[0] if calls else ""
    if kept:
        done, outcomes = recovery.recall(kept, chunk_ident)
        if done:
            return outcomes
    outcomes = Outcomes()
    records = []
    if opts.has_members:  # a call may take the value of an earlier call of this chunk
        chunks = {**(chunks or {}), chunk_ident: outcomes}
    start = time.perf_counter()
    for tid, ident, args, kwargs in calls:
        record = CallRecord(tid, ident)
        records.append(record)
        try:
            if opts.has_members or opts.run.shares:  # markers, or results by reference
                args, kwargs = resolve_arguments(app, tid, args, kwargs, chunks)
        except ArgumentNotLoadable as exc:  # its own failure: it did not run
            failure = tag(exc, app.name, tid, ident)
            record.error = brief(failure)
            record.skipped = True
            outcomes.append(Failure(failure))
            continue
        except Exception as upstream:
            record.error = f"dependency failed: {brief(upstream)}"
            record.skipped = True
            outcomes.append(Failure(upstream))
            continue
        try:
            outcomes.append(run_cancellable(app, record, opts, args, kwargs))
        except CallCancelled:  # this call only: the chunk goes on
            failure = cancelled(app.name, tid, ident)
            record.error = brief(failure)
            outcomes.append(Failure(failure))
        except Exception as exc:
            failure = tag(exc, app.name, tid, ident)
            record.error = brief(failure)
            outcomes.append(Failure(failure))
    spent = time.perf_counter() - start  # the calls', not the bookkeeping's below
    report.send_chunk(opts.run, chunk_ident, records, 0 if app.kind == "bash" else None)
    if kept:
        recovery.remember(kept, chunk_ident, outcomes, opts.run.results_max_bytes)  # now: see
        # recovery (a thread would fight the next chunk's calls for the interpreter lock)
    durations.note(opts.run.token, app.name, len(calls), spent)
    failed = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, Failure)]
    if failed:
        failed_members.tell(opts.run.token, chunk_ident, failed, [
            i for i in failed if isinstance(outcomes[i].exc, AppCancelled)])
    return outcomes


def run_cancellable(app: AppDef, record: CallRecord, opts: Options, args: tuple,
                    kwargs: dict):
    """``run_call``, its value made ``sendable``; a cancel (``cancel.stop``)
    ends it with ``CallCancelled``, even one that came as it finished."""
    call = cancel.enter(record.ident)
    try:
        value = sendable(app.name, record.tid, run_call(app, record, opts, args, kwargs),
                         opts.run)
    finally:
        if cancel.leave(call):
            raise CallCancelled
    return value


def cancelled(app_name: str, tid, ident: str) -> AppCancelled:
    """The call's ``AppCancelled``, tagged as its own."""
    return tag(AppCancelled(app_name, tid), app_name, tid, ident)


def pick(outcomes: list, index: int):
    """Call ``index``'s value among a chunk's outcomes, raising its failure:
    what a task of Dask's own API gets for a chunk member (``client.arguments``)."""
    outcome = outcomes[index]
    if isinstance(outcome, Failure):
        raise outcome.exc
    return outcome


_PLAIN = frozenset({type(None), bool, int, float, complex, str, bytes})


def sendable(app_name: str, tid, value, run):
    """The value as it leaves the call: itself, or on workers in the driver's
    own process one that does not pickle by reference (``shipped.Shared``)."""
    try:
        check_serializable(app_name, tid, value)
    except UnserializableResult:
        if not run.shares:
            raise
        return shared_objects(run.token).share(value)
    return value


def check_serializable(app_name: str, tid, value) -> None:
    """Fail the call now if its value cannot travel.

    A value the worker cannot serialize stays in its memory as if it were
    fine: the task is ``done``, and a dependent on another worker (or the
    client) asks for it and waits for ever, since distributed retries the
    transfer. So every value is pickled once, as distributed's worker would
    send it (protocol 5 with out-of-band buffers: a numpy array's data is
    handed over as a memoryview, not copied), then with cloudpickle (values
    whose classes or functions live in ``__main__``), then with
    distributed's own ``dask`` serializers (types registered with it). This
    costs about 1-10 µs for a small value and for a 100 MB array alike (see
    docs/fault-tolerance.md); plain scalars and strings are not checked.
    The pickles are thrown away: a value that stays on its worker is never
    pickled by distributed at all.
    """
    if type(value) in _PLAIN:
        return
    buffers: list = []
    try:
        pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        return
    except Exception as exc:
        error = exc
    try:  # distributed's fall-back for what plain pickle refuses
        cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        return
    except Exception:
        pass
    try:  # not distributed's "pickle" family: on failure it logs a traceback
        serialize(value, serializers=("dask",), on_error="raise")
        return
    except Exception:
        pass
    raise UnserializableResult(app_name, tid, _type_name(value), brief(error)) from None


def _type_name(value) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def run_call(app: AppDef, record: CallRecord, opts: Options, args: tuple, kwargs: dict):
    """One call, metered (``usage``) when provenance records it: memo
    look-up, tries of the app, memo store."""
    if not opts.run.report:
        return _run_call(app, record, opts, args, kwargs)
    meter = Meter()
    try:
        return _run_call(app, record, opts, args, kwargs)
    finally:
        start, end = record.start, record.end
        record.usage = meter.read(end - start if start and end else None)


def _run_call(app: AppDef, record: CallRecord, opts: Options, args: tuple, kwargs: dict):
    record.start = time.time()
    if app.kind == UNLOADABLE:
        raise AppNotLoadable(app.name, record.tid, app.func)
    key = None
    if app.cache and opts.run.checkpoint and opts.run.memo != "off":
        key = memo.call_key(app, args, kwargs, opts.staging, strict=opts.run.memo == "parsl")
        hit, value = memo.lookup(opts.run, app.name, key)
        record.memo = "hit" if hit else "miss"
        if hit:
            record.end = time.time()
            return value
    try:
        value = run_with_retries(app, record, opts, args, kwargs)
    except BashExitFailure as exc:
        record.exit_code = exc.exitcode
        record.end = time.time()
        raise
    except BaseException:
        record.end = time.time()  # a chunk's failed call has its own end too
        raise
    if app.kind == "bash":
        record.exit_code = value
    if key is not None:
        memo.save(opts.run, app.name, key, value)
    record.end = time.time()
    if opts.run.report and (opts.outputs or "inputs" in kwargs) and not record.files:
        record.files = report.file_facts(kwargs.get("inputs", ()), opts.outputs,
                                         opts.run.checksum_limit)
    return value


def run_with_retries(app: AppDef, record: CallRecord, opts: Options, args: tuple, kwargs: dict):
    """Try the app until it succeeds or its failures cost more than ``retries``.

    Each failure costs 1, or what the retry handler ``(exception,
    task_record) -> cost`` returns (Parsl's cost model; the app's own, else
    the run's, asked after every failure, even with no retries). A handler
    that raises ends the tries: the call fails with the handler's exception,
    whose cause is the app's (as in Parsl). Tries happen in this task, one
    after another; every failed one is kept in ``record.tries``.
    """
    cost = 0.0
    while True:
        start = time.time()
        try:
            return run_app(app, record.tid, args, kwargs, opts, record)
        except Exception as exc:
            record.tries.append((len(record.tries) + 1, start, time.time(), brief(exc)))
            if opts.retries <= 0 and app.retry_handler is None and not opts.retry_handler:
                raise
            try:
                cost += failure_cost(app, opts.retry_handler, exc, record, cost, args, kwargs)
            except Exception as handler_error:
                logger.error("retry_handler of app '%s' raised %r; not retrying", app.name,
                             handler_error)
                raise handler_error from exc
            if cost > opts.retries:
                raise


def failure_cost(app: AppDef, run_handler, exc: Exception, record: CallRecord,
                 cost: float, args: tuple, kwargs: dict) -> float:
    """What this failure costs: 1, or the retry handler's answer (the app's,
    else the run's: a dotted path, or a function packed by the client).

    The task record holds what Parsl's handlers read (``id``, ``func_name``,
    ``try_id``, ``fail_count``, ``fail_cost``, ``fail_history``, ``args``,
    ``kwargs``) and daskflow's names (``tid``, ``app_name``).
    """
    handler = app.retry_handler
    if handler is None and isinstance(run_handler, Packed):
        try:
            handler = run_handler.load()
        except NotLoadable as unloadable:
            raise ArgumentNotLoadable(app.name, record.tid, *unloadable.args) from None
    elif handler is None and run_handler:
        handler = import_dotted(run_handler)
    if handler is None:
        return 1.0
    fails = len(record.tries)
    task_record = {"tid": record.tid, "id": record.tid, "app_name": app.name,
                   "func_name": app.name, "func": app.func, "fail_count": fails,
                   "try_id": fails - 1, "fail_cost": cost, "fail_history": [repr(exc)],
                   "args": args, "kwargs": kwargs}
    return float(handler(exc, task_record))


def file_ready(_app_result: Any, file):
    """The body of a DataFuture: runs once the producing app succeeded."""
    return file


def run_app(app: AppDef, tid: int | str, args: tuple, kwargs: dict, opts: Options,
            record: CallRecord | None = None):
    """One try: stage in, run the app (holding its licences; an MPI run off
    the worker's threads), check its outputs, stage out."""
    outputs = opts.outputs
    staged = staging.stage_in(app.name, tid, args, kwargs, outputs, opts.staging)
    if staged is not None:
        args, kwargs, outputs = staged.args, staged.kwargs, staged.outputs
    try:
        if "inputs" in kwargs:
            kwargs = check_inputs(app, tid, kwargs)
        if opts.limits or opts.mpi is not None:
            with held(opts.limits), seceded(opts.mpi is not None):
                value = run_body(app, tid, args, kwargs, opts)
        else:  # the common case, without the context managers
            value = run_body(app, tid, args, kwargs, opts)
        if outputs:
            check_outputs(app.name, tid, outputs)
        if staged is not None:
            staged.stage_out()
            if record is not None and opts.run.report:
                record.files = report.file_facts(staged.read(), outputs, opts.run.checksum_limit)
    finally:
        if staged is not None:
            staged.close()
    return value


def run_body(app: AppDef, tid, args: tuple, kwargs: dict, opts: Options):
    """Run the app itself: a Python function (under MPI if asked), a bash
    command or a join."""
    if app.kind == "python" and opts.mpi is None:
        return call_with_walltime(app, tid, opts.walltime, args, kwargs)
    if app.kind == "python":
        return run_python_mpi(app.func, app.name, tid, _mpi_prefix(opts)[0], args, kwargs,
                              stream_target(app.name, tid, "stdout", opts.stdout),
                              stream_target(app.name, tid, "stderr", opts.stderr), opts.walltime)
    if app.kind == "bash":
        return run_bash(app, tid, opts, args, kwargs)
    from .join import run_join  # join apps are rare: load it when one runs

    return run_join(app, tid, args, kwargs, opts.walltime, opts.run)


def run_bash(app: AppDef, tid, opts: Options, args: tuple, kwargs: dict) -> int:
    command = app.func(*args, **kwargs)
    if not isinstance(command, str):
        raise BadCommand(app.name, tid, f"{type(command).__name__}: {command!r:.200}")
    label = worker_pool_label() if opts.mpi is not None or opts.containers else None
    containers = dict(opts.containers)
    container = containers.get("*") or containers.get(label)
    cleanup = None
    if container is not None:
        command, cleanup = in_container(command, container,
                                        _file_directories(args, kwargs, opts.outputs))
    env = None
    if opts.mpi is not None:
        prefix, env = _mpi_prefix(opts, label)
        command = mpi_command(command, prefix)
    stdout = stream_target(app.name, tid, "stdout", opts.stdout)
    stderr = stream_target(app.name, tid, "stderr", opts.stderr)
    return run_command(command, app.name, tid, stdout, stderr, opts.walltime, env, cleanup)


def _file_directories(args: tuple, kwargs: dict, outputs) -> set[str]:
    """The directories of the call's local Files (staged ones: of their
    local copies), which a container must see at the same paths: in its
    arguments (and lists of them, ``inputs`` among them) and outputs."""
    found = set()
    for value in (*args, *kwargs.values(), outputs):
        for f in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(f, File) and (f.is_local or f.local_path is not None):
                found.add(os.path.dirname(os.path.abspath(f.filepath)))
    return found


def _mpi_prefix(opts: Options, label: str | None = None) -> tuple[str, dict]:
    """The MPI launch prefix on this worker, and the variables that expose it."""
    prefix = opts.mpi.prefix(label or worker_pool_label())
    return prefix, {name: prefix for name in PREFIX_VARIABLES}


def check_inputs(app: AppDef, tid, kwargs: dict) -> dict:
    """Fail clearly if a local input File is missing; drop ``inputs`` if the
    function does not take it (it was sent only as a list of dependencies)."""
    missing = [f.url for f in kwargs["inputs"] if isinstance(f, File) and f.is_local
               and not os.path.exists(f.filepath)]
    if missing:
        raise MissingInputs(app.name, tid, missing)
    if app.accepts is not None and "inputs" not in app.accepts:
        kwargs = dict(kwargs)
        del kwargs["inputs"]
    return kwargs


def check_outputs(app_name: str, tid, outputs) -> None:
    missing = [f.url for f in outputs if (f.is_local or f.local_path is not None)
               and not os.path.exists(f.filepath)]
    if missing:
        raise MissingOutputs(app_name, tid, missing)


def resolve_arguments(app: AppDef, tid, args: tuple, kwargs: dict,
                      chunks: dict | None) -> tuple[tuple, dict]:
    """The call's arguments with their markers resolved (``resolve_members``);
    an argument that cannot be loaded here raises ``ArgumentNotLoadable``."""
    try:
        return resolve_members((args, kwargs), chunks)
    except NotLoadable as exc:
        raise ArgumentNotLoadable(app.name, tid, *exc.args) from None


def resolve_members(obj, chunks: dict | None):
    """Replace ``(MemberRef, chunk key, i)`` markers by call i's value among
    ``chunks[chunk key]`` and ``Packed`` (and ``Shared``) arguments by their value.

    Raises the upstream call's (tagged) exception if that call failed.
    """
    if isinstance(obj, (Packed, Shared)):
        return obj.load()
    if isinstance(obj, tuple):
        if len(obj) == 3 and obj[0] is MemberRef:
            value = chunks[obj[1]][obj[2]]
            if isinstance(value, Failure):
                raise value.exc
            return value.load() if type(value) is Shared else value
        return tuple(resolve_members(o, chunks) for o in obj)
    if isinstance(obj, list):
        return [resolve_members(o, chunks) for o in obj]
    if isinstance(obj, dict):
        return {k: resolve_members(v, chunks) for k, v in obj.items()}
    return obj


def tag(exc: BaseException, app_name: str, tid, ident: str) -> BaseException:
    """Mark ``exc`` as raised by this call, unless it already came from upstream.

    Guarantees that what is returned pickles and keeps its class across the
    wire. A message longer than distributed keeps is cut, keeping the class
    when the exception can be rebuilt from its message alone; otherwise (or
    if it does not pickle) it is replaced by a ``RemoteError`` that says
    what it was and why.
    """
    if getattr(exc, ORIGIN, None) is not None:
        return exc
    reason = "not picklable"
    try:
        setattr(exc, ORIGIN, (app_name, tid, ident))
        length = len(str(exc))
        if length <= MAX_MESSAGE:
            if not _ships(exc):
                exc.__cause__ = exc.__context__ = None  # keep the error, drop its chain
            if _ships(exc):
                return exc
        else:
            reason = f"message too long: {length} characters"
            shorter = _shortened(exc, length)
            if shorter is not None:
                return shorter
    except Exception:
        pass
    stand_in = RemoteError(app_name, tid, type(exc).__qualname__, _cut(f"{exc}"), reason)
    setattr(stand_in, ORIGIN, (app_name, tid, ident))
    return stand_in


def _cut(text: str) -> str:
    if len(text) <= MAX_MESSAGE:
        return text
    return text[:MAX_MESSAGE - 100] + f" ... [cut: the message had {len(text)} characters]"


def _shortened(exc: BaseException, length: int) -> BaseException | None:
    """``exc``'s class with its message cut, if the class rebuilds from a
    message alone (``ValueError("...")``); None otherwise."""
    if len(exc.args) != 1 or not isinstance(exc.args[0], str) or str(exc) != exc.args[0]:
        return None
    text = _cut(exc.args[0])
    try:
        shorter = type(exc)(text)
        if str(shorter) != text:
            return None
        setattr(shorter, ORIGIN, getattr(exc, ORIGIN))
        if not _ships(shorter):
            return None
    except Exception:
        return None
    return shorter.with_traceback(exc.__traceback__)


def _ships(exc: BaseException) -> bool:
    """Whether ``exc`` and its chained exceptions survive a pickle round trip."""
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    try:
        for e in chain:
            pickle.loads(cloudpickle.dumps(e))
        return True
    except Exception:
        return False
