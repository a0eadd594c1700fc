"""The Workflow page on a real scheduler: registered in the dashboard,
drawn from the run's live state, pools and blocks read from the scheduler."""

from __future__ import annotations

import time
import urllib.request

import distributed
from waiting import until

import daskflow
from daskflow import python_app
from daskflow.dashboard.page import FOLLOW, SchedulerRuns, WorkflowPage, counts_html, layout
from daskflow.dashboard.pools import SCALER, pool_rows
from daskflow.dashboard.register import add_page
from daskflow.dashboard.state import EXTENSION, INTERVALS, WorkflowState


@python_app
def pg_leaf(x):
    return x


@python_app
def pg_join(*xs):
    return len(xs)


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read().decode()


def test_the_page_is_served_and_linked_from_the_dashboard(client):
    pg_leaf(0).result()  # a run exists: the plugin has registered the page
    status, html = _get(client.dashboard_link)
    assert status == 200 and '<a href="workflow">Workflow</a>' in html
    status, html = _get(client.dashboard_link.replace("/status", "/workflow"))
    assert status == 200 and "Bokeh.embed.embed_items" in html  # drawn: test_dashboard_browser
    scheduler = client.cluster.scheduler
    assert add_page(scheduler) is True  # already there: not added twice
    paths = [p for app in scheduler.http_application.applications
             for p in getattr(app, "app_paths", ())]
    assert paths.count("/workflow") == 1


def test_the_page_draws_the_run_from_its_live_state(client):
    leaves = [pg_leaf(i) for i in range(30)]
    assert pg_join(*leaves).result() == 30
    session = daskflow.client.session.session_of(client)
    client.sync(client.scheduler.daskflow_workflow, run_id=session.token, settle=True)
    scheduler = client.cluster.scheduler

    async def draw():
        page = WorkflowPage(SchedulerRuns(scheduler))
        page.update()
        return page

    page = client.sync(draw)
    state = scheduler.extensions[EXTENSION].get(session.token)
    snap = state.snapshot()
    assert page.shown == (session.token, snap["version"])
    assert "<tr data-app='pg_leaf'><td>pg_leaf</td>" in page.counts.text
    assert counts_html(snap["apps"]) == page.counts.text
    assert snap["apps"]["pg_leaf"]["done"] >= 30
    assert "pg_leaf" in page.bar_source.data["app"]
    assert "pg_leaf" in page.node_source.data["app"] and "pg_join" in page.node_source.data["app"]
    edges = page.edge_source.data
    assert dict(zip(zip(edges["source"], edges["target"]), edges["count"]))[
        ("pg_leaf", "pg_join")] == "30"
    leaf, join = (page.node_source.data["app"].index(a) for a in ("pg_leaf", "pg_join"))
    assert page.node_source.data["x"][join] > page.node_source.data["x"][leaf]
    gantt = page.gantt_source.data
    assert 0 < len(gantt["app"]) <= INTERVALS
    assert all(left <= right for left, right in zip(gantt["left"], gantt["right"]))
    assert set(page.gantt.y_range.factors) <= set(scheduler.workers)
    assert page.select.options[0] == FOLLOW and any(
        o.endswith(session.token) for o in page.select.options)
    # a newer run on the scheduler: followed by default, unless a run is picked
    registry = scheduler.extensions[EXTENSION]
    other = WorkflowState({"run_id": "999", "start": time.time()}, token="other-run")
    client.sync(_call, lambda: registry.add(other))
    try:
        client.sync(_call, page.update)
        assert page.shown[0] == "other-run" and "999" in page.header.text
        page.select.value = next(o for o in page.select.options if o.endswith(session.token))
        client.sync(_call, page.update)
        assert page.shown[0] == session.token
    finally:
        client.sync(_call, lambda: registry.runs.pop("other-run"))
    client.sync(_call, page.update)  # the picked run stays picked
    assert page.shown[0] == session.token
    # the pools of a plain LocalCluster: one anonymous block of its workers
    assert page.pool_source.data["workers"] == [len(scheduler.workers)]


async def _call(fn):
    return fn()


def test_layout_puts_downstream_apps_to_the_right_and_survives_cycles():
    pos = layout(["a", "b", "c", "d"], [["a", "b", 3], ["b", "c", 1], ["a", "c", 2],
                                        ["c", "c", 5], ["d", "a", 1], ["a", "d", 1]])
    assert pos["b"][0] > pos["a"][0] and pos["c"][0] > pos["b"][0]
    assert len({p for p in pos.values()}) == 4  # no two apps on one spot


ELASTIC = """
name: elastic-page
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: fixed
    provider: local
    workers_per_node: 2
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
  - label: burst
    provider: local
    workers_per_node: 1
    scaling: {strategy: simple, init_blocks: 0, min_blocks: 0, max_blocks: 1, max_idletime: 60s}
"""


def test_pools_and_blocks_from_the_workers_and_the_scaler(tmp_path):
    """Live workers give pools and blocks by themselves; a block the scaler
    asked for shows as pending until its workers join, if the scaler is
    registered on the scheduler (the hook this page asks of the sites room)."""
    path = tmp_path / "elastic.yaml"
    path.write_text(ELASTIC)
    with daskflow.Client(profile=str(path), set_as_default=False) as c:
        scheduler = c.cluster.scheduler
        rows = c.sync(_call, lambda: pool_rows(scheduler))
        assert rows == [{"pool": "fixed", "block": "0", "state": "idle", "workers": 2,
                         "processing": 0}]
        # what the sites room would do when its scaler starts
        c.sync(_call, lambda: scheduler.extensions.__setitem__(SCALER, c._scaler))
        seen = []

        @python_app(executors=["burst"])
        def burst():
            return distributed.get_worker().name

        with c.as_current():
            future = burst()

            def done_watching_rows() -> bool:
                seen.append(c.sync(_call, lambda: [(r["pool"], r["block"], r["state"])
                                                    for r in pool_rows(scheduler)]))
                return future.done()

            until(done_watching_rows, "the burst call did not finish", timeout=60,
                  interval=0.02)
            assert future.result() == "burst-0-0"
        assert ("burst", "0", "pending") in {row for rows in seen for row in rows}
        final = c.sync(_call, lambda: pool_rows(scheduler))
        assert [(r["pool"], r["block"], r["workers"]) for r in final] == [("burst", "0", 1),
                                                                          ("fixed", "0", 2)]


def test_a_scheduler_without_a_dashboard_still_answers_the_handler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            daskflow.Client(cluster, set_as_default=False) as c, c.as_current():
        assert pg_leaf(1).result() == 1
        snap = c.sync(c.scheduler.daskflow_workflow, settle=True)
        assert snap["apps"]["pg_leaf"]["done"] == 1
        assert add_page(cluster.scheduler) is False
        assert c.sync(c.scheduler.daskflow_workflow, run_id="no-such-run") is None



def test_a_preloaded_scheduler_shows_the_page_before_any_run():
    """``dask scheduler --preload daskflow.dashboard``, in process."""
    import asyncio

    from distributed import Scheduler
    from tornado.httpclient import AsyncHTTPClient

    async def main():
        async with Scheduler(dashboard_address="127.0.0.1:0", preload=["daskflow.dashboard"],
                             host="127.0.0.1") as s:
            assert s.extensions[EXTENSION].get() is None and "daskflow_workflow" in s.handlers
            port = s.http_server.port
            response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/workflow")
            assert response.code == 200
            page = WorkflowPage(SchedulerRuns(s))
            page.update()
            assert "No daskflow run to show yet" in page.header.text
            assert page.pool_source.data["pool"] == []  # no workers

    asyncio.run(main())


class _OneRun:
    """A source of one run's state, as ``WorkflowPage`` reads its runs."""

    def __init__(self, state):
        self.state = state

    def choices(self):
        return [(self.state.run_id, self.state.token)]

    def get(self, token=None):
        return self.state

    def pools(self, token=None):
        return []


def test_no_app_takes_a_states_colour_and_failed_calls_are_outlined():
    from daskflow.dashboard.page import APP_COLORS, STATE_COLORS
    from daskflow.dashboard.state import WorkflowState

    state = WorkflowState({"run_id": "000"})
    now = time.time()
    apps = [f"app{i}" for i in range(len(APP_COLORS) + 3)]
    state.counts = {a: {"done": 1} for a in apps}
    state.intervals.extend(("w", now, now + 1, a, i, "failed" if i == 1 else "done")
                           for i, a in enumerate(apps))
    state.version = 1
    page = WorkflowPage(_OneRun(state), follow=None, initial="000")
    page.update()
    data = page.gantt_source.data
    assert not set(data["color"]) & set(STATE_COLORS.values())
    first = sorted(apps)[:len(APP_COLORS)]  # coloured in this order: all different
    assert len({page.colors[a] for a in first}) == len(APP_COLORS)
    assert data["outline"][1] == STATE_COLORS["failed"]
    assert data["outline"][0] == data["color"][0]
