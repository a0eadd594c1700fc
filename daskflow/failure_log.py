"""How an app's failure is logged: once, briefly, on the driver's console.

An app that raises is an expected outcome of a workflow, not a fault of the
worker, and its traceback is kept where it is useful: in the future's
exception and in the run's provenance. So:

* on the worker, distributed's "Compute Failed" record (level ERROR, with
  the task's repr, which may show the call's arguments, and the traceback)
  is dropped for the calls whose failure daskflow's task body raised
  (``forget_failure``/``WorkerLogFilter``): such a failure is never logged
  with its arguments;
* on the driver, the client subscribed to its run's failure topic logs one
  line per failed call: ``app 'NAME' (tid N) failed: Error(...)``
  (``FailureLines``, up to 100 a run); the provenance plugin publishes them.

Nothing here imports the client-side modules (the worker imports it).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

logger = logging.getLogger("daskflow")

WORKER_LOGGER = "distributed.worker"
KEEP = 1000  # failed keys remembered until distributed logs them
LINE = 300  # characters of the error on the console line
MAX_LINES = 100  # console lines of failed calls per run


def topic(token: str) -> str:
    """The event topic of a run's failures."""
    return f"daskflow-failed-{token}"


class WorkerLogFilter(logging.Filter):
    """Drops distributed's "Compute Failed" record of the keys given to
    ``quiet`` (the calls whose failure the task body raised and the client
    and provenance receive with their traceback)."""

    def __init__(self):
        super().__init__()
        self._keys: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def quiet(self, key) -> None:
        with self._lock:
            self._keys[key] = None
            while len(self._keys) > KEEP:
                self._keys.popitem(last=False)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._keys or not isinstance(record.msg, str) \
                or not record.msg.startswith("Compute Failed"):
            return True
        key = record.args[0] if isinstance(record.args, tuple) and record.args else None
        with self._lock:
            if key in self._keys:
                del self._keys[key]
                return False
        return True


_filter: WorkerLogFilter | None = None
_install_lock = threading.Lock()


def quiet(key) -> None:
    """Do not let the worker log the failure of task ``key`` (installs the
    filter on distributed's worker logger the first time)."""
    global _filter
    if _filter is None:
        with _install_lock:
            if _filter is None:
                f = WorkerLogFilter()
                logging.getLogger(WORKER_LOGGER).addFilter(f)
                _filter = f
    _filter.quiet(key)


class FailureLines:
    """The client's handler of its run's failure topic: one line per failed
    call, up to ``limit`` lines, then one line saying where the rest are (a
    pool that cannot start fails all its waiting calls at once)."""

    def __init__(self, limit: int = MAX_LINES):
        self.limit = limit
        self.shown = 0

    def __call__(self, event) -> None:
        try:
            _, msg = event
            self.shown += 1
            if self.shown > self.limit + 1:
                return
            if self.shown == self.limit + 1:  # the plugin sends one more than it shows
                logger.warning("more calls failed; they are not shown here "
                               "(`daskflow tasks latest --state failed` lists them)")
                return
            error = " ".join(str(msg.get("error") or "").split())
            if len(error) > LINE:
                error = error[:LINE] + "..."
            logger.warning("app '%s' (tid %s) failed: %s", msg.get("app"), msg.get("tid"),
                           error)
        except Exception:  # a malformed event must not break the client
            logger.debug("daskflow: could not show a failure event %r", event, exc_info=True)
