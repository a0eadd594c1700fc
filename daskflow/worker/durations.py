"""How long an app's calls take, told to the client that packs them.

The client packs a burst of calls into chunk tasks only for apps whose
calls it knows to be short (``client.bursts``). It learns their durations
from the workers, as Dask structured events (topic ``TOPIC``): each worker
process reports an app's first two calls at once, then at most every
``EVERY`` seconds the mean of the calls since its last report, so a stream
of short calls costs a few events a second, not one per call. The first
report of an app from a process is marked ``cold``: its first call also
paid one-time costs (loading the app, warming the process), which later
calls do not; the second, warm at once, sizes the chunks of the loop that
usually follows.
"""

from __future__ import annotations

import threading
import time

from distributed import get_worker

TOPIC = "daskflow-durations"
EVERY = 0.2  # seconds between the reports of one app from one worker process

_lock = threading.Lock()
_since: dict[tuple[str, str], list] = {}  # (run token, app) -> [calls, seconds, last, reports]


def note(token: str, app: str, calls: int, seconds: float) -> None:
    """Count ``calls`` of ``app`` that took ``seconds`` in all; report when due.

    Does nothing outside a worker (a call run in the client's own thread)."""
    now = time.monotonic()
    with _lock:
        entry = _since.get((token, app))
        if entry is None:
            entry = _since[(token, app)] = [0, 0.0, 0.0, 0]  # calls, seconds, last, reports
        entry[0] += calls
        entry[1] += seconds
        if entry[3] >= 2 and now - entry[2] < EVERY:
            return
        message = {"run": token, "app": app, "calls": entry[0], "seconds": entry[1],
                   "cold": entry[3] == 0}
        entry[:] = [0, 0.0, now, entry[3] + 1]
    try:
        worker = get_worker()
    except ValueError:  # not in a worker: nobody packs these calls
        return
    worker.log_event(TOPIC, message)
