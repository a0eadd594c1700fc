"""Monitoring: the Workflow page of the Dask dashboard and the live run state.

``state`` holds the aggregate the provenance plugin keeps per run,
``register`` adds the page and the ``daskflow_workflow`` scheduler handler,
``page`` draws the page, ``pools`` reads pools and blocks from the
scheduler. As a scheduler preload module (``--preload daskflow.dashboard``)
it shows the page before the first run.
"""

from __future__ import annotations

from .register import dask_setup

__all__ = ["dask_setup"]
