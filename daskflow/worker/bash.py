"""Run a bash app's command line on the worker.

The command runs under ``bash -c`` in a session of its own, so that a walltime
(or a cancel, see ``cancel``) kills the whole process group (pipelines,
background jobs), not just bash.

A call costs a bash start and little else (docs/performance.md, "Bash
apps"): the session comes from ``start_new_session`` (which keeps
subprocess's vfork path, unlike a ``preexec_fn``), stdin is one /dev/null
descriptor kept open, the environment is copied as bytes, and a walltime
is waited for on a pidfd rather than by polling.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
from typing import IO, Any

from ..errors import AppTimeout, BadStdStream, BashExitFailure, brief
from . import cancel, usage

STDERR_TAIL = 2000  # bytes of un-redirected stderr quoted in BashExitFailure
#: ``stdout=``/``stderr=`` value asking for a generated log file name (Parsl's
#: ``parsl.AUTO_LOGNAME``); the client replaces it before the call is sent
AUTO_LOGNAME = -1
#: seconds beyond which a walltime is waited for by Popen.wait (poll's
#: millisecond timeout could overflow; its polling costs nothing at that scale)
LONG_WALLTIME = 1e6


def is_auto(spec: Any) -> bool:
    """Whether ``spec`` is `AUTO_LOGNAME` (an int -1, not True or -1.0)."""
    return type(spec) is int and spec == AUTO_LOGNAME


def std_target(spec: Any) -> tuple[str, str] | None:
    """Normalise a ``stdout=``/``stderr=`` value to ``(path, mode)`` or None.

    Accepts a path, a File, or ``(path, mode)`` with mode ``"w"``/``"a"``
    (Parsl's ``"a+"``/``"w+"`` too). Appending is the default, as in Parsl.
    """
    if spec is None:
        return None
    if isinstance(spec, tuple):
        if len(spec) != 2 or spec[1] not in ("w", "a", "w+", "a+"):
            raise ValueError(
                f"stdout/stderr must be a path or (path, mode) with mode 'w' or 'a', got {spec!r}"
            )
        path, mode = spec
    else:
        path, mode = spec, "a"
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"stdout/stderr must be a path, got {type(path).__name__}: {path!r}")
    return os.fspath(path), mode[0]


def stream_target(app_name: str, tid: int | str, stream: str,
                  spec: Any) -> tuple[str, str] | None:
    """`std_target` where the app runs: a malformed ``spec`` raises
    `BadStdStream` naming the call, which its future raises."""
    try:
        return std_target(spec)
    except (TypeError, ValueError) as exc:
        raise BadStdStream(app_name, tid, stream, _shown(spec), str(exc)) from None


def _shown(spec: Any) -> str:
    text = repr(spec)
    return text if len(text) <= 300 else text[:300] + "..."


def _open(target: tuple[str, str], app_name: str, tid: int | str, stream: str) -> IO[bytes]:
    path, mode = target
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        return open(path, mode + "b")
    except OSError as exc:
        raise BadStdStream(app_name, tid, stream, repr(path), brief(exc)) from None


def run_command(
    command: str,
    app_name: str,
    tid: int | str,
    stdout: tuple[str, str] | None,
    stderr: tuple[str, str] | None,
    walltime: float | None,
    env: dict[str, str] | None = None,
    cleanup: list[str] | None = None,
) -> int:
    """Run ``command`` (with ``env`` added to the environment); return 0, or
    raise BashExitFailure / AppTimeout (BadStdStream: a file cannot be opened).
    ``cleanup`` runs once the command was killed (a container to remove)."""
    out = _open(stdout, app_name, tid, "stdout") if stdout else None
    # Without a stderr file, keep stderr in a temporary file so that a failure
    # can quote its tail; memory stays bounded whatever the command prints.
    try:
        err = _open(stderr, app_name, tid, "stderr") if stderr else \
            tempfile.TemporaryFile(buffering=0)
    except BaseException:
        if out:
            out.close()
        raise
    call = cancel.current()
    try:
        cancel.uninterruptible(call)  # from now on a cancel kills the group
        proc = subprocess.Popen(
            ["bash", "-c", command],
            stdout=out,
            stderr=err,
            stdin=_devnull(),
            start_new_session=True,
            env=_environment(env, app_name, tid),
        )
        cancel.started(call, proc)
        try:
            code = _wait(proc, walltime)
        except subprocess.TimeoutExpired:
            _kill_group(proc, cleanup)
            raise AppTimeout(app_name, tid, walltime) from None
        except BaseException:
            _kill_group(proc, cleanup)
            raise
        if call is not None and call.fired:
            _kill_group(proc, cleanup)
            raise cancel.CallCancelled
        if code != 0:
            where = stderr[0] if stderr else _tail(err)
            raise BashExitFailure(app_name, tid, code, where)
        return 0
    finally:
        if out:
            out.close()
        err.close()


# ------------------------------------------------------------ cheap starts
_null: list[int] = []  # the process's /dev/null descriptor, opened once


def _devnull() -> int:
    """A /dev/null descriptor for the command's stdin, opened once per process
    (close-on-exec here; subprocess gives the child its own copy as fd 0)."""
    if not _null:
        _null.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    return _null[0]


def _environment(extra: dict[str, str] | None, app_name: str, tid) -> dict[bytes, bytes]:
    """The command's environment: the worker's, ``extra`` and the call's
    names. Copied as bytes: CPython keeps ``os.environ`` encoded in
    ``_data`` (what ``os.environb`` reads), whose plain copy spares decoding
    and re-encoding every variable on every call (25 µs of 50 variables)."""
    data = getattr(os.environ, "_data", None)
    env = dict(data) if isinstance(data, dict) else dict(os.environb)
    for name, value in (extra or {}).items():
        env[os.fsencode(name)] = os.fsencode(value)
    env[b"DASKFLOW_APP"] = os.fsencode(app_name)
    env[b"DASKFLOW_TID"] = os.fsencode(str(tid))
    return env


def _wait(proc: subprocess.Popen, walltime: float | None) -> int:
    """``proc``'s exit code; TimeoutExpired after ``walltime`` seconds.

    ``Popen.wait(timeout)`` polls, sleeping up to 50 ms between looks, which
    would add up to that much to every call with a walltime; a pidfd
    (Linux >= 5.3) tells the exit at once. Elsewhere, Popen.wait it is.
    """
    if walltime is None:
        return _reap(proc)
    if walltime > LONG_WALLTIME:
        return proc.wait(timeout=walltime)
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or a seccomp filter
        return proc.wait(timeout=walltime)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, walltime * 1000)):  # restarted after signals by Python
            raise subprocess.TimeoutExpired(proc.args, walltime)
    finally:
        os.close(fd)
    return _reap(proc)


def _reap(proc: subprocess.Popen) -> int:
    """Wait for the command's exit code; its processes' usage (``os.wait4``:
    the command and the descendants it waited for) goes to the call's meter."""
    meter = usage.current()
    if meter is None:
        return proc.wait()
    try:
        _, status, used = os.wait4(proc.pid, 0)
    except ChildProcessError:  # reaped meanwhile (by a kill's wait)
        return proc.wait()
    proc.returncode = os.waitstatus_to_exitcode(status)
    meter.add(used)
    return proc.returncode


def _kill_group(proc: subprocess.Popen, cleanup: list[str] | None = None) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    if cleanup:  # what outlives the group (a container the runtime started apart)
        try:
            subprocess.run(cleanup, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _tail(f: IO[bytes]) -> str:
    f.flush()
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - STDERR_TAIL))
    text = f.read().decode(errors="replace").strip()
    return ("..." + text if size > STDERR_TAIL else text) or "(empty)"
