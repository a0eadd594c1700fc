"""``parsl.app.errors``: Parsl's app errors; those daskflow raises are its
own classes under Parsl's names, so ``except BashExitFailure`` catches them."""

from __future__ import annotations

from ...errors import AppError as AppException
from ...errors import AppTimeout, BashExitFailure, MissingOutputs
from ...errors import BadCommand as BashAppNoReturn
from ..errors import ParslError


class AppBadFormatting(ParslError):
    """Parsl's error for a bash app's command that could not be formatted."""


class BadStdStreamFile(ParslError):
    """Parsl's error for an invalid ``stdout``/``stderr`` specification."""

    def __str__(self) -> str:
        return f"Bad Stream File: {self.args[0] if self.args else ''}"


__all__ = ["AppBadFormatting", "AppException", "AppTimeout", "BadStdStreamFile",
           "BashAppNoReturn", "BashExitFailure", "MissingOutputs", "ParslError"]
