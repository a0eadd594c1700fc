"""Memoization: ``keys`` decides what makes two calls the same call and
looks results up; ``ids`` is what a value contributes to a key (the
``id_for_memo`` registry); ``checkpoints`` is the signed on-disk store
that keeps results across runs."""

from __future__ import annotations

from .ids import id_for_memo

__all__ = ["id_for_memo"]
