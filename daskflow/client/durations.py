"""What the client knows of how long each app's calls take.

Workers report it as Dask events (``worker.durations``); this keeps one
estimate per app, which quickly follows calls that grow longer and slowly
those that grow shorter, so a chunk sized for short calls is not filled
with long ones for long. A *cold* report (a process's first calls of the
app, which paid its one-time costs) stands only until a warm one comes,
which replaces it, and is ignored once a warm one came (a worker that
joins later). ``capacity`` turns the estimate into the most calls of the
app one chunk task may hold.
"""

from __future__ import annotations

from ..worker.durations import TOPIC

RISE_ONLY = 0.8  # weight of the old estimate when calls grow shorter


class Durations:
    """Seconds per call of each app of one run, as the workers report them."""

    def __init__(self, token: str, chunk_seconds: float, max_calls: int):
        self.token = token
        self.chunk_seconds = chunk_seconds
        self.max_calls = max_calls
        self.seconds: dict[str, float] = {}
        self.cold: set[str] = set()  # apps whose estimate is a cold report's

    def listen(self, client) -> None:
        """Take the workers' reports (``client.subscribe_topic``)."""
        client.subscribe_topic(TOPIC, self._event)

    def stop(self, client) -> None:
        """Stop taking reports, before the client closes (the scheduler would
        otherwise try to send them to a closed client, and log it)."""
        try:
            client.unsubscribe_topic(TOPIC)
        except ValueError:  # never subscribed
            pass

    def _event(self, event) -> None:
        _, message = event
        if not isinstance(message, dict) or message.get("run") != self.token:
            return  # another client's run
        calls = message.get("calls") or 0
        if calls > 0:
            self.note(message["app"], message["seconds"] / calls, bool(message.get("cold")))

    def note(self, app: str, mean: float, cold: bool = False) -> None:
        """Count a mean of ``mean`` seconds per call for ``app`` (``cold``:
        from a process's first calls of it)."""
        old = self.seconds.get(app)
        if cold and old is not None and app not in self.cold:
            return  # a warm estimate is known: a late worker's warm-up says nothing new
        if old is None or app in self.cold and not cold:
            self.seconds[app] = mean  # the first, or the first warm one
        elif mean >= old:
            self.seconds[app] = mean
        else:
            self.seconds[app] = RISE_ONLY * old + (1 - RISE_ONLY) * mean
        if cold:
            self.cold.add(app)
        else:
            self.cold.discard(app)

    def capacity(self, app: str) -> int:
        """How many calls of ``app`` one chunk may hold: 0 while nothing is
        known of it, else as many as fill ``chunk_seconds`` (at most
        ``max_calls``; 1: its calls are too long to pack)."""
        seconds = self.seconds.get(app)
        if seconds is None:
            return 0
        if seconds <= 0:
            return self.max_calls
        return max(1, min(self.max_calls, int(self.chunk_seconds / seconds)))
