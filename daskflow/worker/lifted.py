"""The bodies of lifted operators (``future[key]``, ``future.name``):
plain functions, so that their calls are ordinary app calls."""

from __future__ import annotations

from typing import Any


def deferred_getitem(value: Any, key: Any) -> Any:
    """``value[key]``."""
    return value[key]


def deferred_getattr(value: Any, name: str) -> Any:
    """``getattr(value, name)``."""
    return getattr(value, name)
