"""``parsl.data_provider.rsync``: Parsl's rsync provider, which daskflow
does not run (``parsl.load`` refuses it, saying what to use instead)."""

from __future__ import annotations

from ..utils import RepresentationMixin
from .staging import Staging

__all__ = ["RSyncStaging"]


class RSyncStaging(Staging, RepresentationMixin):
    """Files copied with rsync from ``hostname``: refused by ``parsl.load``."""

    refusal = ("daskflow has no rsync mover: name the files as sftp://HOST/path URLs "
               "(staged by fsspec's sftp file system; settings in daskflow.staging.sftp)")

    def __init__(self, hostname: str):
        self.hostname = hostname
