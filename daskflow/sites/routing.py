"""Data crossing pools that cannot reach each other.

Dask workers fetch a task's inputs straight from the workers that hold them.
When a profile says a pool's workers can be reached only from some pools
(``reachable_from``), an input produced on it and needed on a pool that
cannot reach it is *relayed*: a small task pinned to the consumer's pools
pulls the value through the scheduler (which every worker can reach) and
the consumer reads that copy, inside its own pool.

Where a value was produced is known from the producing app's ``executors``
(an unpinned app or a plain future may have run on any pool). Relays are
made at call time, once per (value, consumer pools); a relay waits for its
value in a seceded thread, so it holds no worker slot while it waits.
"""

from __future__ import annotations

from distributed import Future

from ..errors import UnroutableCall
from ..pool_resources import resource_name, task_resources

RELAY_PREFIX = "daskflow-relay-"


class Reach:
    """Which pools' workers may fetch data from which, from the profile."""

    def __init__(self, pools):
        self.labels = [p.label for p in pools]
        self.readers = {p.label: set(self.labels) if p.reachable_from == "all"
                        else {p.label, *p.reachable_from} for p in pools}

    @classmethod
    def of(cls, profile) -> Reach | None:
        """The profile's reach, or None when every pool reaches every other."""
        if profile is None or all(p.reachable_from == "all" for p in profile.pools):
            return None
        return cls(profile.pools)

    def _pools(self, executors) -> list[str]:
        return self.labels if executors == "all" else list(executors)

    def crosses(self, producers, consumers) -> bool:
        """Whether data made on ``producers`` may be needed where some consumer cannot fetch it."""
        return any(c not in self.readers[p] for p in self._pools(producers)
                   for c in self._pools(consumers))

    def mutual(self, executors) -> bool:
        """Whether the pools ``executors`` all reach each other."""
        pools = self._pools(executors)
        return all(c in self.readers[p] for p in pools for c in pools)


def route(session, app_name: str, executors, args: tuple,
          kwargs: dict) -> tuple[tuple, dict, list[Future]]:
    """``args``/``kwargs`` with every future that crosses unreachable pools
    replaced by its relay to ``executors``, and the relays made.

    The caller keeps the relays with the consumer's future: a relay names
    its value by key only, so it holds that value's future to keep it alive."""
    reach: Reach = session.reach
    relays: list[Future] = []

    def swap(obj):
        if isinstance(obj, Future):
            producers = getattr(obj, "pools", "all")
            if not reach.crosses(producers, executors):
                return obj
            if not reach.mutual(executors):
                raise UnroutableCall(app_name, getattr(obj, "app_name", obj.key),
                                     reach._pools(executors))
            relays.append(relay_future(session.client, obj, executors, reach.labels))
            return relays[-1]
        if isinstance(obj, (list, tuple)):
            return type(obj)(swap(o) for o in obj)
        if isinstance(obj, dict):
            return {k: swap(v) for k, v in obj.items()}
        return obj

    return swap(args), swap(kwargs), relays


def relay_future(client, future: Future, executors, labels) -> Future:
    """The relay of ``future``'s value to the pools ``executors`` (one per pair)."""
    key = f"{RELAY_PREFIX}{resource_name(executors)}-{future.key}"
    relay_copy = client.submit(relay, future.key, key=key, pure=False,
                               resources=task_resources(executors, labels))
    relay_copy.pools = executors
    relay_copy.upstream = future  # keeps the value alive until the relay is dropped
    return relay_copy


def upstream_key(key: str) -> str:
    """The key a relay copies (``key`` itself if it is not a relay)."""
    if isinstance(key, str) and key.startswith(RELAY_PREFIX):
        return key[len(RELAY_PREFIX):].split("-", 1)[1]
    return key


def relay(key: str):
    """Task body: the value of task ``key``, fetched through the scheduler."""
    from distributed import get_client, rejoin, secede

    from ..dask_internals import future_of_key

    client = get_client()
    future = future_of_key(client, key)  # the scheduler tells this client about it
    secede()
    try:
        return client.gather(future, direct=False)
    finally:
        rejoin()
