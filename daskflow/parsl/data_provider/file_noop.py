"""``parsl.data_provider.file_noop``: ``file://`` Files are used where they are."""

from __future__ import annotations

from ..utils import RepresentationMixin
from .staging import Staging

__all__ = ["NoOpFileStaging"]


class NoOpFileStaging(Staging, RepresentationMixin):
    """Local Files: not moved (the worker must see the path, as in Parsl)."""

    schemes = ("file",)
