"""Waiting in tests for something real (a job, a worker) to happen."""

from __future__ import annotations

import time
from typing import Callable


def until(condition, what: str | Callable[[], object], timeout: float = 60,
          interval: float = 0.2) -> None:
    """Poll ``condition()`` until it is true; fail with ``what`` after ``timeout`` s.

    ``what`` may be a callable, called only on failure, when the message
    should show the state at the deadline (what was seen instead).
    """
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, what() if callable(what) else what
        time.sleep(interval)
