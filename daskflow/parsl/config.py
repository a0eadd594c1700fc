"""``parsl.config.Config``: Parsl's keywords (today's and those older
releases took), checked as Parsl checks them; ``parsl.load`` translates it."""

from __future__ import annotations

from .errors import ConfigurationError
from .executors import ParslExecutor, ThreadPoolExecutor
from .holders import Holder

EXIT_MODES = ("cleanup", "skip", "wait")


class TypeCheckError(ConfigurationError, TypeError):
    """A Config keyword of the wrong type or value: Parsl's type checks raise
    typeguard's ``TypeCheckError``, which Parsl's tests recognise by name."""


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
        strangers = [e for e in self.executors if not isinstance(e, ParslExecutor)]
        if strangers:
            raise TypeCheckError(f"Config(executors=[..., {strangers[0]!r}, ...]): expected "
                                 "Parsl executors (parsl.executors), got "
                                 f"{type(strangers[0]).__name__}")
        labels = [e.label for e in self.executors]
        duplicates = [label for n, label in enumerate(labels) if label in labels[:n]]
        if duplicates:
            raise ConfigurationError("Executors must have unique labels ({})".format(
                ", ".join(f"label={d!r}" for d in duplicates)))
        if self.exit_mode not in EXIT_MODES:
            raise TypeCheckError(f"Config(exit_mode={self.exit_mode!r}): expected one of "
                                 f"{', '.join(EXIT_MODES)}")
        self._check_usage_tracking()
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) \
                or self.retries < 0:
            raise ConfigurationError(f"Config(retries={self.retries!r}): expected an int >= 0")


    def _check_usage_tracking(self) -> None:
        """daskflow tracks no usage, but checks the values as Parsl does."""
        level, name = self.usage_tracking, self.project_name
        if not isinstance(level, int):
            raise TypeCheckError(f"Config(usage_tracking={level!r}): expected an int")
        if not 0 <= level <= 3:
            raise ConfigurationError(f"Config(usage_tracking={level!r}): expected 0, 1, 2 or 3")
        if name is not None and not isinstance(name, str):
            raise TypeCheckError(f"Config(project_name={name!r}): expected a string or None")


__all__ = ["Config", "TypeCheckError"]
