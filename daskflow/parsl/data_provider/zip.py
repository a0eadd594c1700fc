"""``parsl.data_provider.zip``: members of zip archives (``zip:`` URLs),
staged by daskflow's zip mover (``daskflow.staging.zipfiles``), which locks
the archive as Parsl's provider does, so both can share one."""

from __future__ import annotations

from ...staging.zipfiles import ZipAuthorityError, split
from ..utils import RepresentationMixin
from .staging import Staging

__all__ = ["ZipAuthorityError", "ZipFileStaging", "zip_path_split"]


class ZipFileStaging(Staging, RepresentationMixin):
    """``zip:/path/archive.zip/member`` inputs and outputs.

    A URL with a host part (``zip://host/...``) is refused when the app is
    called, with ``ZipAuthorityError``.
    """

    schemes = ("zip",)


def zip_path_split(path: str) -> tuple[str, str]:
    """A ``zip:`` path as (archive, member), split at the first ``.zip/``."""
    return split(path)
