"""``parsl.monitoring.monitoring``."""

from . import MonitoringHub

__all__ = ["MonitoringHub"]
