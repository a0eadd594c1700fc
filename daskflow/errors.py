"""Exceptions a daskflow user can meet.

Every error keeps its fields in ``args`` (so it pickles from a worker back to
the client as its own class) and builds its message in ``__str__``, naming the
app, the task id and the cause.
"""

from __future__ import annotations

from concurrent.futures import CancelledError
from typing import Any, Sequence

from distributed import KilledWorker

from .docstrings import filled
from .redaction import redact_url

# Parameter text shared by the errors' docstrings (``%(name)s`` lines).
_PARAMETERS = filled({
    "call": """\
app_name : str
    The app's name.
tid : int or str
    The call's task id in its run (``"7.1"``: the first call inside join app 7).
""",
    "missing": """\
missing : list of str
    The files' paths or URLs (shown redacted).
""",
})


class DaskflowError(Exception):
    """Base class of every error raised by daskflow itself.

    Each keeps its fields in ``args``, so it pickles from a worker back to
    the client as its own class, and builds its message in ``__str__``.
    """

    def __repr__(self) -> str:
        # distributed records repr(exception) as the task's exception text
        # (provenance, the console line): say the message, not the fields
        return f"{type(self).__name__}({str(self)!r})"


def _brief(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` of a wrapped exception, cut to keep our own short."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[:limit] + "..."


class AppError(DaskflowError):
    """An error tied to one app call: carries ``app_name`` and ``tid``."""

    @property
    def app_name(self) -> str:
        return self.args[0]

    @property
    def tid(self) -> int | str:
        return self.args[1]

    def _where(self) -> str:
        return f"app '{self.app_name}' (tid {self.tid})"


@_PARAMETERS
class BashExitFailure(AppError):
    """A bash app's command exited with a non-zero code.

    Parameters
    ----------
    %(call)s
    exitcode : int
        The command's exit code.
    stderr : str or None
        Where stderr was redirected, or its captured tail if it was not.
    """

    def __init__(self, app_name: str, tid: int | str, exitcode: int, stderr: str | None):
        super().__init__(app_name, tid, exitcode, stderr)

    @property
    def exitcode(self) -> int:
        return self.args[2]

    @property
    def stderr(self) -> str | None:
        return self.args[3]

    def __str__(self) -> str:
        msg = f"bash {self._where()} exited with code {self.exitcode}"
        if self.stderr:
            msg += f"; stderr: {self.stderr}"
        return msg


@_PARAMETERS
class AppTimeout(AppError):
    """An app ran longer than its walltime and was stopped.

    A bash app's whole process group is killed; a Python app's try is
    interrupted in its helper thread.

    Parameters
    ----------
    %(call)s
    walltime : float
        The limit, in seconds.
    """

    def __init__(self, app_name: str, tid: int | str, walltime: float):
        super().__init__(app_name, tid, walltime)

    @property
    def walltime(self) -> float:
        return self.args[2]

    def __str__(self) -> str:
        return f"{self._where()} exceeded its walltime of {self.walltime:g} s and was stopped"


@_PARAMETERS
class AppCancelled(AppError, CancelledError):
    """An app call was cancelled (``future.cancel()``) before it finished.

    A ``concurrent.futures.CancelledError``, as Python's futures raise. If
    the call was running, its work was stopped: a bash or MPI command's
    process group killed, a Python app interrupted as at its walltime.

    Parameters
    ----------
    %(call)s
    """

    def __init__(self, app_name: str, tid: int | str):
        super().__init__(app_name, tid)

    def __str__(self) -> str:
        return f"{self._where()} was cancelled"


class PropagatedException(AppError):
    """An app call failed because other calls failed: its dependencies
    (`DependencyError`) or the futures a join app returned (`JoinError`).

    ``dependent_exceptions_tids`` lists them as Parsl does: ``(exception,
    description)`` pairs, the description being ``"task 7"`` for an app call
    and the future's repr for any other future. ``__cause__`` is the first
    root cause (followed through propagated errors), as in Parsl.
    """

    @property
    def dependent_exceptions_tids(self) -> list[tuple[BaseException, str]]:
        return [(exc, describe(app, tid)) for app, tid, exc in self._failed()]

    @property
    def task_id(self) -> int | str:
        """Parsl's name of ``tid``."""
        return self.tid

    def _failed(self) -> list[tuple[str, Any, BaseException]]:
        """The failed calls: (app or future description, tid or None, exception)."""
        raise NotImplementedError

    def _root(self) -> BaseException | None:
        exc: BaseException | None = self
        seen = set()
        while isinstance(exc, PropagatedException) and id(exc) not in seen:
            seen.add(id(exc))
            failed = exc._failed()
            exc = failed[0][2] if failed else None
        return exc



def describe(app: str, tid) -> str:
    """Parsl's description of a failed dependency: ``task 7`` for an app call,
    the future's own description (its repr) for any other future."""
    return app if tid is None else f"task {tid!r}"


def _named(app: str, tid) -> str:
    """A failed dependency in a message: ``'f' (tid 3)``, or a future's repr."""
    return app if tid is None else f"'{app}' (tid {tid})"


@_PARAMETERS
class DependencyError(PropagatedException):
    """An app did not run because an app it depends on failed.

    The failed upstream future itself raises ``cause``; every future
    downstream of it raises this, naming it. A failed future that is not an
    app call (a ``concurrent.futures.Future``, say) is named by its repr.

    Parameters
    ----------
    %(call)s
    upstream_app : str
        The failed app (or the repr of the failed future).
    upstream_tid : int, str or None
        Its task id (None for a task without one, such as a cached call or
        a future that is not an app call).
    cause : BaseException
        Its exception.
    """

    def __init__(
        self,
        app_name: str,
        tid: int | str,
        upstream_app: str,
        upstream_tid: int | str | None,
        cause: BaseException,
    ):
        super().__init__(app_name, tid, upstream_app, upstream_tid, cause)
        self.__cause__ = self._root()

    @property
    def upstream_app(self) -> str:
        return self.args[2]

    @property
    def upstream_tid(self) -> int | str | None:
        return self.args[3]

    @property
    def cause(self) -> BaseException:
        return self.args[4]

    def _failed(self) -> list[tuple[str, Any, BaseException]]:
        return [(self.upstream_app, self.upstream_tid, self.cause)]

    def __str__(self) -> str:
        text = (f"{self._where()} did not run: its dependency "
                f"{_named(self.upstream_app, self.upstream_tid)} failed with "
                f"{_brief(self.cause)}")
        if self.upstream_tid is not None:  # Parsl's words for it
            text += f" (cause via {describe(self.upstream_app, self.upstream_tid)})"
        return text


@_PARAMETERS
class JoinError(PropagatedException):
    """A join app failed: futures its function returned failed (or it
    returned something other than futures: ``JoinReturnError``).

    Parameters
    ----------
    %(call)s
    reason : str
        What went wrong.
    failures : list of (str, tid, BaseException)
        The failed inner calls: app, task id, exception (the message shows
        the first five).
    """

    def __init__(
        self,
        app_name: str,
        tid: int | str,
        reason: str,
        failures: Sequence[tuple[str, Any, BaseException]] = (),
    ):
        super().__init__(app_name, tid, reason, list(failures))
        self.__cause__ = self._root()

    @property
    def reason(self) -> str:
        return self.args[2]

    @property
    def failures(self) -> list[tuple[str, Any, BaseException]]:
        return self.args[3]

    def _failed(self) -> list[tuple[str, Any, BaseException]]:
        return self.failures

    def __str__(self) -> str:
        msg = f"join {self._where()}: {self.reason}"
        for app, tid, exc in self.failures[:5]:
            msg += f"\n  - {_named(app, tid)}: {_brief(exc)}"
        if len(self.failures) > 5:
            msg += f"\n  ... and {len(self.failures) - 5} more"
        return msg


class JoinReturnError(JoinError, TypeError):
    """A join app's function returned something other than a future or a
    list of futures (a ``TypeError``, as Parsl raises)."""


class _MissingFiles(AppError):
    """Files an app declared are not where it runs (``missing`` lists them)."""

    problem = ""

    def __init__(self, app_name: str, tid: int | str, missing: Sequence[str]):
        super().__init__(app_name, tid, list(missing))

    @property
    def missing(self) -> list[str]:
        return self.args[2]

    def __str__(self) -> str:
        # a staged File's URL may carry credentials
        return f"{self._where()} {self.problem}: " + ", ".join(map(redact_url, self.missing))


@_PARAMETERS
class MissingOutputs(_MissingFiles):
    """An app finished but did not create the output files it declared.

    Parameters
    ----------
    %(call)s
    %(missing)s
    """

    problem = "finished but did not create its declared outputs"


@_PARAMETERS
class MissingInputs(_MissingFiles):
    """Local files named in an app's ``inputs=`` do not exist where it runs.

    Parameters
    ----------
    %(call)s
    %(missing)s
    """

    problem = "cannot start: its input files do not exist"


@_PARAMETERS
class StagingError(AppError):
    """A File could not be moved between its URL and the worker.

    Parameters
    ----------
    %(call)s
    url : str
        The File's URL (redacted).
    direction : {"in", "out"}
        Fetching an input before the app ran, or uploading an output after.
    cause : str
        The underlying error, as text: transport errors often do not pickle.
    """

    def __init__(self, app_name: str, tid: int | str, url: str, direction: str, cause: str):
        super().__init__(app_name, tid, url, direction, cause)

    @property
    def url(self) -> str:
        return self.args[2]

    @property
    def direction(self) -> str:
        return self.args[3]

    @property
    def cause(self) -> str:
        return self.args[4]

    def __str__(self) -> str:
        verb = "stage in" if self.direction == "in" else "stage out"
        return f"{self._where()} could not {verb} {self.url}: {self.cause}"


class UnsafeStagingDir(DaskflowError):
    """The staging directory is not private to this user (another user owns
    it, or others may write in it), so files in it could have been planted."""

    def __init__(self, path: str, owner: str, mode: int, problem: str):
        super().__init__(path, owner, mode, problem)

    def __str__(self) -> str:
        path, owner, mode, problem = self.args
        return (f"refusing the staging directory {path}: {problem} (owner {owner}, mode "
                f"{mode:04o}); set daskflow.staging.dir (or daskflow.staging.cache.dir) to "
                f"a directory of your own, or remove {path}")


class UnstageableFile(DaskflowError, ValueError):
    """A File given to an app cannot be staged: raised at call time, in the driver.

    Parameters
    ----------
    app_name : str
        The app called.
    url : str
        The File's URL.
    reason : str
        Why not: an unknown scheme, a mover's package missing, ...
    """

    def __init__(self, app_name: str, url: str, reason: str):
        super().__init__(app_name, url, reason)

    def __str__(self) -> str:
        app, url, reason = self.args
        return f"app '{app}': File {url!r} cannot be staged: {reason}"


@_PARAMETERS
class BadStdStream(AppError):
    """A bash app's ``stdout=`` or ``stderr=`` cannot be used where it runs:
    the specification is malformed, or its file cannot be opened.

    Raised by the call's future (``result()``), as Parsl raises its
    ``BadStdStreamFile``.

    Parameters
    ----------
    %(call)s
    stream : {"stdout", "stderr"}
        Which keyword.
    target : str
        The specification, as given (its repr).
    reason : str
        What is wrong with it, or why the file cannot be opened.
    """

    def __init__(self, app_name: str, tid: int | str, stream: str, target: str, reason: str):
        super().__init__(app_name, tid, stream, target, reason)

    @property
    def stream(self) -> str:
        return self.args[2]

    @property
    def target(self) -> str:
        return self.args[3]

    @property
    def reason(self) -> str:
        return self.args[4]

    def __str__(self) -> str:
        return f"bash {self._where()}: {self.stream}={self.target} cannot be used: {self.reason}"


class BadCommand(AppError):
    """A bash app's function returned something that is not a command string."""

    def __init__(self, app_name: str, tid: int | str, returned: str):
        super().__init__(app_name, tid, returned)

    def __str__(self) -> str:
        return (
            f"bash {self._where()} must return the command line as a str, "
            f"but its function returned {self.args[2]}"
        )


class UnpicklableArgument(DaskflowError, TypeError):
    """An argument of an app call cannot be sent to a worker."""

    def __init__(self, app_name: str, argument: str, cause: str):
        super().__init__(app_name, argument, cause)

    def __str__(self) -> str:
        app, arg, cause = self.args
        return (
            f"argument {arg} of app '{app}' cannot be pickled to send it to a worker: "
            f"{cause}. Pass data a worker can rebuild (a path, a File, plain values) "
            "or create the object inside the app."
        )


class NestedFuture(DaskflowError, TypeError):
    """A future nested inside an argument while ``daskflow.dependencies`` is
    ``shallow`` (Parsl's ``SHALLOW_DEPENDENCY_RESOLVER``): it is no
    dependency there, and a future cannot be sent to a worker unresolved."""

    def __init__(self, app_name: str, argument: str):
        super().__init__(app_name, argument)

    def __str__(self) -> str:
        app, arg = self.args
        return (
            f"argument {arg} of app '{app}' holds a future inside a container; with "
            "daskflow.dependencies = 'shallow' (Parsl's SHALLOW_DEPENDENCY_RESOLVER) only "
            "futures given as arguments, keyword values or items of inputs= are "
            "dependencies, and a future cannot be sent to a worker unresolved: pass it "
            "directly, or set daskflow.dependencies to 'deep' (DEEP_DEPENDENCY_RESOLVER)"
        )


class PackedInGraph(DaskflowError, TypeError):
    """A Dask graph (``dask.delayed``, ``dask.compute``) names the future of
    a call packed with others into one chunk task: Dask would hand the graph
    the whole chunk's outcomes, not that call's value."""

    def __init__(self, chunk_key: str):
        super().__init__(chunk_key)

    def __str__(self) -> str:
        return (
            f"a Dask graph takes the future of a call that was packed with others into "
            f"task {self.args[0]!r} (transparent batching), and Dask cannot take one "
            "call's value out of it: pass the future to an app or to app.delayed(...), "
            "use its .result(), or give the app batch=False"
        )


class UnknownExecutor(DaskflowError, ValueError):
    """An app is pinned to a pool label that the current client does not have."""

    def __init__(self, app_name: str, labels: Sequence[str], known: Sequence[str]):
        super().__init__(app_name, list(labels), sorted(known))

    def __str__(self) -> str:
        app, labels, known = self.args
        return (
            f"app '{app}' is pinned to executors {labels}, but this client's pools are "
            f"{known}; use one of those labels or 'all'"
        )


class UnroutableCall(DaskflowError, ValueError):
    """An app's input may have to cross pools that cannot reach each other,
    and the app may run on pools that cannot reach each other either."""

    def __init__(self, app_name: str, upstream: str, pools: Sequence[str]):
        super().__init__(app_name, upstream, list(pools))

    def __str__(self) -> str:
        app, upstream, pools = self.args
        return (
            f"app '{app}' takes the result of {upstream!r}, which some of its pools {pools} "
            "cannot fetch (the profile's reachable_from), and those pools cannot reach each "
            "other either; pin the app with executors=[...] to pools that reach each other, "
            "or pass the data as a File"
        )


class UnknownResourceKeys(DaskflowError, ValueError):
    """A call's ``parsl_resource_specification`` names keys daskflow does not take."""

    def __init__(self, app_name: str, unknown: Sequence[str], known: Sequence[str]):
        super().__init__(app_name, sorted(unknown), sorted(known))

    @property
    def unknown(self) -> list[str]:
        return self.args[1]

    def __str__(self) -> str:
        app, unknown, known = self.args
        return f"app '{app}': unknown resource specification keys {unknown}; known: {known}"


class MpiUnavailable(DaskflowError, ValueError):
    """An MPI app call that no pool it may run on can take."""

    def __init__(self, app_name: str, spec: Any, reason: str):
        super().__init__(app_name, spec, reason)

    def __str__(self) -> str:
        app, spec, reason = self.args
        return (f"app '{app}' asks for MPI ({spec.ranks} ranks on {spec.nodes} node(s)), "
                f"but {reason}")


class UnknownLimit(DaskflowError, ValueError):
    """An app names a licence limit that neither the profile nor the config declares."""

    def __init__(self, app_name: str, name: str, known: Sequence[str]):
        super().__init__(app_name, name, sorted(known))

    def __str__(self) -> str:
        app, name, known = self.args
        return (f"app '{app}' uses limit {name!r}, which is not declared (declared: "
                f"{known or 'none'}); declare it under limits: in the site profile or in "
                "the daskflow.limits config")


class RemoteError(AppError):
    """Stands in for an app's exception that could not travel back as itself:
    it does not pickle, or its message is longer than distributed keeps and
    its class cannot be rebuilt from a shorter one (``reason`` says which)."""

    def __init__(self, app_name: str, tid: int | str, type_name: str, text: str,
                 reason: str = "not picklable"):
        super().__init__(app_name, tid, type_name, text, reason)

    def __str__(self) -> str:
        app, tid, type_name, text = self.args[:4]
        reason = self.args[4] if len(self.args) > 4 else "not picklable"
        return f"app '{app}' (tid {tid}) raised {type_name} ({reason}): {text}"


class AppNotLoadable(AppError):
    """An app's function cannot be unpickled on the worker (``cause``):
    typically it is defined in a module that only the driver can import."""

    def __init__(self, app_name: str, tid: int | str, cause: str):
        super().__init__(app_name, tid, cause)

    def __str__(self) -> str:
        return (
            f"{self._where()} cannot run: its function cannot be loaded on the worker: "
            f"{self.args[2]}. Make its module importable on the workers (install it, or "
            "put it on their PYTHONPATH), or define the app in the script."
        )


class ArgumentNotLoadable(AppError):
    """An argument of an app call cannot be unpickled on the worker
    (``cause``): typically its class or function lives in a module that only
    the driver can import. The call fails; the worker stays up."""

    def __init__(self, app_name: str, tid: int | str, type_name: str, cause: str):
        super().__init__(app_name, tid, type_name, cause)

    def __str__(self) -> str:
        return (
            f"{self._where()} cannot run: its argument of type {self.args[2]} cannot be "
            f"loaded on the worker: {self.args[3]}. Make its module importable on the "
            "workers (install it, or put it on their PYTHONPATH)."
        )


@_PARAMETERS
class UnserializableResult(AppError, TypeError):
    """An app returned a value that cannot be serialized.

    It could never reach the apps that use it nor the client, so the call
    fails at once (its dependents with `DependencyError`) rather than
    leaving them waiting.

    Parameters
    ----------
    %(call)s
    type_name : str
        The value's type.
    cause : str
        The serializer's error.
    """

    def __init__(self, app_name: str, tid: int | str, type_name: str, cause: str):
        super().__init__(app_name, tid, type_name, cause)

    @property
    def type_name(self) -> str:
        return self.args[2]

    def __str__(self) -> str:
        return (
            f"{self._where()} returned a value of type {self.type_name} that cannot be "
            f"serialized to send it to other workers or the client: {self.args[3]}. Return "
            "data that pickles (plain values, arrays, a File) and create such objects "
            "inside the app that uses them."
        )


@_PARAMETERS
class WorkerLost(KilledWorker, DaskflowError):
    """Workers died running an app call as often as Dask allows.

    A worker's process exited, or its Nanny stopped it for using too much
    memory, ``distributed.scheduler.allowed-failures`` + 1 times, so the call
    failed. Such losses never use up an app's ``retries``. A ``KilledWorker``
    (``except KilledWorker`` still catches it) that also says which app and
    task, and why the last worker was lost.

    Parameters
    ----------
    task : str
        The Dask key.
    last_worker : WorkerState
        The last worker that died running it.
    allowed_failures : int
        ``distributed.scheduler.allowed-failures``.
    %(call)s
    fate : str
        Why the worker was lost, as far as the scheduler learnt.
    """

    def __init__(self, task, last_worker, allowed_failures: int, app_name: str,
                 tid: int | str, fate: str):
        Exception.__init__(self, task, last_worker, allowed_failures, app_name, tid, fate)

    @property
    def app_name(self) -> str:
        return self.args[3]

    @property
    def tid(self) -> int | str:
        return self.args[4]

    @property
    def fate(self) -> str:
        return self.args[5]

    def __str__(self) -> str:
        tries = self.allowed_failures + 1
        return (
            f"app '{self.app_name}' (tid {self.tid}) failed: {self.fate} while running it; "
            f"Dask gave up after {tries} worker{'s' if tries > 1 else ''} died running it "
            "(distributed.scheduler.allowed-failures)"
        )


class WorkersUnavailable(DaskflowError, RuntimeError):
    """No worker of a pool daskflow started can run the task.

    None of its local worker processes or batch jobs could start, none joined
    in time, or all were lost.

    Parameters
    ----------
    pool : str
        The pool's label.
    why : str
        Which of those happened.
    processes : list of str
        What became of each worker process or batch job, with the end of its
        stderr.
    """

    def __init__(self, pool: str, why: str, processes: Sequence[str]):
        super().__init__(pool, why, list(processes))

    @property
    def pool(self) -> str:
        return self.args[0]

    def __str__(self) -> str:
        pool, why, processes = self.args
        text = f"no worker of pool '{pool}' can run this task: {why}"
        if processes:
            text += "\n  " + "\n  ".join(processes)
        return text


class UnsafeKeyFile(DaskflowError):
    """The signing key file (see ``daskflow.signing``) cannot be trusted or used.

    Parameters: path, problem (what is wrong with it), fix (what to do).
    """

    def __init__(self, path: str, problem: str, fix: str):
        super().__init__(path, problem, fix)

    @property
    def path(self) -> str:
        return self.args[0]

    def __str__(self) -> str:
        path, problem, fix = self.args
        return f"daskflow signing key {path}: {problem}; {fix}"


def brief(exc: BaseException, limit: int = 2000) -> str:
    """``Type: message``, cut at ``limit`` characters (for logs and records)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[:limit] + "..."
