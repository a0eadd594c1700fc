"""daskflow: Parsl's parallel scripting model on Dask distributed.

Mark functions as apps; calling an app returns a future at once; apps run in
parallel as soon as their inputs are ready, on whatever Dask cluster the
current client talks to (a local one is started on first use).
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import config  # noqa: F401  (registers daskflow's dask config defaults)
from .apps import App, bash_app, join_app, python_app
from .client import Client
from .errors import (
    AppTimeout,
    BashExitFailure,
    DaskflowError,
    DependencyError,
    JoinError,
    MissingInputs,
    MissingOutputs,
    StagingError,
    UnstageableFile,
    UnserializableResult,
    WorkerLost,
    WorkersUnavailable,
)
from .files import File
from .futures import AppFuture, DataFuture, gather_values as gather
from .client import checkpoint
from .notebook import FutureList, install_formatter, progress

install_formatter()  # in IPython: lists of AppFutures show as tables

__all__ = [
    "App",
    "AppFuture",
    "AppTimeout",
    "BashExitFailure",
    "Client",
    "DaskflowError",
    "DataFuture",
    "DependencyError",
    "File",
    "FutureList",
    "JoinError",
    "MissingInputs",
    "MissingOutputs",
    "StagingError",
    "UnstageableFile",
    "UnserializableResult",
    "WorkerLost",
    "WorkersUnavailable",
    "bash_app",
    "checkpoint",
    "gather",
    "join_app",
    "progress",
    "python_app",
]
