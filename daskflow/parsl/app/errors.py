"""``parsl.app.errors``: Parsl's app errors; those daskflow raises are its
own classes under Parsl's names, so ``except BashExitFailure`` catches them."""

from __future__ import annotations

from ...errors import AppError as AppException
from ...errors import AppTimeout
from ...errors import BadCommand as BashAppNoReturn
from ...errors import BadStdStream as BadStdStreamFile
from ...errors import BashExitFailure, MissingOutputs
from ..errors import ParslError


class AppBadFormatting(ParslError):
    """Parsl's error for a bash app's command that could not be formatted."""


__all__ = ["AppBadFormatting", "AppException", "AppTimeout", "BadStdStreamFile",
           "BashAppNoReturn", "BashExitFailure", "MissingOutputs", "ParslError"]
