"""``parsl.process_loggers``: ``wrap_with_logs`` logs how a function ended,
for thread and process entry points whose exceptions would go unseen."""

from __future__ import annotations

import functools
import logging
import threading
from typing import Callable


def wrap_with_logs(fn: Callable | None = None, target: str = "parsl.process_loggers") -> Callable:
    """Log "Normal ending" (debug) or "Exceptional ending" (error, with the
    traceback) for each call of ``fn``, to the logger ``target``; results and
    exceptions pass through unchanged."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def logged(*args, **kwargs):
            where = f"{func.__name__} on thread {threading.current_thread().name}"
            log = logging.getLogger(target)
            try:
                result = func(*args, **kwargs)
            except Exception:
                log.error("Exceptional ending for %s", where, exc_info=True)
                raise
            log.debug("Normal ending for %s", where)
            return result

        return logged

    return decorate(fn) if fn is not None else decorate


__all__ = ["wrap_with_logs"]
