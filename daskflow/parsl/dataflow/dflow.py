"""The loaded configuration: ``parsl.load`` makes a ``DataFlowKernel``,
which owns the daskflow Client the configuration translates to (see
``translate``); Dask schedules, as for any daskflow run."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import warnings
from collections import defaultdict

import dask
import distributed

from ...client.session import Client, session_of
from ...errors import DependencyError
from ..config import Config
from ..errors import CompatibilityWarning, ConfigurationError, NoDataFlowKernelError
from ..importer import AliasOnWorkers, installed
from ..log_utils import set_file_logger
from ..translate import translate
from .memoization import memoizer_of
from .states import States

logger = logging.getLogger("daskflow")
task_log = logging.getLogger("parsl.dataflow.dflow")  #: Parsl's own records, see parsl.log


SWEEP_MIN = 1024  #: calls held before the first look for finished ones


class DataFlowKernel:
    """What ``parsl.load`` returns: the run's client and Parsl's executor labels.

    Parameters
    ----------
    config : Config, optional
        Parsl's configuration (default: ``Config()``, two threads' worth of workers).
    """

    def __init__(self, config: Config | None = None):
        if config is None:
            config = Config()
        if not isinstance(config, Config):
            raise TypeError(f"parsl.load takes a parsl.config.Config, got {type(config).__name__}")
        self.config = config
        self.memoizer = memoizer_of(config)
        plan = translate(config)
        if plan.unused:
            warnings.warn("daskflow does not use these options of the Parsl configuration: "
                          + ", ".join(plan.unused), CompatibilityWarning, stacklevel=3)
        self.labels = plan.labels
        self.executors = {e.label: e for e in config.executors}
        self._settings = dask.config.set(plan.settings)
        self.client = None
        try:
            if plan.profile is not None:
                from ...sites.profile import parse_profile

                profile = parse_profile(plan.profile, "parsl.load(config)", "parsl")
                self.client = Client(profile=profile, set_as_default=True)
            else:
                self.client = Client(**plan.local, set_as_default=True)
            if installed():
                self._alias_on_workers()
            self.session = session_of(self.client)
            self.memoizer.attach(self)
        except BaseException:
            if self.client is not None:
                self.client.close()
            self._settings.__exit__(None, None, None)
            raise
        self.run_dir = self.session.run_dir
        self.run_id = self.session.run_id
        self.cleanup_called = False
        # the future of each call not yet seen finished, in call order: held,
        # as Parsl holds its task records, so that a call whose future the
        # script drops still runs (Dask forgets tasks nobody holds)
        self._outstanding: list = []
        self._sweep_at = SWEEP_MIN
        self._table_lock = threading.Lock()  # calls may be made from several threads
        # no run directory when the run is not recorded (provenance off): no parsl.log
        self._stop_logging = _log_to(self.run_dir) \
            if config.initialize_logging and self.run_dir else None
        self._final_counts: defaultdict = defaultdict(int)
        atexit.register(self.atexit_cleanup)

    def _alias_on_workers(self) -> None:
        """``import parsl`` on the workers too, for the script's modules that
        import it; a worker that cannot take the plugin only loses that."""
        try:
            self.client.register_plugin(AliasOnWorkers())
        except Exception as exc:
            logger.warning("daskflow: 'import parsl' is not aliased on the workers (%s); "
                           "modules of the script that import parsl will not load there", exc)

    def pools_for(self, labels: list[str]) -> list[str]:
        """The pool labels of Parsl executor ``labels`` (an app's ``executors=``)."""
        unknown = [label for label in labels if label not in self.labels]
        if unknown:
            raise ValueError(f"executors={labels!r} names executor {unknown[0]!r}, which the "
                             f"loaded configuration lacks; it has: {', '.join(self.labels)}")
        return sorted({self.labels[label] for label in labels})

    def track(self, future) -> None:
        """Hold a call made through Parsl's decorators until it is seen
        finished (``tasks``, ``task_state_counts``). Finished calls are let go
        whenever the table doubles, so it stays near the calls still going,
        and a call costs one append."""
        with self._table_lock:
            outstanding = self._outstanding
            outstanding.append(future)
            if len(outstanding) >= self._sweep_at:
                self._sweep_held()
                self._sweep_at = max(SWEEP_MIN, 2 * len(self._outstanding))

    @property
    def tasks(self) -> dict:
        """Parsl's task table: a record (``id``, ``func_name``, ``app_fu``,
        ``status``) for each call not yet finished."""
        self._sweep()
        return {future.tid: {"id": future.tid, "func_name": future.app_name, "app_fu": future,
                             "status": States.launched}
                for future in list(self._outstanding)}

    @property
    def task_state_counts(self) -> dict:
        """How many calls ended in each final ``States``, and how many are
        still going (as ``launched``)."""
        self._sweep()
        counts = defaultdict(int, self._final_counts)
        counts[States.launched] = len(self._outstanding)
        return counts

    def _log_summary(self) -> None:
        """Parsl's summary at cleanup: how many calls ended in each state."""
        if not task_log.isEnabledFor(logging.INFO):
            return
        counts = self.task_state_counts
        task_log.info("Summary of tasks in DFK:")
        for state in States:
            if counts.get(state):
                task_log.info("Tasks in state %s: %d", state, counts[state])

    def _sweep(self) -> None:
        with self._table_lock:
            self._sweep_held()

    def _sweep_held(self) -> None:
        """Count the finished calls' final states and let go of them (with
        the table's lock held)."""
        going, counts = [], self._final_counts
        for future in self._outstanding:
            if future.done():
                counts[_final_state(future)] += 1
            else:
                going.append(future)
        self._outstanding = going

    def wait_for_current_tasks(self) -> None:
        """Wait until every call made so far has finished (also those whose
        futures the script dropped)."""
        client = self.client
        futures = [distributed.Future(key, client) for key in list(client.futures)]
        if futures:
            distributed.wait(futures)

    def checkpoint(self) -> str:
        """Write the results held back for the checkpoint (modes ``manual``,
        ``periodic``, ``dfk_exit``) now; returns the checkpoint directory."""
        self.memoizer.checkpoint()
        return self.memoizer.checkpoint_dir()

    def cleanup(self) -> None:
        """Close the client and its cluster (cached results are written first),
        and unload this kernel. Does not wait for running tasks, as in Parsl."""
        if self.cleanup_called:
            raise Exception("attempt to clean up DFK when it has already been cleaned-up")
        self.cleanup_called = True
        atexit.unregister(self.atexit_cleanup)
        self._log_summary()
        try:
            self.memoizer.close()  # its timer, and the final checkpoint
            self.client.close()
        finally:
            if self._stop_logging is not None:
                self._stop_logging()
            self._settings.__exit__(None, None, None)
            if DataFlowKernelLoader._dfk is self:
                DataFlowKernelLoader.clear()

    def atexit_cleanup(self) -> None:
        if not self.cleanup_called:
            self.cleanup()

    def __enter__(self) -> DataFlowKernel:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        mode = self.config.exit_mode
        if mode == "skip":
            return
        if mode == "wait" and exc_type is None:
            self.wait_for_current_tasks()
        self.cleanup()


def _log_to(run_dir: str):
    """Parsl's ``parsl.log`` in the run directory, at debug level, until the
    returned function is called (which also gives the logger back its level)."""
    parsl_logger = logging.getLogger("parsl")
    level = parsl_logger.level
    remove = set_file_logger(os.path.join(run_dir, "parsl.log"))

    def stop() -> None:
        remove()
        parsl_logger.setLevel(level)

    return stop


def _final_state(future) -> States:
    if future.status == "finished":
        return States.exec_done
    exc = future.exception() if future.status == "error" else None
    return States.dep_fail if isinstance(exc, DependencyError) else States.failed


class DataFlowKernelLoader:
    """Which kernel is loaded (one per process, as in Parsl)."""

    _dfk: DataFlowKernel | None = None
    _lock = threading.Lock()

    @classmethod
    def clear(cls) -> None:
        """Forget the loaded kernel, so that another configuration can be loaded."""
        cls._dfk = None

    @classmethod
    def load(cls, config: Config | None = None) -> DataFlowKernel:
        """Start what ``config`` describes and make it the current kernel."""
        with cls._lock:
            if cls._dfk is not None:
                raise ConfigurationError("Config has already been loaded")
            cls._dfk = DataFlowKernel(config)
            return cls._dfk

    @classmethod
    def dfk(cls) -> DataFlowKernel:
        """The loaded kernel; ``NoDataFlowKernelError`` before ``parsl.load``."""
        dfk = cls._dfk
        if dfk is None:
            raise NoDataFlowKernelError("Must first load config")
        return dfk

    @classmethod
    def wait_for_current_tasks(cls) -> None:
        cls.dfk().wait_for_current_tasks()


__all__ = ["DataFlowKernel", "DataFlowKernelLoader"]
