"""Adding the Workflow page and the ``daskflow_workflow`` handler to a scheduler.

distributed builds its dashboard once, when the scheduler starts
(``distributed.dashboard.scheduler.connect``): one Bokeh server application
with a document function per path, added to the scheduler's tornado
``RoutingApplication``. That application accepts more applications at any
time (``add_application``), so daskflow adds a second Bokeh server
application carrying ``/workflow`` when its first run starts on the
scheduler, and puts ``workflow`` in the navigation bar's page list (the
memoized ``template_variables(scheduler)["pages"]`` that every dashboard
page renders its navigation from). The scheduler stops the application with
its other HTTP services.

Everything here runs in the scheduler's event loop.
"""

from __future__ import annotations

import logging
from typing import Any

from .state import EXTENSION, WorkflowRegistry, WorkflowState

logger = logging.getLogger("daskflow")

HANDLER = "daskflow_workflow"  # scheduler handler: a run's snapshot
PAGE = "workflow"  # the page's path under the dashboard's prefix


def registry(scheduler) -> WorkflowRegistry:
    """The scheduler's registry of runs, made (with the handler and the page) on first use."""
    found = scheduler.extensions.get(EXTENSION)
    if found is None:
        found = scheduler.extensions[EXTENSION] = WorkflowRegistry()

        async def daskflow_workflow(run_id: str | None = None, settle: bool = False,
                                    intervals: bool = False,
                                    described: int = 0) -> dict[str, Any] | None:
            """The snapshot of run ``run_id`` (default: the newest live one);
            ``settle`` first waits until the plugin applied every event it had
            queued, and until ``described`` calls of the run reached it."""
            state = found.get(run_id)
            if state is None:
                return None
            if settle and state.settle is not None:
                await state.settle(described=described)
            return state.snapshot(intervals=intervals)

        scheduler.handlers[HANDLER] = daskflow_workflow
        try:
            add_page(scheduler)
        except Exception:  # a dashboard problem must never stop a run
            logger.exception("daskflow: could not add the Workflow page to the dashboard")
    return found


def attach(scheduler, state: WorkflowState) -> None:
    """Show ``state`` (a run starting on ``scheduler``) in the live views."""
    registry(scheduler).add(state)


def add_page(scheduler) -> bool:
    """Serve ``/workflow`` from the scheduler's dashboard; False if it has none."""
    from ..dask_internals import (add_dashboard_application, dashboard_applications,
                                  dashboard_template_variables, new_dashboard_application)

    bokeh_apps = dashboard_applications(scheduler)
    if not bokeh_apps:  # dashboard off, or bokeh missing
        return False
    if any(path.rstrip("/").endswith("/" + PAGE) for app in bokeh_apps for path in app.app_paths):
        return True
    from tornado.ioloop import IOLoop

    from .page import workflow_doc

    variables = dashboard_template_variables(scheduler)  # the dict every page renders
    pages = variables["pages"]
    if PAGE not in pages:
        pages.insert(pages.index("info") if "info" in pages else len(pages), PAGE)
    prefix = getattr(bokeh_apps[0], "prefix", "") or ""
    app = new_dashboard_application({"/" + PAGE: workflow_doc}, scheduler, prefix, variables)
    add_dashboard_application(scheduler, app)
    app.initialize(IOLoop.current())
    app.start()
    return True


def dask_setup(scheduler) -> None:
    """Preload hook: ``dask scheduler --preload daskflow.dashboard`` shows the
    page before the first run (and on schedulers daskflow did not start)."""
    registry(scheduler)
