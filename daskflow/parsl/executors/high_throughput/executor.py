"""``parsl.executors.high_throughput.executor``."""

from .. import HighThroughputExecutor

__all__ = ["HighThroughputExecutor"]
