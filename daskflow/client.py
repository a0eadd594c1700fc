"""The client side of a run: ``daskflow.Client``, the embedded local default,
and the per-client session (task ids, prefetch lines).

With no client, the first app call starts the embedded default: a
``LocalCluster`` of processes (one single-threaded worker per core) bound to
127.0.0.1, which becomes Dask's default client and is closed at exit. A
``distributed.Client`` the user made is used as it is.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import uuid
from collections import defaultdict, deque

import dask
import distributed
from distributed.worker import get_worker

from . import config  # noqa: F401  (loads daskflow's dask config defaults)
from .context import parent_task
from .futures import AppFuture, gather_values

logger = logging.getLogger("daskflow")

_start_lock = threading.Lock()


class Client(distributed.Client):
    """A ``distributed.Client`` that knows daskflow's pools.

    ``Client()`` with no address starts the local default (see the module
    docstring); any other arguments are those of ``distributed.Client``.

    Attributes
    ----------
    pools : list of str or None
        Labels of the worker pools apps may be pinned to with ``executors=``;
        None when connected to a scheduler daskflow did not start.
    """

    def __init__(self, address=None, *args, **kwargs):
        self.pools: list[str] | None = None
        if address is None and not kwargs.get("scheduler_file") and not args:
            local = dask.config.get("daskflow.local")
            kwargs.setdefault("n_workers", local["n-workers"])
            kwargs.setdefault("threads_per_worker", local["threads-per-worker"])
            kwargs.setdefault("processes", True)
            kwargs.setdefault("host", local["host"])
            kwargs.setdefault("dashboard_address", local["dashboard-address"])
            self.pools = ["local"]
        super().__init__(address, *args, **kwargs)

    def gather(self, futures, *args, **kwargs):
        """As ``distributed.Client.gather``; AppFutures give their own values
        (one per call of a chunked map) and raise as ``AppFuture.result``."""
        if isinstance(futures, (list, tuple)) and any(isinstance(f, AppFuture) for f in futures):
            if not kwargs and not args:
                return type(futures)(gather_values(futures))
        return super().gather(futures, *args, **kwargs)


class Session:
    """daskflow's state for one client: task ids and prefetch lines."""

    def __init__(self, client: distributed.Client):
        self.client = client
        self.token = uuid.uuid4().hex[:16]
        self.tids = itertools.count()
        self.lines: defaultdict[str, deque] = defaultdict(deque)
        self.has_chunks = False  # set once a chunked map ran: calls then look for members
        self.pools: list[str] | None = getattr(client, "pools", None)


def session_of(client: distributed.Client) -> Session:
    session = client.__dict__.get("_daskflow_session")
    if session is None:
        session = client._daskflow_session = Session(client)
    return session


def current() -> tuple[Session, int | str]:
    """The session an app call goes to, and the call's task id."""
    parent = parent_task()
    if parent is not None:  # inside a join app's body, on a worker
        session = session_of(distributed.get_client())
        return session, f"{parent[0]}.{next(parent[1])}"
    client = _default_client()
    session = client.__dict__.get("_daskflow_session") or session_of(client)
    return session, next(session.tids)


def _default_client() -> distributed.Client:
    try:
        return distributed.default_client()
    except ValueError:
        pass
    try:
        get_worker()
    except ValueError:
        return embedded()
    return distributed.get_client()  # an app called inside a task on a worker


def embedded() -> Client:
    """Start (once) the local default cluster and make it the default client."""
    with _start_lock:
        try:
            return distributed.default_client()
        except ValueError:
            pass
        client = Client(set_as_default=True)
        atexit.register(client.close)
        logger.info("daskflow started a local Dask cluster; dashboard: %s", client.dashboard_link)
        return client
