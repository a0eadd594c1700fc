"""``parsl.dataflow.errors``: ``DependencyError`` and ``JoinError`` are
daskflow's (they carry the failed app, its task id and its exception)."""

from __future__ import annotations

from ...errors import DependencyError, JoinError
from ..errors import ConfigurationError, NoDataFlowKernelError, ParslError


class DataFlowException(ParslError):
    """Parsl's base of the data flow kernel's errors."""


class BadCheckpoint(DataFlowException):
    """A checkpoint that cannot be read."""


__all__ = ["BadCheckpoint", "ConfigurationError", "DataFlowException", "DependencyError",
           "JoinError", "NoDataFlowKernelError"]
