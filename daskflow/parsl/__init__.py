"""Parsl's public interface on daskflow: ``import daskflow.parsl as parsl``,
or run a Parsl script unchanged (``python -m daskflow.parsl script.py``,
``daskflow run --parsl script.py``, or ``daskflow.parsl.install()`` in a
notebook), where ``import parsl`` then gives this package.

``parsl.load(config)`` translates the configuration into a daskflow Client
(``translate``); apps are daskflow's, so Dask does the scheduling.
"""

from __future__ import annotations

from .app.app import bash_app, join_app, python_app
from .config import Config
from .data_provider.files import File
from .dataflow.dflow import DataFlowKernel, DataFlowKernelLoader
from .executors import HighThroughputExecutor, ThreadPoolExecutor, WorkQueueExecutor
from .importer import ParslAlreadyImported, install
from .log_utils import set_file_logger, set_stream_logger
from .monitoring import MonitoringHub
from .version import VERSION

__author__ = "The Parsl Team; daskflow"
__version__ = VERSION

#: stdout/stderr=AUTO_LOGNAME: Parsl's request for a generated log file name
AUTO_LOGNAME = -1

clear = DataFlowKernelLoader.clear
load = DataFlowKernelLoader.load
dfk = DataFlowKernelLoader.dfk
wait_for_current_tasks = DataFlowKernelLoader.wait_for_current_tasks

__all__ = ["AUTO_LOGNAME", "Config", "DataFlowKernel", "File", "HighThroughputExecutor",
           "MonitoringHub", "ParslAlreadyImported", "ThreadPoolExecutor", "WorkQueueExecutor",
           "bash_app", "clear", "dfk", "install", "join_app", "load", "python_app",
           "set_file_logger", "set_stream_logger", "wait_for_current_tasks"]
