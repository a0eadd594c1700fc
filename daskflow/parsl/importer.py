"""``import parsl`` resolving to ``daskflow.parsl``: a meta path finder that
answers for ``parsl`` and every ``parsl.*`` with the module of the same
name under ``daskflow.parsl``, so ``parsl.app.app is daskflow.parsl.app.app``
and a Parsl script runs with no edit."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import logging
import sys

from distributed.diagnostics.plugin import WorkerPlugin

logger = logging.getLogger("daskflow")
PREFIX = "parsl"
TARGET = __name__.rpartition(".")[0]  # daskflow.parsl


class ParslAlreadyImported(ImportError):
    """The real Parsl is imported in this process: ``parsl`` cannot also be daskflow's."""


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``parsl[.x]`` as ``daskflow.parsl[.x]``, the very module object."""

    def __init__(self):
        self._specs: dict = {}  # alias -> the module's own spec, while it is imported

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PREFIX and not fullname.startswith(PREFIX + "."):
            return None
        real = TARGET + fullname[len(PREFIX):]
        if importlib.util.find_spec(real) is None:
            return None  # ModuleNotFoundError names parsl.x, as with Parsl
        return importlib.util.spec_from_loader(fullname, self, is_package=None)

    def create_module(self, spec):
        module = importlib.import_module(TARGET + spec.name[len(PREFIX):])
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        # the import system set the alias's spec on the module: give it back its own
        module.__spec__ = self._specs.pop(module.__spec__.name, module.__spec__)


_FINDER = _Alias()


def install() -> None:
    """Make ``import parsl`` (and ``from parsl.x import y``) give ``daskflow.parsl``.

    Raises
    ------
    ParslAlreadyImported
        The real Parsl is already imported in this process.
    """
    loaded = sys.modules.get(PREFIX)
    if loaded is not None and loaded is not sys.modules[TARGET]:
        where = getattr(loaded, "__file__", None) or repr(loaded)
        raise ParslAlreadyImported(
            f"the real Parsl is already imported in this process (from {where}), so "
            "'import parsl' cannot give daskflow.parsl; install daskflow's before anything "
            "imports parsl (python -m daskflow.parsl script.py, daskflow run --parsl, or "
            "daskflow.parsl.install() first in a notebook), or restart the kernel")
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def installed() -> bool:
    """Whether ``import parsl`` gives daskflow's."""
    return _FINDER in sys.meta_path





class AliasOnWorkers(WorkerPlugin):
    """``import parsl`` gives ``daskflow.parsl`` on the workers too, where
    app functions from the script's own modules (pickled by reference,
    imported there) may ``import parsl``."""

    name = "daskflow-parsl-alias"

    def setup(self, worker) -> None:
        try:
            install()
        except ParslAlreadyImported as exc:  # the worker's own Parsl: say so there
            logger.warning("worker %s: %s", worker.name, exc)


__all__ = ["AliasOnWorkers", "ParslAlreadyImported", "install", "installed"]
