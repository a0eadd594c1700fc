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
from collections import defaultdict

import dask
import distributed
from distributed.worker import get_worker

from . import config  # noqa: F401  (loads daskflow's dask config defaults)
from .context import parent_task
from .futures import AppFuture, Line, gather_values

logger = logging.getLogger("daskflow")

_start_lock = threading.Lock()

LOCAL_SETTINGS = {  # LocalCluster argument: key under daskflow.local
    "n_workers": "n-workers",
    "threads_per_worker": "threads-per-worker",
    "host": "host",
    "dashboard_address": "dashboard-address",
}


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
            # One get per key: dask.config.get accepts either spelling of a
            # key (a DASK_DASKFLOW__LOCAL__N_WORKERS variable sets n_workers).
            for arg, key in LOCAL_SETTINGS.items():
                kwargs.setdefault(arg, dask.config.get(f"daskflow.local.{key}"))
            kwargs.setdefault("processes", True)
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
        self.lines: defaultdict[str, Line] = defaultdict(Line)
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
        return session_of(distributed.get_client()), f"{parent[0]}.{next(parent[1])}"
    client = _default_client()
    session = client.__dict__.get("_daskflow_session") or session_of(client)
    return session, next(session.tids)


def next_tids(n: int) -> tuple[Session, list[int | str]]:
    """The session and ``n`` task ids for a batch of calls (``App.map``)."""
    parent = parent_task()
    if parent is not None:
        counter = parent[1]
        return (session_of(distributed.get_client()),
                [f"{parent[0]}.{next(counter)}" for _ in range(n)])
    session = session_of(_default_client())
    return session, [next(session.tids) for _ in range(n)]


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
