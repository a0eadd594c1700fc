"""``parsl.dataflow.memoization``: Parsl's memoizer settings, on daskflow's
memo (look-ups on the workers, results in signed checkpoint stores).

``id_for_memo`` is daskflow's registry itself (``daskflow.memo.id_for_memo``),
so a type registered here counts by its id in every cached app's key. A
Parsl run keys by Parsl's rule: every argument needs an id (``ValueError``
otherwise, failing that call only).

Where results go: ``RUN_DIR/checkpoint`` (a checkpoint store) when a
``checkpoint_mode`` is set, else ``RUN_DIR/memo`` (this run's cache only,
which ``get_all_checkpoints`` does not list). ``checkpoint_files`` are
earlier runs' stores, read and never written; by default, with a mode set,
those of every run under the Config's ``run_dir``. Entries are signed with
the user's key, so a store someone else wrote into is never unpickled.

``task_exit`` results are written by the worker as each call ends; the
other modes hold them back on the workers until ``checkpoint()``, each
``checkpoint_period`` (a timer here, which logs each pass as Parsl does),
or the kernel's cleanup.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Sequence

from ...memo.ids import Rule, id_for_memo
from ..errors import ConfigurationError

logger = logging.getLogger("parsl.dataflow.memoization")  # Parsl's name: parsl.log has it

#: Parsl's checkpoint modes -> daskflow's (``dfk_exit`` was ``dag_exit`` in older Parsl);
#: ``periodic`` holds results back on the workers and this memoizer's timer writes them
MODES = {"task_exit": "task_exit", "periodic": "manual", "dfk_exit": "dag_exit",
         "dag_exit": "dag_exit", "manual": "manual"}
#: the methods a Parsl memoizer may override; daskflow calls none of them per task
PARSL_HOOKS = ("check_memo", "update_memo_result", "update_memo_exception", "start", "close")


class Memoizer:
    """Parsl's memoizer interface. daskflow looks results up and stores them
    in the task on the worker, so only ``BasicMemoizer``'s settings are used."""

    def start(self, *, run_dir: str, config_run_dir: str) -> None:
        raise NotImplementedError

    def check_memo(self, task: Any):
        raise NotImplementedError

    def update_memo_result(self, task: Any, r: Any) -> None:
        raise NotImplementedError

    def update_memo_exception(self, task: Any, e: BaseException) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class BasicMemoizer(Memoizer):
    """Parsl's memoizer: which results are kept, where, and which are reused.

    Parameters
    ----------
    checkpoint_files : sequence of str, optional
        Checkpoint directories of earlier runs to reuse (see
        ``parsl.utils.get_all_checkpoints``/``get_last_checkpoint``).
        Default: with a mode, every checkpoint under the Config's ``run_dir``.
    checkpoint_period : str, optional
        ``"HH:MM:SS"``, for ``checkpoint_mode="periodic"``.
    checkpoint_mode : {"task_exit", "periodic", "dfk_exit", "manual"}, optional
        When results are written to ``RUN_DIR/checkpoint``; None: not at all.
    memoize : bool
        False: no app is cached (``cache=True`` is ignored).
    """

    def __init__(self, *, checkpoint_files: Sequence[str] | None = None,
                 checkpoint_period: str | None = None, checkpoint_mode: str | None = None,
                 memoize: bool = True):
        if checkpoint_mode is not None and checkpoint_mode not in MODES:
            raise ConfigurationError(f"BasicMemoizer(checkpoint_mode={checkpoint_mode!r}): "
                                     "expected 'task_exit', 'periodic', 'dfk_exit', 'manual' "
                                     "or None")
        if checkpoint_files is not None and (isinstance(checkpoint_files, (str, bytes)) or not all(
                isinstance(f, (str, os.PathLike)) for f in checkpoint_files)):
            raise TypeError("BasicMemoizer(checkpoint_files=...) takes a list of checkpoint "
                            f"directories, got {checkpoint_files!r}")
        self.checkpoint_files = checkpoint_files
        self.checkpoint_period = checkpoint_period
        self.checkpoint_mode = checkpoint_mode
        self.memoize = memoize
        self.checkpointed_tasks = 0
        self.run_dir: str | None = None
        self.config_run_dir: str | None = None
        self._dfk = None
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def __repr__(self) -> str:
        return (f"BasicMemoizer(checkpoint_files={self.checkpoint_files!r}, "
                f"checkpoint_period={self.checkpoint_period!r}, "
                f"checkpoint_mode={self.checkpoint_mode!r}, memoize={self.memoize!r})")

    def period_seconds(self) -> float:
        """``checkpoint_period`` in seconds (``ConfigurationError`` as in Parsl)."""
        if self.checkpoint_period is None:
            raise ConfigurationError("Checkpoint period must be specified with periodic "
                                     "checkpoint mode")
        try:
            h, m, s = map(int, str(self.checkpoint_period).split(":"))
        except ValueError:
            raise ConfigurationError(f"invalid checkpoint_period provided: "
                                     f"{self.checkpoint_period} expected HH:MM:SS") from None
        seconds = h * 3600 + m * 60 + s
        if seconds <= 0:
            raise ConfigurationError(f"invalid checkpoint_period provided: "
                                     f"{self.checkpoint_period}: expected a positive period")
        return float(seconds)

    def check(self) -> None:
        """Refuse what daskflow would silently not do (at ``parsl.load``)."""
        overridden = [name for name in PARSL_HOOKS
                      if getattr(type(self), name) is not getattr(BasicMemoizer, name)]
        if overridden:
            raise ConfigurationError(
                f"{type(self).__name__} overrides {', '.join(overridden)}: daskflow looks "
                "results up and stores them on the workers and never calls a memoizer's "
                "methods; use BasicMemoizer's settings, ignore_for_cache, or cache=False "
                "on the apps to leave out")
        if self.checkpoint_mode == "periodic":
            self.period_seconds()

    def start(self, *, run_dir: str, config_run_dir: str) -> None:
        """Note the run's directory and the Config's ``run_dir``."""
        self.run_dir = os.path.abspath(run_dir)
        self.config_run_dir = os.path.abspath(config_run_dir)

    def settings(self, app_cache: bool = True) -> dict:
        """The run settings (``RunSettings`` fields) of this memoizer, once
        started; ``app_cache=False`` (the Config's) turns caching off too."""
        from ..utils import get_all_checkpoints

        if self.run_dir is None:
            raise RuntimeError("BasicMemoizer.settings() before start()")
        if not (self.memoize and app_cache):
            return {"memo": Rule("off"), "checkpoint": None, "reuse": ()}
        if self.checkpoint_files is not None:
            reuse = [os.path.abspath(os.fspath(f)) for f in self.checkpoint_files]
        elif self.checkpoint_mode is not None:
            reuse = list(get_all_checkpoints(self.config_run_dir))
        else:
            reuse = []
        for path in reuse:
            if not os.path.isdir(path):
                logger.warning("checkpoint directory %s does not exist (yet); its results "
                               "will be computed", path)
        settings = {"memo": Rule("parsl"), "reuse": tuple(reuse)}
        if self.checkpoint_mode is None:
            settings.update(checkpoint=os.path.join(self.run_dir, "memo"),
                            checkpoint_mode="task_exit")
        else:
            settings.update(checkpoint=self.checkpoint_dir(),
                            checkpoint_mode=MODES[self.checkpoint_mode])
        return settings

    def checkpoint_dir(self) -> str:
        """Where this run's checkpoint is written (``RUN_DIR/checkpoint``)."""
        return os.path.join(self.run_dir or "", "checkpoint")

    def attach(self, dfk) -> None:
        """Start on ``dfk``'s run (its session's settings), before its first app call."""
        from ... import signing

        run, run_dir = dfk.session.run, dfk.session.run_dir
        enabled = dfk.config.app_cache is not False
        if run_dir is None:  # provenance is off: daskflow made no run directory
            if self.checkpoint_mode is None and not self.checkpoint_files:
                # no store: identical calls share one task while one is held
                run.memo, run.checkpoint, run.reuse = Rule("parsl" if self.memoize and enabled
                                                           else "off"), None, ()
                self._dfk = dfk
                return
            from ...provenance.store import new_run_dir

            run_dir = new_run_dir(os.path.abspath(dfk.config.run_dir))[1]  # for the checkpoint
        self.start(run_dir=run_dir, config_run_dir=dfk.config.run_dir)
        for name, value in self.settings(enabled).items():
            setattr(run, name, value)
        if run.checkpoint is not None and run.checkpoint_key is None:
            run.checkpoint_key = signing.checkpoint_key()
        self._dfk = dfk
        if self.checkpoint_mode == "periodic" and run.memo != "off":
            self._timer = threading.Thread(target=self._every, args=(self.period_seconds(),),
                                           name="parsl-checkpoint", daemon=True)
            self._timer.start()

    def _every(self, period: float) -> None:
        """Parsl's periodic checkpoint: write what the workers hold back, each period."""
        while not self._stop.wait(period):
            try:
                self.write()
            except Exception as exc:  # e.g. the client closing meanwhile
                if not self._stop.is_set():
                    logger.warning("periodic checkpoint failed (%s: %s); trying again in %s s",
                                   type(exc).__name__, exc, period)

    def close(self) -> None:
        """At the kernel's cleanup: stop the timer and make the final checkpoint
        (never raises: the kernel's cleanup goes on)."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        if self.checkpoint_mode is not None and self.run_dir is not None \
                and self._dfk is not None and self._dfk.session.run.memo != "off":
            logger.info("Making final checkpoint")
            try:
                self.write()
            except Exception as exc:  # the client's close tries once more
                logger.warning("the final checkpoint failed (%s: %s)", type(exc).__name__, exc)

    def checkpoint(self) -> None:
        """Write the results the workers hold back (``manual``, ``periodic``,
        ``dfk_exit``) to the run's checkpoint now."""
        self.write()

    def write(self) -> int:
        """Like ``checkpoint``; returns how many results were written."""
        from ...client.session import checkpoint

        if self._dfk is None or self._dfk.client.status != "running":
            raise RuntimeError("this memoizer belongs to no loaded configuration")
        if self.checkpoint_mode is None:
            return 0
        written = checkpoint(self._dfk.client)
        self.checkpointed_tasks += written
        if written:
            logger.info("Done checkpointing %d tasks", written)
        else:
            logger.info("No tasks checkpointed in this pass")
        return written


def memoizer_of(config) -> BasicMemoizer:
    """The memoizer of a Config: ``memoizer=``, or one made of the keywords
    of older Parsl releases (``app_cache``, ``checkpoint_*``)."""
    legacy = {k: v for k, v in config.changed().items()
              if k in ("checkpoint_files", "checkpoint_mode", "checkpoint_period")}
    memoizer = config.memoizer
    if memoizer is None:
        memoizer = BasicMemoizer(**legacy)
    elif legacy:
        raise ConfigurationError(f"Config(memoizer=...) and Config({', '.join(legacy)}=...) "
                                 "both given: set the checkpoint options on the memoizer")
    elif not isinstance(memoizer, BasicMemoizer):
        raise ConfigurationError(f"Config(memoizer={type(memoizer).__name__}(...)): daskflow "
                                 "takes a BasicMemoizer; memoization runs on its workers")
    memoizer.check()
    return memoizer


__all__ = ["BasicMemoizer", "Memoizer", "id_for_memo", "memoizer_of"]
