"""``parsl.monitoring``: ``MonitoringHub`` is accepted; daskflow records
every run's provenance and shows it on the Dask dashboard's Workflow page."""

from __future__ import annotations

from ..holders import Holder


class MonitoringHub(Holder):
    keywords = {"hub_address": None, "hub_port_range": None, "hub_port": None,
                "workflow_name": None, "workflow_version": None, "logging_endpoint": None,
                "monitoring_debug": False, "resource_monitoring_enabled": True,
                "resource_monitoring_interval": 30}


__all__ = ["MonitoringHub"]
