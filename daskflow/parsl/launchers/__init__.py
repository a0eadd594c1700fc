"""``parsl.launchers``: Parsl's launcher classes, read by ``parsl.load``
through ``daskflow.launchers.launcher_for_parsl`` (which refuses, saying
why, those daskflow has no row for)."""

from __future__ import annotations

from ..holders import Holder


class Launcher(Holder):
    """Parsl's ``Launcher`` base: ``debug`` is accepted and unused."""

    keywords = {"debug": True}


class SimpleLauncher(Launcher):
    pass


class SingleNodeLauncher(Launcher):
    keywords = {"debug": True, "fail_on_any": False}


class GnuParallelLauncher(Launcher):
    pass


class MpiExecLauncher(Launcher):
    keywords = {"debug": True, "bind_cmd": "--bind-to", "overrides": ""}


class MpiRunLauncher(Launcher):
    keywords = {"debug": True, "bash_location": "/bin/bash", "overrides": ""}


class SrunLauncher(Launcher):
    keywords = {"debug": True, "overrides": ""}


class SrunMPILauncher(Launcher):
    keywords = {"debug": True, "overrides": ""}


class AprunLauncher(Launcher):
    keywords = {"debug": True, "overrides": ""}


class JsrunLauncher(Launcher):
    keywords = {"debug": True, "overrides": ""}


class WrappedLauncher(Launcher):
    keywords = {"prepend": None, "debug": True}


__all__ = ["AprunLauncher", "GnuParallelLauncher", "JsrunLauncher", "MpiExecLauncher",
           "MpiRunLauncher", "SimpleLauncher", "SingleNodeLauncher", "SrunLauncher",
           "SrunMPILauncher", "WrappedLauncher"]
