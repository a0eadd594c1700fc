"""``parsl.dataflow.errors``: ``DependencyError`` and ``JoinError`` are
daskflow's, under their common base ``PropagatedException`` as in Parsl:
each carries ``dependent_exceptions_tids`` (``(exception, "task 7")``
pairs, or the repr of a future that is not an app call) and ``task_id``."""

from __future__ import annotations

from ...errors import DependencyError, JoinError, PropagatedException
from ..errors import ConfigurationError, NoDataFlowKernelError, ParslError


class DataFlowException(ParslError):
    """Parsl's base of the data flow kernel's errors."""


class BadCheckpoint(DataFlowException):
    """A checkpoint that cannot be read."""


__all__ = ["BadCheckpoint", "ConfigurationError", "DataFlowException", "DependencyError",
           "JoinError", "NoDataFlowKernelError", "PropagatedException"]
