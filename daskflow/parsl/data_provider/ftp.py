"""``parsl.data_provider.ftp``: FTP Files, moved by daskflow's fsspec mover
in the task body (both of Parsl's variants behave alike)."""

from __future__ import annotations

from ..utils import RepresentationMixin
from .staging import Staging

__all__ = ["FTPInTaskStaging", "FTPSeparateTaskStaging"]


class FTPSeparateTaskStaging(Staging, RepresentationMixin):
    """``ftp://`` inputs (Parsl: a separate staging task); daskflow also
    uploads ``ftp://`` outputs."""

    schemes = ("ftp",)


class FTPInTaskStaging(FTPSeparateTaskStaging):
    """``ftp://`` inputs, fetched in the app's task."""
