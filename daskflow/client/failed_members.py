"""Failed calls of finished chunks, as the workers tell them
(``worker.failed_members``): a chunk member's ``status`` reads "error"
(and ``cancelled()`` is True for a cancelled one)."""

from __future__ import annotations

import weakref

from ..worker.failed_members import TOPIC


class FailedMembers:
    """The chunk futures of one run, marked with their failed calls."""

    def __init__(self, token: str):
        self.token = token
        self.chunks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    def listen(self, client) -> None:
        client.subscribe_topic(TOPIC, self._event)

    def stop(self, client) -> None:
        try:
            client.unsubscribe_topic(TOPIC)
        except ValueError:  # never subscribed
            pass

    def track(self, chunk) -> None:
        """Follow ``chunk`` (a ChunkFuture) while anything holds it."""
        self.chunks[chunk.key] = chunk

    def _event(self, event) -> None:
        _, message = event
        if not isinstance(message, dict) or message.get("run") != self.token:
            return
        chunk = self.chunks.get(message.get("chunk"))
        if chunk is not None:
            chunk._failed = frozenset(message.get("failed") or ())
            chunk._cancelled = frozenset(message.get("cancelled") or ())
