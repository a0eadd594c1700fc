"""``parsl.serialize.errors``: ``SerializationError`` is daskflow's
``UnpicklableArgument`` (an argument that cannot be shipped to a worker)."""

from __future__ import annotations

from ...errors import UnpicklableArgument as SerializationError
from ..errors import ParslError


class DeserializationError(ParslError):
    """A value could not be loaded where it arrived."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"Failed to deserialize objects. Reason: {self.reason}"


__all__ = ["DeserializationError", "SerializationError"]
