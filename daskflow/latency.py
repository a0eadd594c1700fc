"""Low latency for the clusters daskflow starts.

distributed batches the messages of its streams: the scheduler writes to a
worker at most once per 5 ms, a worker to the scheduler once per 2 ms, the
scheduler to a client once per 2 ms and a client to the scheduler once per
10 ms. Throughput hardly needs it (messages queued while a write is under
way still go out together), but a chain of dependent calls waits for it at
every hop: the next task is sent to the worker that holds its input, whose
stream wrote the previous task a moment ago. With ``daskflow.low-latency``
(on by default) the clusters daskflow starts write each stream as soon as
it can: a scheduler plugin sets the streams to workers and clients, a
worker plugin (which the scheduler hands to every worker that joins) the
workers' own, and ``tune_client`` the client's. See docs/performance.md,
"Latency of a hop".
"""

from __future__ import annotations

import contextlib
import logging

import dask
import distributed
from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin

from . import config  # noqa: F401  (config loads daskflow's defaults)
from .dask_internals import (after_client_stream_starts, client_to_scheduler_stream,
                             register_worker_plugin_here, scheduler_to_worker_stream,
                             set_stream_interval, worker_to_scheduler_stream)

logger = logging.getLogger("daskflow")

NAME = "daskflow-low-latency"
INTERVAL = 0.0  # seconds between a stream's writes (distributed: 2 to 10 ms)


@contextlib.contextmanager
def _or_batching(what: str):
    """Latency is a nicety: if distributed changed the internals it sets,
    say so and keep its batching rather than fail to start a cluster."""
    try:
        yield
    except Exception as exc:
        logger.warning("daskflow.low-latency: could not set %s (%r; distributed %s): it "
                       "keeps distributed's batching", what, exc, distributed.__version__)


def enabled() -> bool:
    """Whether ``daskflow.low-latency`` is on."""
    return bool(dask.config.get("daskflow.low-latency"))


class LowLatencyWorker(WorkerPlugin):
    """Sets the worker's stream to the scheduler to ``interval``."""

    name = NAME

    def __init__(self, interval: float = INTERVAL):
        self.interval = interval

    def setup(self, worker) -> None:
        with _or_batching("the worker's stream to the scheduler"):
            set_stream_interval(worker_to_scheduler_stream(worker), self.interval)


class LowLatency(SchedulerPlugin):
    """Sets the scheduler's streams to each worker and client that joins to
    ``interval``."""

    name = NAME

    def __init__(self, interval: float = INTERVAL):
        self.interval = interval

    async def start(self, scheduler) -> None:
        for address in list(scheduler.workers):  # any that joined already
            self.add_worker(scheduler, address)
        with _or_batching("the workers' streams to the scheduler"):
            await register_worker_plugin_here(scheduler, LowLatencyWorker(self.interval), NAME)

    def add_worker(self, scheduler, worker: str) -> None:
        with _or_batching("the scheduler's stream to a worker"):
            stream = scheduler_to_worker_stream(scheduler, worker)
            if stream is not None:
                set_stream_interval(stream, self.interval)

    def add_client(self, scheduler, client: str) -> None:
        with _or_batching("the scheduler's stream to a client"):
            after_client_stream_starts(scheduler, client, self._set)

    def _set(self, stream) -> None:
        with _or_batching("the scheduler's stream to a client"):
            set_stream_interval(stream, self.interval)


def scheduler_plugins() -> list[SchedulerPlugin]:
    """The plugins for ``Scheduler(plugins=...)`` of a cluster daskflow
    starts: none when ``daskflow.low-latency`` is off."""
    return [LowLatency()] if enabled() else []


async def install(scheduler) -> None:
    """Give a running scheduler daskflow started (in this process, on its
    event loop) the low-latency plugins, unless ``daskflow.low-latency`` is
    off."""
    for plugin in scheduler_plugins():
        scheduler.add_plugin(plugin, name=NAME, idempotent=True)
        await plugin.start(scheduler)


def tune_client(client) -> None:
    """Make a client of a cluster daskflow started write to its scheduler as
    soon as it can, unless ``daskflow.low-latency`` is off."""
    if not enabled():
        return
    with _or_batching("the client's stream to the scheduler"):
        stream = client_to_scheduler_stream(client)
        if stream is not None:
            set_stream_interval(stream, INTERVAL)
