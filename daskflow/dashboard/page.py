"""The Workflow page: a Bokeh document served by the scheduler's dashboard.

Every half second it reads the run's ``WorkflowState`` (a snapshot whose
size depends on apps, edges and the bounded ring of intervals, not on the
number of tasks) and the scheduler's workers, and pushes only what changed:

* per-app counts by state: an HTML table (``#daskflow-counts``, one
  ``tr[data-app]`` per app, one ``td[data-state]`` per state, readable from
  the DOM) and a stacked bar chart;
* what each app's calls used (``#daskflow-usage``): wall and CPU time,
  peak memory, bytes read and written;
* a task timeline of the last ``state.INTERVALS`` tasks, by worker, coloured by app;
* the app graph: apps as nodes, edges weighted by task dependencies;
* the last failures with their messages;
* pools and blocks with their states.
"""

from __future__ import annotations

import html
import math
import time

from bokeh.layouts import column, row
from bokeh.models import (Arrow, ColumnDataSource, DataTable, Div, FactorRange, HoverTool,
                          LabelSet, Range1d, Select, TableColumn, VeeHead)
from bokeh.plotting import figure
from dask.utils import format_bytes

from .pools import pool_rows
from .state import EXTENSION

INTERVAL_MS = 500
SHOWN = ("pending", "running", "done", "failed", "memo", "cancelled")
LABELS = {"memo": "memo hit"}
STATE_COLORS = {"pending": "#c7c7c7", "running": "#1f77b4", "done": "#2ca02c",
                "failed": "#d62728", "memo": "#9467bd", "cancelled": "#ff7f0e"}
FOLLOW = "newest run"
# apps' colours: none of the states' (nor a shade of one), so that a bar of the
# timeline never reads as a state; a failed call is outlined in the failed red
APP_COLORS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#8c6d31", "#7b4173", "#bd9e39",
              "#a55194", "#e7ba52", "#de9ed6", "#9edae5", "#393b79", "#e7cb94", "#cedb9c")

CSS = """<style>
table.daskflow {border-collapse: collapse; font: 13px sans-serif; margin: 4px 0}
table.daskflow th, table.daskflow td {padding: 2px 10px; border-bottom: 1px solid #ddd;
  text-align: right; white-space: nowrap}
table.daskflow th:first-child, table.daskflow td:first-child {text-align: left}
table.daskflow tr.total td {font-weight: bold}
</style>"""


def workflow_doc(scheduler, extra, doc) -> None:
    """The document function registered for ``/workflow``."""
    from ..dask_internals import dress_like_dashboard

    page = WorkflowPage(SchedulerRuns(scheduler))
    page.update()
    doc.add_periodic_callback(page.update, INTERVAL_MS)
    doc.add_root(page.root)
    doc.title = "Dask: Workflow"
    dress_like_dashboard(doc)
    doc.template_variables.update(extra)


class SchedulerRuns:
    """The runs a scheduler's Workflow page shows: those of its registry
    (``state.WorkflowRegistry``), with the scheduler's own pools."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def choices(self) -> list[tuple[str, str]]:
        registry = self.scheduler.extensions.get(EXTENSION)
        runs = list(registry.runs.values()) if registry is not None else []
        return [(f"{s.run_id} · {s.token}", s.token) for s in reversed(runs)]

    def get(self, token: str | None = None):
        registry = self.scheduler.extensions.get(EXTENSION)
        return registry.get(token) if registry is not None else None

    def pools(self, token: str | None = None) -> list[dict]:
        return pool_rows(self.scheduler)


class WorkflowPage:
    """The page's models and their update from the state of the runs.

    ``runs`` gives ``choices()``, ``(label, token)`` of the runs to pick
    from, newest first; ``get(token)``, a run's ``WorkflowState`` (token
    None: the run shown by default); and ``pools(token)``, the rows of the
    pools and blocks table. ``follow`` is the label of the menu's entry for
    the default run (None: no such entry, the menu starts on ``initial``).
    """

    def __init__(self, runs, follow: str | None = FOLLOW, initial: str | None = None):
        self.runs = runs
        self.follow = follow
        self.shown: tuple | None = None  # (token, version) drawn last
        self.colors: dict[str, str] = {}
        self._graph_key = None
        self._failed = -1
        self._pools = None
        first = follow or initial or ""
        self.select = Select(title="Run", value=first, options=[first], width=220)
        self.header = Div(text="", sizing_mode="stretch_width")
        self.counts = Div(text="", width=620)
        self.usage = Div(text="", width=620)

        self.bar_source = ColumnDataSource({"app": [], **{s: [] for s in SHOWN}})
        self.bars = figure(y_range=FactorRange(), height=240, width=520, title="Tasks by state",
                           toolbar_location=None, tools="")
        self.bars.hbar_stack(list(SHOWN), y="app", height=0.7, source=self.bar_source,
                             color=[STATE_COLORS[s] for s in SHOWN],
                             legend_label=[LABELS.get(s, s) for s in SHOWN], line_alpha=0)
        self.bars.legend.orientation = "horizontal"
        self.bars.add_layout(self.bars.legend[0], "below")
        self.bars.x_range.start = 0

        self.gantt_source = ColumnDataSource({k: [] for k in ("worker", "left", "right", "app",
                                                              "tid", "state", "color",
                                                              "outline", "duration")})
        self.gantt = figure(y_range=FactorRange(), x_axis_type="datetime", height=300,
                            sizing_mode="stretch_width", title="Task timeline (recent tasks)",
                            tools="xpan,xwheel_zoom,reset")
        self.gantt.hbar(y="worker", left="left", right="right", height=0.8, fill_color="color",
                        line_color="outline", line_width=2, source=self.gantt_source,
                        legend_field="app")
        self.gantt.add_tools(HoverTool(tooltips=[("app", "@app"), ("tid", "@tid"),
                                                 ("state", "@state"), ("worker", "@worker"),
                                                 ("duration", "@duration{0.000} s")]))
        self.gantt.add_layout(self.gantt.legend[0], "right")

        self.node_source = ColumnDataSource({"x": [], "y": [], "app": [], "label": [],
                                             "color": []})
        self.edge_source = ColumnDataSource({"source": [], "target": [], "x0": [], "y0": [],
                                             "x1": [], "y1": [], "xm": [], "ym": [], "width": [],
                                             "count": []})
        self.graph = figure(height=300, width=520, title="Apps (edges: task dependencies)",
                            toolbar_location=None, tools="", x_range=Range1d(-1, 1),
                            y_range=Range1d(-1, 1))
        self.graph.axis.visible = False
        self.graph.grid.visible = False
        self.graph.add_layout(Arrow(end=VeeHead(size=10, fill_color="#777", line_color="#777"),
                                    source=self.edge_source, x_start="x0", y_start="y0",
                                    x_end="x1", y_end="y1", line_width="width",
                                    line_color="#999"))
        self.graph.scatter(x="x", y="y", size=28, color="color", source=self.node_source)
        self.graph.add_layout(LabelSet(x="x", y="y", text="label", source=self.node_source,
                                       y_offset=-30, text_align="center", text_font_size="11px"))
        self.graph.add_layout(LabelSet(x="xm", y="ym", text="count", source=self.edge_source,
                                       text_align="center", text_font_size="11px",
                                       text_color="#555"))

        self.fail_source = ColumnDataSource({k: [] for k in ("time", "app", "tid", "worker",
                                                             "message")})
        self.failures = DataTable(source=self.fail_source, height=260, sizing_mode="stretch_width",
                                  index_position=None, columns=[
                                      TableColumn(field="time", title="time", width=70),
                                      TableColumn(field="app", title="app", width=90),
                                      TableColumn(field="tid", title="tid", width=50),
                                      TableColumn(field="worker", title="worker", width=150),
                                      TableColumn(field="message", title="message", width=500)])
        self.pool_source = ColumnDataSource({k: [] for k in ("pool", "block", "state", "workers",
                                                             "processing")})
        self.pools = DataTable(source=self.pool_source, height=160, width=520, index_position=None,
                               columns=[TableColumn(field=k, title=k) for k in
                                        ("pool", "block", "state", "workers", "processing")])
        self.root = column(
            row(self.header, self.select, sizing_mode="stretch_width"),
            row(column(self.counts, self.usage), self.bars, sizing_mode="stretch_width"),
            self.gantt,
            row(self.graph, column(Div(text="<b>Failures</b>"), self.failures,
                                   sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            column(Div(text="<b>Pools and blocks</b>"), self.pools),
            sizing_mode="stretch_width")

    # ---------------------------------------------------------------- update
    def update(self) -> None:
        choices = self.runs.choices()
        options = ([self.follow] if self.follow else []) + [label for label, _ in choices]
        if options != self.select.options:
            self.select.options = options
        if self.select.value not in options and options:  # that run left the registry
            self.select.value = options[0]
        chosen = dict(choices).get(self.select.value)  # None: the default run
        state = self.runs.get(chosen)
        self._update_pools(chosen)
        if state is None:
            self._set(self.header, "<h3>Workflow</h3>No daskflow run to show yet.")
            return
        if self.shown == (state.token, state.version):
            self._set(self.header, self._header(state.run_id, state.script, state.status,
                                                state.start, state.end))
            return
        snap = state.snapshot(intervals=True)
        self.shown = (state.token, snap["version"])
        apps = sorted(snap["apps"])
        for app in apps:
            self._color(app)
        self._set(self.header, self._header(snap["run_id"], snap["script"], snap["status"],
                                            snap["start"], snap["end"]))
        self._set(self.counts, counts_html(snap["apps"]))
        self._set(self.usage, usage_html(snap["apps"]))
        self._update_bars(apps, snap["apps"])
        self._update_gantt(snap["intervals"])
        self._update_graph(snap["apps"], snap["edges"])
        if snap["n_failed"] != self._failed:
            self._failed = snap["n_failed"]
            failures = snap["failures"][::-1]
            self.fail_source.data = {
                "time": [time.strftime("%H:%M:%S", time.localtime(f["time"])) for f in failures],
                "app": [f["app"] for f in failures], "tid": [str(f["tid"]) for f in failures],
                "worker": [f["worker"] or "" for f in failures],
                "message": [f["message"] for f in failures]}

    @staticmethod
    def _set(div: Div, text: str) -> None:
        if div.text != text:
            div.text = text

    def _color(self, app: str) -> str:
        if app not in self.colors:  # past 14 apps, colours come round again
            self.colors[app] = APP_COLORS[len(self.colors) % len(APP_COLORS)]
        return self.colors[app]

    @staticmethod
    def _header(run_id, script, status, start, end) -> str:
        elapsed = (end or time.time()) - start
        name = html.escape(str(script or "").rsplit("/", 1)[-1] or "-")
        return (f"<h3 style='margin:4px 0'>Workflow run <span id='daskflow-run'>"
                f"{html.escape(str(run_id))}</span></h3>{name} &middot; "
                f"<span id='daskflow-status'>{html.escape(status)}</span> &middot; "
                f"{elapsed:.1f} s")

    def _update_bars(self, apps: list[str], counts: dict) -> None:
        if list(self.bars.y_range.factors) != apps:
            self.bars.y_range.factors = apps
        self.bar_source.data = {"app": apps, **{s: [counts[a].get(s, 0) for a in apps]
                                                for s in SHOWN}}

    def _update_gantt(self, intervals: list) -> None:
        workers = sorted({i[0] for i in intervals})
        if list(self.gantt.y_range.factors) != workers:
            self.gantt.y_range.factors = workers
        self.gantt_source.data = {
            "worker": [i[0] for i in intervals], "left": [i[1] * 1000 for i in intervals],
            "right": [i[2] * 1000 for i in intervals], "app": [i[3] for i in intervals],
            "tid": [str(i[4]) for i in intervals], "state": [i[5] for i in intervals],
            "color": [self._color(i[3]) for i in intervals],
            "outline": [STATE_COLORS["failed"] if i[5] == "failed" else self._color(i[3])
                        for i in intervals],
            "duration": [i[2] - i[1] for i in intervals]}

    def _update_graph(self, apps: dict, edges: list) -> None:
        key = (tuple(sorted((a, c["total"]) for a, c in apps.items())),
               tuple(sorted(map(tuple, edges))))
        if key == self._graph_key:
            return
        self._graph_key = key
        pos = layout(list(apps), edges)
        loops = {a: n for a, b, n in edges if a == b}
        names = sorted(apps)
        self.node_source.data = {
            "x": [pos[a][0] for a in names], "y": [pos[a][1] for a in names], "app": names,
            "label": [f"{a} ({apps[a]['total']})" + (f" ↻{loops[a]}" if a in loops else "")
                      for a in names],
            "color": [self._color(a) for a in names]}
        shown = [(a, b, n) for a, b, n in edges if a != b and a in pos and b in pos]
        ends = [_short_of(pos[a], pos[b]) for a, b, _ in shown]  # the head stays outside the node
        self.edge_source.data = {
            "source": [a for a, _, _ in shown], "target": [b for _, b, _ in shown],
            "x0": [pos[a][0] for a, _, _ in shown], "y0": [pos[a][1] for a, _, _ in shown],
            "x1": [e[0] for e in ends], "y1": [e[1] for e in ends],
            "xm": [(pos[a][0] + pos[b][0]) / 2 for a, b, _ in shown],
            "ym": [(pos[a][1] + pos[b][1]) / 2 for a, b, _ in shown],
            "width": [1 + 2 * math.log10(n) for _, _, n in shown],
            "count": [str(n) for _, _, n in shown]}
        xs = [p[0] for p in pos.values()] or [0]
        ys = [p[1] for p in pos.values()] or [0]
        self.graph.x_range.update(start=min(xs) - 0.7, end=max(xs) + 0.7)
        self.graph.y_range.update(start=min(ys) - 0.9, end=max(ys) + 0.7)

    def _update_pools(self, token: str | None) -> None:
        rows = self.runs.pools(token)
        if rows != self._pools:
            self._pools = rows
            self.pool_source.data = {k: [r[k] for r in rows] for k in
                                     ("pool", "block", "state", "workers", "processing")}


def usage_html(apps: dict) -> str:
    """What each app's calls used (``#daskflow-usage``, one ``tr[data-app]``
    per app, one ``td[data-usage]`` per measure): the time its finished
    calls took, their CPU time (user and system), the largest peak memory
    of one call, and the bytes they read and wrote; empty before any call
    was measured."""
    measured = sorted(a for a in apps if apps[a].get("usage"))
    if not measured:
        return ""
    head = "".join(f"<th>{title}</th>" for _, title in USAGE_COLUMNS)
    lines = [CSS, "<table class='daskflow' id='daskflow-usage'><tr><th>app</th>"
                  f"{head}</tr>"]
    for app in measured:
        used = {**apps[app]["usage"], "wall": apps[app].get("compute", 0.0)}
        name = html.escape(app, quote=True)
        cells = "".join(f"<td data-usage='{k}'>{_measure(k, used.get(k))}</td>"
                        for k, _ in USAGE_COLUMNS)
        lines.append(f"<tr data-app='{name}'><td>{name}</td>{cells}</tr>")
    lines.append("</table>")
    return "".join(lines)


USAGE_COLUMNS = (("wall", "wall"), ("cpu_user", "CPU user"), ("cpu_system", "CPU system"),
                 ("peak_memory", "peak memory"), ("read_bytes", "read"),
                 ("write_bytes", "written"))


def _measure(kind: str, value) -> str:
    if value is None:
        return ""
    if kind in ("wall", "cpu_user", "cpu_system"):
        return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"
    return format_bytes(int(value))


def counts_html(apps: dict) -> str:
    """The counts table: one row per app and a total row, cells tagged for the DOM."""
    head = "".join(f"<th>{LABELS.get(s, s)}</th>" for s in SHOWN)
    lines = [CSS, f"<table class='daskflow' id='daskflow-counts'><tr><th>app</th>{head}"
                  "<th>total</th></tr>"]
    totals = dict.fromkeys((*SHOWN, "total"), 0)
    for app in sorted(apps):
        counts = apps[app]
        name = html.escape(app, quote=True)
        cells = "".join(f"<td data-state='{s}'>{counts.get(s, 0)}</td>" for s in SHOWN)
        lines.append(f"<tr data-app='{name}'><td>{name}</td>{cells}"
                     f"<td data-state='total'>{counts['total']}</td></tr>")
        for s in totals:
            totals[s] += counts.get(s, 0)
    cells = "".join(f"<td data-state='{s}'>{totals[s]}</td>" for s in (*SHOWN, "total"))
    lines.append(f"<tr class='total' data-app='*'><td>all apps</td>{cells}</tr></table>")
    return "".join(lines)


def _short_of(a: tuple, b: tuple, gap: float = 0.15) -> tuple[float, float]:
    """A point on the segment a→b, ``gap`` (in data units) before b."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy) or 1.0
    keep = max(0.0, 1 - gap / length)
    return a[0] + dx * keep, a[1] + dy * keep


def layout(apps: list[str], edges: list) -> dict[str, tuple[float, float]]:
    """Positions of the app graph: columns by longest path from a source app,
    ignoring the edges that close a cycle (recursive apps, joins)."""
    out: dict[str, list[str]] = {a: [] for a in apps}
    for a, b, _n in edges:
        if a != b and a in out and b in out:
            out[a].append(b)
    order: list[str] = []  # reverse post-order of a depth-first search: a topological order
    visiting: set[str] = set()
    done: set[str] = set()
    back: set[tuple[str, str]] = set()
    for root in sorted(apps):
        if root in done:
            continue
        stack = [(root, iter(sorted(out[root])))]
        visiting.add(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                visiting.discard(node)
                done.add(node)
                order.append(node)
            elif child in visiting:
                back.add((node, child))
            elif child not in done:
                visiting.add(child)
                stack.append((child, iter(sorted(out[child]))))
    depth = dict.fromkeys(apps, 0)
    for node in reversed(order):
        for child in out[node]:
            if (node, child) not in back:
                depth[child] = max(depth[child], depth[node] + 1)
    layers: dict[int, list[str]] = {}
    for app in sorted(apps):
        layers.setdefault(depth[app], []).append(app)
    return {app: (float(d), i - (len(members) - 1) / 2)
            for d, members in layers.items() for i, app in enumerate(members)}
