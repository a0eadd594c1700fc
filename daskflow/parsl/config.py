"""``parsl.config.Config``: Parsl's keywords (today's and those older
releases took), checked as Parsl checks them; ``parsl.load`` translates it."""

from __future__ import annotations

from .errors import ConfigurationError
from .executors import ThreadPoolExecutor
from .holders import Holder

EXIT_MODES = ("cleanup", "skip", "wait")


class Config(Holder):
    """A Parsl configuration: executors (at least one, unique labels) and run options."""

    keywords = {"executors": None, "memoizer": None, "dependency_resolver": None,
                "exit_mode": "cleanup", "garbage_collect": True,
                "internal_tasks_max_threads": 10, "retries": 0, "retry_handler": None,
                "run_dir": "runinfo", "std_autopath": None, "strategy": "simple",
                "strategy_period": 5, "max_idletime": 120.0, "monitoring": None,
                "usage_tracking": 0, "project_name": None, "initialize_logging": True}
    legacy = {"app_cache": True, "checkpoint_files": None, "checkpoint_mode": None,
              "checkpoint_period": None}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.executors = tuple(self.executors or ()) or (ThreadPoolExecutor(),)
        labels = [e.label for e in self.executors]
        duplicates = [label for n, label in enumerate(labels) if label in labels[:n]]
        if duplicates:
            raise ConfigurationError("Executors must have unique labels ({})".format(
                ", ".join(f"label={d!r}" for d in duplicates)))
        if self.exit_mode not in EXIT_MODES:  # a type error in Parsl (a Literal's check)
            raise TypeError(f"Config(exit_mode={self.exit_mode!r}): expected one of "
                            f"{', '.join(EXIT_MODES)}")
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) \
                or self.retries < 0:
            raise ConfigurationError(f"Config(retries={self.retries!r}): expected an int >= 0")


__all__ = ["Config"]
