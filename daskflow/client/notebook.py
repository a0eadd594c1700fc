"""Jupyter: HTML views of AppFutures and ``progress(futures)``.

Nothing here makes a round trip to the scheduler or the workers: the views
use what the client already knows about each future (its status, a kept
value, the exception the scheduler reported), so displaying 10,000 futures
is cheap. A list whose items are all AppFutures is shown as a table in
IPython through an HTML formatter registered for ``list`` (it declines other
lists); ``FutureList`` is a list that has the view itself.

``progress(futures)`` shows one bar per app. In a notebook (ipywidgets
installed, an IPython kernel running) it displays widgets and returns at
once; the bars move from the futures' done callbacks. Elsewhere it prints
text lines and returns when every future is done, as ``distributed.progress``
does.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Iterable

from .futures import AppFuture
from .views import STATUS_COLORS, future_html, futures_html  # noqa: F401  (future_html: tests)


class FutureList(list):
    """A list of AppFutures that shows itself as a table in Jupyter.

    Plain lists of AppFutures show so too when daskflow was imported in a
    running IPython (it registers a formatter); this one needs none. The
    table uses only what the client already knows: no round trip.

    Examples
    --------
    >>> FutureList(multiply.map(range(3), range(3)))  # doctest: +SKIP
    """

    def _repr_html_(self) -> str:
        return futures_html(self)


def _list_html(obj) -> str | None:
    if obj and all(isinstance(f, AppFuture) for f in obj):
        return futures_html(obj)
    return None  # IPython then shows the list as usual


def install_formatter() -> bool:
    """Show lists of AppFutures as tables in the running IPython (if any)."""
    ipython = _ipython()
    if ipython is None:
        return False
    ipython.display_formatter.formatters["text/html"].for_type(list, _list_html)
    return True


def _ipython():
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


# ------------------------------------------------------------------ progress
def _flatten(futures) -> list[AppFuture]:
    if isinstance(futures, AppFuture):
        return [futures]
    if isinstance(futures, dict):
        futures = futures.values()
    out: list[AppFuture] = []
    for f in futures:
        out.extend(_flatten(f) if isinstance(f, (list, tuple, set, dict)) else [f])
    return out


class ProgressTracker:
    """Counts per app (done, failed, cancelled out of total), moved by the
    futures' done callbacks."""

    def __init__(self, futures: Iterable):
        self.futures = _flatten(futures)
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.totals: dict[str, int] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.listeners: list = []
        self._left = len(self.futures)
        for f in self.futures:
            app = getattr(f, "app_name", None) or str(f.key).split("-", 1)[0]
            self.totals[app] = self.totals.get(app, 0) + 1
            self.counts.setdefault(app, {"done": 0, "failed": 0, "cancelled": 0})
        if not self.futures:
            self.finished.set()
        for f in self.futures:
            app = getattr(f, "app_name", None) or str(f.key).split("-", 1)[0]
            f.add_done_callback(lambda fut, app=app: self._done(app, fut))

    def _done(self, app: str, future) -> None:
        status = future.status
        if status == "error" and future.cancelled():  # an AppCancelled: asked for
            status = "cancelled"
        outcome = {"finished": "done", "error": "failed"}.get(status, "cancelled")
        with self.lock:
            self.counts[app][outcome] += 1
            self._left -= 1
            last = self._left == 0
        for listener in list(self.listeners):
            listener()
        if last:  # after the listeners: a waiter then sees the final display
            self.finished.set()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {app: {**c, "total": self.totals[app]} for app, c in self.counts.items()}

    def text(self, width: int = 20) -> str:
        """One line: ``[####----] 12/20 | double 10/10 | fails 2/10 (2 failed)``."""
        snap = self.snapshot()
        total = sum(c["total"] for c in snap.values())
        finished = sum(c["done"] + c["failed"] + c["cancelled"] for c in snap.values())
        filled = int(width * finished / total) if total else width
        parts = [f"[{'#' * filled}{'-' * (width - filled)}] {finished}/{total}"]
        for app, c in sorted(snap.items()):
            extra = ", ".join(f"{c[k]} {k}" for k in ("failed", "cancelled") if c[k])
            parts.append(f"{app} {c['done'] + c['failed'] + c['cancelled']}/{c['total']}"
                         + (f" ({extra})" if extra else ""))
        return " | ".join(parts)


class ProgressWidget:
    """ipywidgets: a bar per app with its counts, updated as futures finish."""

    def __init__(self, tracker: ProgressTracker):
        import ipywidgets as w

        self.tracker = tracker
        self.bars: dict[str, Any] = {}
        self.labels: dict[str, Any] = {}
        rows = []
        for app, total in sorted(tracker.totals.items()):
            self.bars[app] = w.IntProgress(value=0, min=0, max=total, description=app,
                                           bar_style="info",
                                           style={"description_width": "initial"})
            self.labels[app] = w.HTML()
            rows.append(w.HBox([self.bars[app], self.labels[app]]))
        self.box = w.VBox(rows)
        tracker.listeners.append(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        for app, c in self.tracker.snapshot().items():
            bar = self.bars[app]
            bar.value = c["done"] + c["failed"] + c["cancelled"]
            if c["failed"] or c["cancelled"]:
                bar.bar_style = "danger"
            elif bar.value == c["total"]:
                bar.bar_style = "success"
            extra = "".join(f", <span style='color:{STATUS_COLORS[s]}'>{c[k]} {k}</span>"
                            for k, s in (("failed", "error"), ("cancelled", "cancelled"))
                            if c[k])
            self.labels[app].value = f"{c['done']}/{c['total']} done{extra}"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


def progress(futures, *, notebook: bool | None = None, interval: float = 0.5,
             file=None) -> ProgressWidget | None:
    """Show the progress of ``futures``, one bar per app.

    Parameters
    ----------
    futures : AppFuture or collection of AppFuture
        A future, or a list, tuple, set or dict of them, nested.
    notebook : bool, optional
        Show ipywidgets and return at once; default: when running in a
        Jupyter kernel with ipywidgets installed. Otherwise print a text line
        (``[####----] 12/20 | double 10/10 | fails 2/10 (2 failed)``) to
        ``file`` whenever the counts change, and return when all are done.
    interval : float, default 0.5
        Text mode: seconds between checks for a new line.
    file : file object, optional
        Text mode: where lines go; default ``sys.stdout``.

    Returns
    -------
    ProgressWidget or None
        The widget in a notebook (its bars move as futures finish); None in
        text mode, once every future is done.
    """
    tracker = ProgressTracker(futures)
    if notebook is None:
        notebook = _in_notebook()
    if notebook:
        widget = ProgressWidget(tracker)
        if _ipython() is not None:
            from IPython.display import display

            display(widget.box)
        return widget
    out = file or sys.stdout
    last = None
    while True:
        done = tracker.finished.wait(interval)
        line = tracker.text()
        if line != last:
            print(line, file=out, flush=True)
            last = line
        if done:
            return None


def _in_notebook() -> bool:
    ipython = _ipython()
    if ipython is None or type(ipython).__name__ != "ZMQInteractiveShell":
        return False
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None

