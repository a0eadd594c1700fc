"""daskflow: Parsl's parallel scripting model on Dask distributed.

Mark functions as apps; calling an app returns a future at once; apps run in
parallel as soon as their inputs are ready, on whatever Dask cluster the
current client talks to (a local one is started on first use).
"""

from __future__ import annotations

from . import config  # noqa: F401  (registers daskflow's dask config defaults)
from .client.apps import App, bash_app, join_app, python_app
from .client.futures import AppFuture, DataFuture
from .client.futures import gather_values as gather
from .client.notebook import FutureList, install_formatter, progress
from .client.session import Client, checkpoint
from .errors import (AppCancelled, AppTimeout, BadStdStream, BashExitFailure, DaskflowError,
                     DependencyError, JoinError, JoinReturnError, MissingInputs, MissingOutputs,
                     NestedFuture, PackedInGraph, PropagatedException, StagingError,
                     UnserializableResult, UnstageableFile, WorkerLost, WorkersUnavailable)
from .files import File
from .version import __version__  # noqa: F401  (daskflow.__version__)

install_formatter()  # in IPython: lists of AppFutures show as tables

__all__ = [
    "App",
    "AppFuture",
    "AppCancelled",
    "AppTimeout",
    "BadStdStream",
    "BashExitFailure",
    "Client",
    "DaskflowError",
    "DataFuture",
    "DependencyError",
    "File",
    "FutureList",
    "JoinError",
    "JoinReturnError",
    "MissingInputs",
    "MissingOutputs",
    "NestedFuture",
    "PackedInGraph",
    "PropagatedException",
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
