"""``parsl.monitoring``: ``Config(monitoring=MonitoringHub(...))`` turns
daskflow's provenance on (``daskflow.provenance.enabled``, on by default):
the run's ``provenance.db`` and the Dask dashboard's Workflow page. The
hub's keywords have no meaning on Dask; ``parsl.load`` names those given."""

from __future__ import annotations

from ..holders import Holder


class MonitoringHub(Holder):
    """Parsl's monitoring configuration, read by ``translate``."""

    keywords = {"hub_address": None, "hub_port_range": None, "hub_port": None,
                "workflow_name": None, "workflow_version": None, "logging_endpoint": None,
                "monitoring_debug": False, "resource_monitoring_enabled": True,
                "resource_monitoring_interval": 30}


__all__ = ["MonitoringHub"]
