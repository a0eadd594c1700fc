"""Data staging: Files at any URL moved to where the app runs, and back.

Staging happens in the task body, on the worker that runs the app, so data
goes straight between its source and that worker (never through the
driver), and the app sees local paths:

* the driver calls ``check_call`` when an app is called: a File whose
  scheme no mover knows, or whose path escapes with ``..``, fails there;
  it also takes a snapshot of the staging settings for the call's schemes,
  shipped with the task (``options.Settings``);
* the task body calls ``stage_in`` before the app: remote input Files (top-
  level positional and keyword arguments, ``inputs=`` entries) are fetched,
  through the node's cache when the mover allows it, and remote ``outputs=``
  get a local path to write to; the returned ``Staged`` holds the arguments
  with Files that point at those local copies;
* after the app succeeded, ``Staged.stage_out`` uploads the outputs, and the
  task (hence the DataFutures of its outputs) completes only after that;
  ``Staged.close`` removes the task's local copies.

While it transfers, the task leaves the worker's thread pool (Dask's
``secede``/``rejoin``), so the worker computes another task meanwhile; at
most ``daskflow.staging.transfers`` tasks per worker process do so at once,
and each moves up to that many files in parallel.

Everything staging writes is private to the user (``private.py``: the root is
refused if another user owns it or may write in it) and names URLs with their
secrets redacted (``daskflow.redaction``); a server that cannot be reached is
tried again later (``retry.py``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import os
import re
import shutil
import tempfile
import threading
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from distributed import Future

from ..errors import StagingError, UnsafeStagingDir, UnstageableFile
from ..files import File
from ..redaction import redact_text, redact_url
from . import private, registry
from .cache import NodeCache, check_size
from .options import Settings, snapshot, staging_options
from .retry import retrying

__all__ = ["Settings", "Staged", "check_call", "fingerprint", "snapshot", "stage_in",
           "staging_options"]


def _brief(exc: BaseException, limit: int = 1000) -> str:
    text = redact_text(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= limit else text[:limit] + "..."


# ------------------------------------------------------------------ which Files
def input_files(args: Iterable, kwargs: dict) -> list[File]:
    """Files a call reads: top-level positional and keyword values and ``inputs=``
    entries (as Parsl: Files nested deeper are passed as they are)."""
    found = [a for a in args if isinstance(a, File)]
    for name, value in kwargs.items():
        if isinstance(value, File):
            found.append(value)
        elif name == "inputs" and isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, File))
    return found


def path_problem(f: File, output: bool = False) -> str | None:
    """Why ``f``'s path is unsafe to stage, or None."""
    if ".." in unquote(f.path).split("/"):
        return "its path has a '..' component (name the object without climbing up)"
    if output and not f.filename:
        return "it names a directory (its path ends with '/'); an output must name a file"
    return None


@functools.lru_cache(maxsize=128)
def _scheme_ok(scheme: str) -> bool:
    problem = registry.problem(scheme)
    if problem:
        raise ValueError(problem)
    return True


def check_call(app_name: str, args: tuple, kwargs: dict, outputs: Iterable[File]) -> Settings | None:
    """Driver side, at call time: refuse Files that cannot be staged (naming
    them) and return the staging settings for the call (None: nothing remote)."""
    inputs = input_files(args, kwargs)
    if kwargs.get("inputs"):  # DataFutures in inputs= stand for their Files
        inputs += [v.file for v in kwargs["inputs"] if isinstance(v, Future)
                   and isinstance(getattr(v, "file", None), File)]
    if not inputs and not outputs:
        return None
    schemes = set()
    for f, output in [(f, False) for f in inputs] + [(f, True) for f in outputs]:
        if f.is_local:
            continue
        problem = path_problem(f, output)
        if problem is None:
            try:
                _scheme_ok(f.scheme)
            except ValueError as exc:
                problem = str(exc)
        if problem:
            raise UnstageableFile(app_name, redact_url(f.url), redact_text(problem))
        check = getattr(registry.mover_class(f.scheme), "check", None)
        if check is not None:
            check(app_name, f)
        schemes.add(f.scheme)
    return snapshot(sorted(schemes)) if schemes else None


# ------------------------------------------------------------------ movers, cache
_lock = threading.Lock()
_movers: dict[tuple, Any] = {}
_caches: dict[tuple, NodeCache] = {}
_slots: threading.BoundedSemaphore | None = None


def _mover(scheme: str, settings: Settings):
    options = settings.options(scheme)
    from dask.base import tokenize

    key = (scheme, tokenize(options))
    with _lock:
        mover = _movers.get(key)
        if mover is None:
            mover = _movers[key] = registry.get_mover(scheme, options)
    return mover


def node_cache(settings: Settings) -> NodeCache:
    """This node's cache for these settings (one object per process)."""
    root = settings.cache_dir or os.path.join(settings.root, "cache")
    key = (root, settings.cache_max_bytes, settings.cache_check_every)
    with _lock:
        cache = _caches.get(key)
        if cache is None:
            if not settings.cache_dir:
                private.private_root(settings.root)
            cache = _caches[key] = NodeCache(root, settings.cache_max_bytes,
                                             settings.cache_check_every)
    return cache


def fingerprint(f: File, settings: Settings | None = None) -> tuple:
    """What identifies the current version of a remote File (for memo keys)."""
    settings = settings or snapshot((f.scheme,))
    mover = _mover(f.scheme, settings)
    fp = _retrying(settings, f.url, lambda: mover.fingerprint(f.url), "look-up")
    if settings.cache_enabled and mover.cacheable:  # the node cache must not lag behind
        node_cache(settings).remember(f.url, fp)
    return (f.url, *fp)


@contextlib.contextmanager
def _seceded(settings: Settings):
    """Leave the worker's thread pool while transferring (bounded per process),
    so that the worker runs another task meanwhile."""
    global _slots
    if not settings.secede:
        yield
        return
    from distributed import rejoin, secede

    from ..dask_internals import in_worker_task_thread

    if not in_worker_task_thread():
        yield
        return
    with _lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings.transfers)
    if not _slots.acquire(blocking=False):
        yield  # enough transfers run seceded in this process: transfer in our slot
        return
    try:
        secede()
    except BaseException:
        _slots.release()
        raise
    try:
        yield
    finally:
        _slots.release()
        rejoin()


def _each(settings: Settings, func: Callable, items: list) -> list:
    """``func`` over ``items``, up to ``settings.transfers`` at a time; raises
    the first failure in the order of ``items`` after all finished."""
    if len(items) <= 1:
        return [func(i) for i in items]
    with concurrent.futures.ThreadPoolExecutor(min(len(items), settings.transfers),
                                               thread_name_prefix="daskflow-staging") as pool:
        futures = [pool.submit(func, i) for i in items]
        concurrent.futures.wait(futures)
    return [f.result() for f in futures]


def _retrying(settings: Settings, url: str, func: Callable, what: str):
    return retrying(url, func, settings.retry_attempts, settings.retry_backoff,
                    settings.retry_max_backoff, what)


# ------------------------------------------------------------------ the task side
def stage_in(app_name: str, tid, args: tuple, kwargs: dict, outputs: tuple,
             settings: Settings | None) -> Staged | None:
    """Fetch the call's remote inputs and give its remote outputs local paths.

    Returns None when the call names no remote File (the common case: one
    scan of its top-level arguments).
    """
    remote_in = [f for f in input_files(args, kwargs) if not f.is_local]
    remote_out = [f for f in outputs if not f.is_local]
    if not remote_in and not remote_out:
        return None
    staged = Staged(app_name, tid, settings or snapshot())
    try:
        staged.fetch_inputs(remote_in)
        staged.plan_outputs(remote_out)
        staged.substitute(args, kwargs, outputs)
    except BaseException:
        staged.close()
        raise
    return staged


_OWNER = re.compile(r"-p(\d+)-[^-]*$")
_swept: set[str] = set()


def sweep_orphans(tasks: str) -> None:
    """Remove, once per process and directory, the task directories of
    processes that are gone (a worker killed mid-task left its copies)."""
    if tasks in _swept:
        return
    _swept.add(tasks)
    for name in os.listdir(tasks):
        owner = _OWNER.search(name)
        if owner is None or _alive(int(owner.group(1))):
            continue
        shutil.rmtree(os.path.join(tasks, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class Staged:
    """One call's staged Files: local copies in a directory of its own (named
    with the worker's pid, so that a later worker can sweep it if this one dies)."""

    def __init__(self, app_name: str, tid, settings: Settings):
        self.app_name, self.tid, self.settings = app_name, tid, settings
        tasks = os.path.join(private.private_root(settings.root), "tasks")
        private.makedirs(tasks)
        sweep_orphans(tasks)
        prefix = re.sub(r"[^\w.-]", "_", f"{app_name}-{tid}-") + f"p{os.getpid()}-"
        self.workdir = tempfile.mkdtemp(prefix=prefix, dir=tasks)
        self.local: dict[str, str] = {}  # input URL -> local path
        self.out_local: dict[str, str] = {}  # output URL -> local path
        self.cache_hits = 0
        self.args: tuple = ()
        self.kwargs: dict = {}
        self.outputs: tuple = ()

    def _path(self, kind: str, f: File) -> str:
        digest = hashlib.sha256(f.url.encode()).hexdigest()[:12]
        return os.path.join(self.workdir, kind, digest, f.filename or "download")

    def _fail(self, f: File, direction: str, exc: BaseException) -> BaseException:
        if isinstance(exc, UnsafeStagingDir):
            return exc  # the node's problem, not the File's: as it is
        cause = redact_text(exc.cause) if isinstance(exc, StagingError) else _brief(exc)
        return StagingError(self.app_name, self.tid, redact_url(f.url), direction, cause)

    def fetch_inputs(self, files: list[File]) -> None:
        unique = list({f.url: f for f in files}.values())
        if not unique:
            return
        for f in unique:
            problem = path_problem(f)
            if problem:
                raise StagingError(self.app_name, self.tid, redact_url(f.url), "in", problem)
        with _seceded(self.settings):
            paths = _each(self.settings, self._fetch, unique)
        self.local.update((f.url, p) for f, p in zip(unique, paths))

    def _fetch(self, f: File) -> str:
        dest = self._path("in", f)
        private.makedirs(os.path.dirname(dest))
        try:
            mover = _mover(f.scheme, self.settings)
            if self.settings.cache_enabled and mover.cacheable:
                self._from_cache(mover, f, dest)
            else:
                size = _retrying(self.settings, f.url, lambda: mover.fingerprint(f.url),
                                 "look-up")[0]
                part = f"{dest}.part-{uuid.uuid4().hex[:8]}"
                try:
                    private.touch_file(part)
                    _retrying(self.settings, f.url, lambda: mover.fetch(f.url, part), "download")
                    os.chmod(part, private.FILE_MODE)  # a mover may have put a file of its own
                    check_size(part, size if isinstance(size, int) else None)
                    os.replace(part, dest)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(part)
        except Exception as exc:
            raise self._fail(f, "in", exc) from None
        return dest

    def _from_cache(self, mover, f: File, dest: str) -> None:
        cache = node_cache(self.settings)
        for attempt in (1, 2):
            path, hit = cache.get(
                f.url, f.filename or "download",
                lambda: _retrying(self.settings, f.url, lambda: mover.fingerprint(f.url), "look-up"),
                lambda tmp: _retrying(self.settings, f.url, lambda: mover.fetch(f.url, tmp),
                                      "download"))
            try:
                os.link(path, dest)  # a link: eviction cannot pull it from under the app
            except FileNotFoundError:
                if attempt == 2:
                    raise
                continue  # evicted between look-up and link: fetch again
            except OSError:  # another file system, or no hard links there
                shutil.copyfile(path, dest)
            self.cache_hits += hit
            return

    def plan_outputs(self, files: list[File]) -> None:
        for f in files:
            problem = path_problem(f, output=True)
            if problem:
                raise StagingError(self.app_name, self.tid, redact_url(f.url), "out", problem)
            local = self._path("out", f)
            private.makedirs(os.path.dirname(local))
            self.out_local[f.url] = local

    def substitute(self, args: tuple, kwargs: dict, outputs: tuple) -> None:
        """The call's arguments, with remote Files pointing at their local copies."""
        def swap(v):
            if isinstance(v, File) and v.url in self.local and not v.is_local:
                return v.with_local_path(self.local[v.url])
            return v

        self.args = tuple(swap(a) for a in args)
        self.kwargs = {k: swap(v) for k, v in kwargs.items()}
        if isinstance(kwargs.get("inputs"), (list, tuple)):
            self.kwargs["inputs"] = type(kwargs["inputs"])(swap(v) for v in kwargs["inputs"])
        self.outputs = tuple(f.with_local_path(self.out_local[f.url]) if f.url in self.out_local
                             else f for f in outputs)
        if "outputs" in kwargs:  # the function sees the same local paths
            self.kwargs["outputs"] = type(kwargs["outputs"])(
                next((o for o in self.outputs if isinstance(v, File) and o.url == v.url), v)
                for v in kwargs["outputs"])

    def read(self) -> list[File]:
        """The staged call's input Files (for provenance file facts)."""
        return input_files(self.args, self.kwargs)

    def stage_out(self) -> None:
        """Upload the outputs the app wrote (raises StagingError naming the first
        one that failed)."""
        todo = [f for f in self.outputs if f.url in self.out_local]
        if not todo:
            return

        def push(f: File) -> None:
            mover = _mover(f.scheme, self.settings)
            try:
                _retrying(self.settings, f.url,
                          lambda: mover.push(self.out_local[f.url], f.url), "upload")
            except Exception as exc:
                raise self._fail(f, "out", exc) from None

        with _seceded(self.settings):
            _each(self.settings, push, todo)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
