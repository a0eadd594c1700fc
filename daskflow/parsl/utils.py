"""``parsl.utils``: the helpers scripts and Parsl's own tests import.

``RepresentationMixin`` gives classes a ``repr`` that reads like the call
that built them, from their constructor's signature. ``get_all_checkpoints``
and ``get_last_checkpoint`` find earlier runs' checkpoints for
``BasicMemoizer(checkpoint_files=...)``; ``wait_for_file`` and
``time_limited_open`` wait a bounded time for a file another process writes.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from typing import IO, Iterator, Sequence


class RepresentationMixin:
    """A ``repr`` that reads ``Name(arg, key=value)`` from ``__init__``'s
    parameters, each read back from the attribute of the same name.

    With ``_validate_repr`` set, a parameter without such an attribute is an
    ``AttributeError`` naming it (a class whose ``repr`` would lie).
    """

    __max_width__ = 80
    _validate_repr = False

    def __repr__(self) -> str:
        init = inspect.unwrap(type(self).__init__)
        params = list(inspect.signature(init).parameters.values())[1:]
        missing = "<unrecorded>"
        positional, keywords = [], {}
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if self._validate_repr and not hasattr(self, p.name):
                raise AttributeError(f"class {type(self).__name__} uses {p.name} in the "
                                     "constructor, but does not define it as an attribute")
            value = getattr(self, p.name, missing)
            if p.default is p.empty and p.kind is not p.KEYWORD_ONLY:
                positional.append(repr(value))
            else:
                keywords[p.name] = value
        parts = positional + [f"{k}={v!r}" for k, v in sorted(keywords.items())]
        line = f"{type(self).__name__}({', '.join(parts)})"
        if len(line) <= self.__max_width__:
            return line
        body = ",".join("\n    " + part.replace("\n", "\n    ") for part in parts)
        return f"{type(self).__name__}({body}\n)"


def _checkpoint_dirs(rundir: str) -> list[tuple[int, str]]:
    """(run number, checkpoint directory) of the numbered runs under ``rundir``."""
    try:
        names = os.listdir(rundir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        path = os.path.abspath(os.path.join(rundir, name, "checkpoint"))
        if name.isdigit() and os.path.isdir(path):
            found.append((int(name), path))
    return sorted(found)


def get_all_checkpoints(rundir: str = "runinfo") -> Sequence[str]:
    """The checkpoint directories of every run under ``rundir``, oldest first
    (``[]`` if there is none), for ``checkpoint_files``."""
    return [path for _, path in _checkpoint_dirs(rundir)]


def get_last_checkpoint(rundir: str = "runinfo") -> Sequence[str]:
    """The checkpoint directory of the latest run under ``rundir`` that has
    one, as a list of 0 or 1 elements, for ``checkpoint_files``.

    A run's checkpoint also holds the results it took from the checkpoints
    it reused, so the latest one carries them on.
    """
    found = _checkpoint_dirs(rundir)
    return [found[-1][1]] if found else []


@contextlib.contextmanager
def wait_for_file(path: str, seconds: float = 10) -> Iterator[None]:
    """Wait until ``path`` exists or ``seconds`` pass (whichever comes
    first; not finding it is not an error), then run the block."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    yield


@contextlib.contextmanager
def time_limited_open(path: str, mode: str, seconds: float = 1) -> Iterator[IO]:
    """``open(path, mode)`` once ``path`` exists, waiting at most ``seconds``
    (then ``open`` raises as usual)."""
    with wait_for_file(path, seconds):
        pass
    with open(path, mode) as f:
        yield f


__all__ = ["RepresentationMixin", "get_all_checkpoints", "get_last_checkpoint",
           "time_limited_open", "wait_for_file"]
