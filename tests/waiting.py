"""Waiting in tests for something real (a job, a worker) to happen."""

from __future__ import annotations

import time


def until(condition, what: str, timeout: float = 60, interval: float = 0.2) -> None:
    """Poll ``condition()`` until it is true; fail with ``what`` after ``timeout`` s."""
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, what
        time.sleep(interval)
