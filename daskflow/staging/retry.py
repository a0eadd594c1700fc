"""Transfers that cannot reach their server are tried again, later each time.

A mover reports a server it cannot reach (connection refused, unknown
host, timeout, HTTP 5xx or 429) as ``ConnectionError`` or ``TimeoutError``;
anything else (a missing object, a refused permission) fails at once. A host
that failed ``n`` times in a row in this worker process is not asked again
before ``min(max_backoff, backoff * 2**(n-1))`` seconds, jittered (times a
random factor in [0.5, 1]) so that many tasks do not come back at once. The
memory is per host and process, so the tries of one transfer space out, and
so do the app's own ``retries=`` (each calls the transfer again) and other
tasks that use the same host meanwhile; a success forgets the failures, and
so does a quiet spell longer than ``max_backoff``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Callable, TypeVar
from urllib.parse import urlsplit

from ..redaction import redact_text, redact_url

logger = logging.getLogger("daskflow.staging")
T = TypeVar("T")
TRANSIENT = (ConnectionError, TimeoutError)

_lock = threading.Lock()
_hosts: dict[str, tuple[int, float, float]] = {}  # host -> (failures, not before, last failure)


def host_of(url: str) -> str:
    """The scheme and host:port of ``url`` (its credentials left out)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def delay(failures: int, backoff: float, max_backoff: float) -> float:
    """The jittered wait after a host's ``failures``-th failure in a row."""
    if failures < 1 or backoff <= 0:
        return 0.0
    return min(max_backoff, backoff * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)


def _wait(host: str, max_backoff: float) -> None:
    with _lock:
        failures, not_before, _last = _hosts.get(host, (0, 0.0, 0.0))
        if failures and time.monotonic() > not_before + max_backoff:
            _hosts.pop(host, None)  # failures long ago say nothing of the host now
            return
    remaining = not_before - time.monotonic()
    if remaining > 0:
        time.sleep(min(remaining, max_backoff))


def _failed(host: str, backoff: float, max_backoff: float) -> tuple[int, float]:
    with _lock:
        failures = _hosts.get(host, (0, 0.0, 0.0))[0] + 1
        now = time.monotonic()
        wait = delay(failures, backoff, max_backoff)
        _hosts[host] = (failures, now + wait, now)
        return failures, wait


def _succeeded(host: str) -> None:
    if host in _hosts:
        with _lock:
            _hosts.pop(host, None)


def retrying(url: str, func: Callable[[], T], attempts: int = 3, backoff: float = 0.5,
             max_backoff: float = 10.0, what: str = "transfer") -> T:
    """``func()``, tried up to ``attempts`` times while it raises a transient
    error (see the module's docstring); the last error is raised."""
    host = host_of(url)
    attempts = max(1, int(attempts))
    for attempt in range(1, attempts + 1):
        _wait(host, max_backoff)
        try:
            result = func()
        except TRANSIENT as exc:
            failures, wait = _failed(host, backoff, max_backoff)
            if attempt == attempts:
                raise
            logger.info("daskflow: %s of %s failed (%s); try %d of %d in %.1f s",
                        what, redact_url(url), redact_text(f"{type(exc).__name__}: {exc}"),
                        attempt + 1, attempts, wait)
            continue
        _succeeded(host)
        return result
    raise AssertionError("unreachable")  # the loop returns or raises
