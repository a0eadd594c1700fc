"""HTML views of AppFutures for Jupyter: one future, or a list of them.

They use only what the client already knows about each future (status, a
kept value, the reported exception), so showing 10,000 futures makes no
round trip. Kept apart from ``futures`` and ``notebook`` so that a future's
own ``_repr_html_`` needs nothing but this module.
"""

from __future__ import annotations

import html
from typing import Any

ROWS = 20  # futures listed in a list's view (the counts cover all)
STATUS_COLORS = {"finished": "#2ca02c", "error": "#d62728", "cancelled": "#ff7f0e",
                 "pending": "#1f77b4", "lost": "#7f7f7f"}


def _status(f) -> str:
    return getattr(f, "status", "pending")


def _badge(status: str) -> str:
    color = STATUS_COLORS.get(status, "#7f7f7f")
    return f"<span style='color:{color};font-weight:bold'>{html.escape(status)}</span>"


def _short(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a user's __repr__ may fail
        text = f"<unrepresentable: {exc!r}>"
    return html.escape(text if len(text) <= limit else text[:limit] + "…")


def future_html(f) -> str:
    """One AppFuture: app, tid, status, key, and what is known locally
    (a kept value, the exception, output files, bash streams)."""
    status = _status(f)
    rows = [("key", html.escape(str(f.key)) + ("" if f.index is None else f" [{f.index}]"))]
    holder = f._chunk or f
    if status == "finished" and holder._has:
        try:
            rows.append(("result", f"<code>{_short(f.result())}</code>"))
        except Exception as exc:  # a failed call of a chunk
            status = "error"
            rows.append(("exception", f"<code>{_short(exc, 1000)}</code>"))
    elif status == "error":
        rows.append(("exception", f"<code>{_short(f.exception(), 1000)}</code>"))
    outputs = getattr(f, "outputs", None) or []
    if outputs:
        rows.append(("outputs", "<br>".join(html.escape(o.file.url) for o in outputs)))
    for name in ("stdout", "stderr"):
        if getattr(f, name, None):
            rows.append((name, html.escape(str(getattr(f, name)))))
    body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}"
                   "</td></tr>" for k, v in rows)
    return (f"<div class='daskflow-future'><b>AppFuture</b> <code>{html.escape(f.app_name)}"
            f"</code> tid={html.escape(str(f.tid))}: {_badge(status)}<table>{body}</table></div>")


def futures_html(futures: list) -> str:
    """Many AppFutures: counts per app and status, then the first ``ROWS``."""
    per_app: dict[str, dict[str, int]] = {}
    for f in futures:
        counts = per_app.setdefault(f.app_name, {})
        status = _status(f)
        counts[status] = counts.get(status, 0) + 1
    statuses = [s for s in STATUS_COLORS if any(s in c for c in per_app.values())]
    head = "".join(f"<th>{_badge(s)}</th>" for s in statuses)
    rows = "".join(
        f"<tr><td style='text-align:left'><code>{html.escape(app)}</code></td>"
        + "".join(f"<td>{c.get(s, 0)}</td>" for s in statuses)
        + f"<td>{sum(c.values())}</td></tr>" for app, c in sorted(per_app.items()))
    listed = "".join(
        f"<tr><td>{html.escape(str(f.tid))}</td><td style='text-align:left'>"
        f"<code>{html.escape(f.app_name)}</code></td><td>{_badge(_status(f))}</td>"
        f"<td style='text-align:left'>{html.escape(str(f.key))}</td></tr>"
        for f in futures[:ROWS])
    more = f"<p>… and {len(futures) - ROWS} more</p>" if len(futures) > ROWS else ""
    return (f"<div class='daskflow-futures'><b>{len(futures)} AppFutures</b>"
            f"<table><tr><th>app</th>{head}<th>total</th></tr>{rows}</table>"
            f"<table><tr><th>tid</th><th>app</th><th>status</th><th>key</th></tr>{listed}"
            f"</table>{more}</div>")
