"""``parsl.data_provider.globus``: Globus Files, moved by daskflow's Globus
mover; ``GlobusStaging``'s endpoint becomes its ``local-endpoint`` setting."""

from __future__ import annotations

from ..utils import RepresentationMixin
from .staging import Staging

__all__ = ["GlobusStaging"]


class GlobusStaging(Staging, RepresentationMixin):
    """``globus://`` Files through the node's endpoint.

    Parameters
    ----------
    endpoint_uuid : str
        The collection that exposes the workers' directory
        (``daskflow.staging.globus.local-endpoint``).
    endpoint_path : str, optional
        That directory as the collection names it (``endpoint-path``).
    local_path : str, optional
        That directory on the workers (``local-path``).
    """

    schemes = ("globus",)

    def __init__(self, endpoint_uuid: str, endpoint_path: str | None = None,
                 local_path: str | None = None):
        self.endpoint_uuid = endpoint_uuid
        self.endpoint_path = endpoint_path
        self.local_path = local_path

    def settings(self) -> dict:
        """The ``daskflow.staging.globus`` settings this provider stands for."""
        given = {"local-endpoint": self.endpoint_uuid, "endpoint-path": self.endpoint_path,
                 "local-path": self.local_path}
        return {f"daskflow.staging.globus.{k}": v for k, v in given.items() if v is not None}
