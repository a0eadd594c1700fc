"""``parsl.errors``: Parsl's base errors; ``ParslError`` is daskflow's base,
so ``except ParslError`` also catches the errors daskflow raises."""

from __future__ import annotations

from ..errors import DaskflowError as ParslError


class ConfigurationError(ParslError):
    """A Parsl configuration daskflow cannot run, or ``parsl.load`` called twice."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NoDataFlowKernelError(ParslError):
    """An app was called, or ``parsl.dfk()`` asked for, before ``parsl.load``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InternalConsistencyError(ParslError):
    """Parsl's name for a broken invariant."""


class OptionalModuleMissing(ParslError):
    """A component needs a module that is not installed."""

    def __init__(self, module_names, reason: str):
        super().__init__(list(module_names), reason)
        self.module_names, self.reason = list(module_names), reason

    def __str__(self) -> str:
        return (f"The functionality requested requires optional modules {self.module_names} "
                f"which could not be imported, because: {self.reason}")


class CompatibilityWarning(UserWarning):
    """Something of a Parsl script that daskflow accepts but does not use."""


__all__ = ["CompatibilityWarning", "ConfigurationError", "InternalConsistencyError",
           "NoDataFlowKernelError", "OptionalModuleMissing", "ParslError"]
