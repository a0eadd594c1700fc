"""``parsl.data_provider.http``: HTTP(S) Files, fetched by daskflow's fsspec
mover in the task body (so both of Parsl's variants behave alike: in the
task, and read-only, as Parsl's)."""

from __future__ import annotations

from ..utils import RepresentationMixin
from .staging import Staging

__all__ = ["HTTPInTaskStaging", "HTTPSeparateTaskStaging"]


class HTTPSeparateTaskStaging(Staging, RepresentationMixin):
    """``http://`` and ``https://`` inputs (Parsl: a separate staging task)."""

    schemes = ("http", "https")

    def can_stage_out(self, file) -> bool:
        return False  # as Parsl's: HTTP is read-only


class HTTPInTaskStaging(HTTPSeparateTaskStaging):
    """``http://`` and ``https://`` inputs, fetched in the app's task."""
