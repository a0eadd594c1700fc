"""The loaded configuration: ``parsl.load`` makes a ``DataFlowKernel``,
which owns the daskflow Client the configuration translates to (see
``translate``); Dask schedules, as for any daskflow run."""

from __future__ import annotations

import atexit
import logging
import threading
import warnings

import dask
import distributed

from ...client.session import Client, session_of
from ..config import Config
from ..errors import CompatibilityWarning, ConfigurationError, NoDataFlowKernelError
from ..importer import AliasOnWorkers, installed
from ..translate import translate
from .memoization import memoizer_of

logger = logging.getLogger("daskflow")


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

    def wait_for_current_tasks(self) -> None:
        """Wait until every future this run's client holds has finished."""
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
        try:
            self.client.close()
        finally:
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
