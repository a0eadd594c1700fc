"""daskflow's defaults in ``dask.config`` (namespace ``daskflow``)."""

from __future__ import annotations

import logging
import os

import dask
import yaml

fn = os.path.join(os.path.dirname(__file__), "daskflow.yaml")
with open(fn) as f:
    defaults = yaml.safe_load(f)

dask.config.update_defaults(defaults)


def _setup_logging() -> None:
    """Give the "daskflow" logger a stderr handler, as distributed does for its own."""
    logger = logging.getLogger("daskflow")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(str(dask.config.get("daskflow.log-level", "info")).upper())


_setup_logging()
