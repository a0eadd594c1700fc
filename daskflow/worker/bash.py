"""Run a bash app's command line on the worker.

The command runs under ``bash -c`` in a session of its own, so that a walltime
kills the whole process group (pipelines, background jobs), not just bash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from typing import IO, Any

from ..errors import AppTimeout, BashExitFailure

STDERR_TAIL = 2000  # bytes of un-redirected stderr quoted in BashExitFailure


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


def _open(target: tuple[str, str]) -> IO[bytes]:
    path, mode = target
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    return open(path, mode + "b")


def run_command(
    command: str,
    app_name: str,
    tid: int | str,
    stdout: tuple[str, str] | None,
    stderr: tuple[str, str] | None,
    walltime: float | None,
    env: dict[str, str] | None = None,
) -> int:
    """Run ``command`` (with ``env`` added to the environment); return 0, or
    raise BashExitFailure / AppTimeout."""
    out = _open(stdout) if stdout else None
    # Without a stderr file, keep stderr in a temporary file so that a failure
    # can quote its tail; memory stays bounded whatever the command prints.
    err = _open(stderr) if stderr else tempfile.TemporaryFile()
    env = dict(os.environ, **(env or {}), DASKFLOW_APP=app_name, DASKFLOW_TID=str(tid))
    try:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        try:
            code = proc.wait(timeout=walltime)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise AppTimeout(app_name, tid, walltime) from None
        except BaseException:
            _kill_group(proc)
            raise
        if code != 0:
            where = stderr[0] if stderr else _tail(err)
            raise BashExitFailure(app_name, tid, code, where)
        return 0
    finally:
        if out:
            out.close()
        err.close()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(f: IO[bytes]) -> str:
    f.flush()
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - STDERR_TAIL))
    text = f.read().decode(errors="replace").strip()
    return ("..." + text if size > STDERR_TAIL else text) or "(empty)"
