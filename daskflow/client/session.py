"""The client side of a run: ``daskflow.Client``, the embedded local default,
and the per-client session (task ids, prefetch lines).

With no client, the first app call starts the embedded default: a
``LocalCluster`` of processes (one single-threaded worker per core) bound to
127.0.0.1, which becomes Dask's default client and is closed at exit. A
``distributed.Client`` the user made is used as it is.
"""

from __future__ import annotations

import atexit
import getpass
import itertools
import logging
import os
import platform
import socket
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping

import dask
import distributed
from distributed import get_worker

from .. import config  # noqa: F401  (config loads daskflow's defaults)
from .. import latency, signing
from ..dask_internals import default_client
from ..errors import PackedInGraph
from ..memo import ids as memo_ids
from ..shipped import RunSettings, shared_objects
from ..sites.routing import Reach
from ..sites.watch import wait_for_processes
from ..version import __version__
from ..worker import recovery
from ..worker.context import parent_task
from ..worker.mpi import PoolMpi
from ..worker.mpi import local_default as local_mpi
from ..worker.task import execute
from . import bursts
from .arguments import members_picked, pack
from .failed_members import FailedMembers
from .futures import AppFuture, Line, gather_values
from .local import local_cluster, split_client_kwargs

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

    Apps need no client: the first call starts the local default. Make one to
    choose where apps run. Any ``distributed.Client`` works too, but only
    this one knows the pools for ``executors=``.

    Parameters
    ----------
    address : str or Cluster, optional
        A scheduler to connect to. With neither an address nor a profile,
        start the local default: one single-threaded worker process per core
        on 127.0.0.1 (``daskflow.local`` in Dask's config sets it).
    *args, **kwargs
        Those of ``distributed.Client``.
    profile : str or Profile, optional
        Start the cluster a site profile describes: a shipped name, one in
        ``~/.config/dask/daskflow/profiles/``, a YAML path, or a ``Profile``.
        It is kept as ``client.profile``; its cluster is closed with the
        client.
    wait_for_workers : bool, default True
        Return only once the local default's workers joined. With False,
        tasks wait for them, or fail with `WorkersUnavailable` if none can
        start.

    Raises
    ------
    TypeError
        Both an address and a profile were given.
    ValueError
        The profile is invalid (``ProfileError``, naming the field).

    Attributes
    ----------
    pools : list of str or None
        Labels of the worker pools apps may be pinned to with ``executors=``;
        None when connected to a scheduler daskflow did not start.
    """

    def __init__(self, address=None, *args, profile=None, wait_for_workers: bool = True,
                 **kwargs):
        self.pools: list[str] | None = None
        self.profile = None
        self.mpi_pools: dict = {}  # pool label -> PoolMpi, for the clusters daskflow starts
        if profile is not None:
            from ..sites.profile import Profile, load_profile
            from ..sites.start import start_cluster

            if address is not None or args:
                raise TypeError("give either an address or a profile, not both")
            self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
            cluster, self._scaler = start_cluster(self.profile, os.path.join(
                dask.config.get("daskflow.run-dir"), "blocks"))
            self.pools = [p.label for p in self.profile.pools]
            self.mpi_pools = {p.label: PoolMpi.of(p) for p in self.profile.pools}
            # the profile's staging settings hold while this client lives
            self._staging_config = dask.config.set(
                {f"daskflow.staging.{k}": v for k, v in self.profile.staging.items()})
            kwargs.setdefault("security", cluster.security)
            try:
                super().__init__(cluster, **kwargs)
            except BaseException:
                self._scaler.stop()
                cluster.close()
                self._staging_config.__exit__(None, None, None)
                raise
            self._owns_cluster = cluster
            latency.tune_client(self)
            return
        if address is None and not kwargs.get("scheduler_file") and not args:
            # One get per key: dask.config.get accepts either spelling of a
            # key (a DASK_DASKFLOW__LOCAL__N_WORKERS variable sets n_workers).
            for arg, key in LOCAL_SETTINGS.items():
                kwargs.setdefault(arg, dask.config.get(f"daskflow.local.{key}"))
            if not kwargs.setdefault("processes", True) and kwargs.get("host"):
                # threads in this process: distributed would pick its in-process
                # transport, whose addresses are not hosts
                kwargs.setdefault("protocol", "tcp://")
            self.pools = ["local"]
            # workers in this process take arguments by reference (shipped.Shared)
            self.in_process = not kwargs["processes"]
            kwargs, cluster_kwargs = split_client_kwargs(kwargs)
            self.mpi_pools = local_mpi()
            cluster, watch = local_cluster(self.mpi_pools["local"], **cluster_kwargs)
            try:
                super().__init__(cluster, **kwargs)
                if wait_for_workers and watch is not None:
                    wait_for_processes(cluster, watch, cluster.worker_spec)
                elif wait_for_workers:
                    self.wait_for_workers(len(cluster.worker_spec))
            except BaseException:
                super().close()
                cluster.close()
                raise
            self._owns_cluster = cluster
            latency.tune_client(self)
            return
        super().__init__(address, *args, **kwargs)

    def close(self, *args, **kwargs):
        """Close, first writing the cached results the workers hold back.

        Checkpoint modes other than ``task_exit`` hold results back (see
        `checkpoint`); a cluster this client started is closed too.

        Parameters
        ----------
        *args, **kwargs
            Those of ``distributed.Client.close``.
        """
        session = self.__dict__.get("_daskflow_session")
        if session is not None and session.burst is not None and self.status == "running":
            session.burst.flush()  # held calls go as they would have gone unheld
        if session is not None and self.status == "running":  # reports are for a live client
            if session.burst is not None:
                session.burst.durations.stop(self)
            session.failed_members.stop(self)
        if session is not None and session.run.checkpoint_mode != "task_exit" \
                and self.status == "running":
            try:
                checkpoint(self)
            except Exception:
                logger.exception("daskflow: could not write checkpoints at close")
        if session is not None and session.run.report and self.status == "running" \
                and not self.asynchronous:
            end_run(self, session.token)  # all of the run is recorded once close returns
        scaler = self.__dict__.pop("_scaler", None)
        if scaler is not None:
            scaler.stop()
        result = super().close(*args, **kwargs)
        cluster = self.__dict__.pop("_owns_cluster", None)
        if cluster is not None:
            cluster.close()
        if session is not None and session.shared is not None:
            session.shared.release()
        staging_config = self.__dict__.pop("_staging_config", None)
        if staging_config is not None:
            staging_config.__exit__(None, None, None)
        return result

    def gather(self, futures, *args, **kwargs):
        """As ``distributed.Client.gather``, but a list of AppFutures gives
        one value per call (also for chunked maps) and raises as
        `AppFuture.result` does.

        Parameters
        ----------
        futures : list, tuple or any collection of futures
            What ``distributed.Client.gather`` takes.
        *args, **kwargs
            Those of ``distributed.Client.gather``; with any, AppFutures are
            gathered as plain Futures.

        Returns
        -------
        list, tuple or as ``distributed.Client.gather``
        """
        if isinstance(futures, (list, tuple)) and any(isinstance(f, AppFuture) for f in futures):
            if not kwargs and not args:
                return type(futures)(gather_values(futures))
        if isinstance(futures, AppFuture) and not kwargs and not args:
            return gather_values([futures])[0]
        self._send_held()
        return super().gather(futures, *args, **kwargs)

    # Dask's own ways to make tasks: a held call they name must be sent first
    def submit(self, func, *args, **kwargs):
        self._send_held()
        if self.__dict__.get("_daskflow_session") is not None:  # a chunk member: its own value
            args, kwargs = members_picked(self, (args, kwargs))
        return super().submit(func, *args, **kwargs)

    def map(self, func, *iterables, **kwargs):
        self._send_held()
        if self.__dict__.get("_daskflow_session") is not None:
            iterables = tuple(members_picked(self, list(i)) if isinstance(i, (list, tuple))
                              else i for i in iterables)
            kwargs = members_picked(self, kwargs)
        return super().map(func, *iterables, **kwargs)

    def compute(self, collections, *args, **kwargs):
        self._send_held()
        self._check_graphs(collections)
        return super().compute(collections, *args, **kwargs)

    def persist(self, collections, *args, **kwargs):
        self._send_held()
        self._check_graphs(collections)
        return super().persist(collections, *args, **kwargs)

    def get(self, dsk, *args, **kwargs):  # dask.compute's, and a collection's .compute()
        self._send_held()
        self._check_graph(dsk)
        return super().get(dsk, *args, **kwargs)

    def _check_graphs(self, collections) -> None:
        for c in collections if isinstance(collections, (list, tuple, set)) else (collections,):
            if dask.is_dask_collection(c):
                self._check_graph(c.__dask_graph__())

    def _check_graph(self, dsk) -> None:
        """Refuse a graph that names a packed call's future (``PackedInGraph``):
        its tasks would depend on the call's whole chunk. One look per task,
        only in a session that packed calls."""
        session = self.__dict__.get("_daskflow_session")
        if session is None or not session.has_chunks:
            return
        if not isinstance(dsk, Mapping):  # dask.compute gives an expression of the graph
            dsk = dsk.__dask_graph__() if hasattr(dsk, "__dask_graph__") else {}
        chunks = session.failed_members.chunks  # the chunks still held by their calls
        for task in dsk.values():
            if getattr(task, "func", None) is execute:  # app.delayed's: it picks its members
                continue
            for key in getattr(task, "dependencies", ()):
                if key in chunks:
                    raise PackedInGraph(key)

    submit.__doc__ = distributed.Client.submit.__doc__
    map.__doc__ = distributed.Client.map.__doc__
    compute.__doc__ = distributed.Client.compute.__doc__
    persist.__doc__ = distributed.Client.persist.__doc__
    get.__doc__ = distributed.Client.get.__doc__

    def _send_held(self) -> None:
        """Send the app calls held for packing (``client.bursts``), if any."""
        session = self.__dict__.get("_daskflow_session")
        if session is not None and session.burst is not None and session.burst.holding:
            session.burst.flush()


class Session:
    """daskflow's state for one client: task ids, prefetch lines, the run."""

    def sent(self, n: int) -> None:
        """``n`` more calls went to the scheduler with their descriptions."""
        with self._described_lock:
            self.described += n

    def __init__(self, client: distributed.Client, record: bool = True):
        self.client = client
        self.token = uuid.uuid4().hex[:16]
        self.tids = itertools.count()
        self.lines: defaultdict[str, Line] = defaultdict(Line)
        self.has_chunks = False  # set once a chunked map ran: calls then look for members
        # what a call's arguments of the user's own types become (client.arguments.walk):
        # copies for workers elsewhere, references for workers in this process
        self.shared = shared_objects(self.token) if client.__dict__.get("in_process") else None
        self.pack = self.shared.share if self.shared is not None else pack
        self.pools: list[str] | None = getattr(client, "pools", None)
        profile = client.__dict__.get("profile")  # (distributed.Client.profile is a method)
        self.default_retries: int | None = getattr(profile, "retries", None)
        self.reach = Reach.of(profile)  # None unless some pool is reachable from only some
        # MPI slots per pool: a cluster daskflow did not start has none it knows of
        self.mpi: dict[str, PoolMpi] = client.__dict__.get("mpi_pools", {})
        self.limits = {**dask.config.get("daskflow.limits"), **getattr(profile, "limits", {})}
        self.containers = tuple((p.label, p.container.as_shipped())
                                for p in getattr(profile, "pools", ()) if p.container is not None)
        self.run = run_settings(self.token, record)
        self.run.shares = self.shared is not None
        # descriptions of calls sent to the provenance plugin, so that a settle can
        # wait for the last of them (update-graph and a handler's call travel apart)
        self.described = 0
        self._described_lock = threading.Lock()
        # calls held and packed into chunk tasks: only with daskflow's Client, whose own
        # submit sends them before a task that names them, and not inside join apps
        self.burst = bursts.start(self) if record and isinstance(client, Client) else None
        self.failed_members = FailedMembers(self.run.token)  # a packed call's status: its own
        if record and isinstance(client, Client):  # whose close stops the reports first
            try:
                self.failed_members.listen(client)
            except Exception:  # a client that cannot subscribe: members read their chunk's
                logger.debug("daskflow: no failed members from the workers", exc_info=True)
        self.run_id: str | None = None
        self.run_dir: str | None = None
        if record:  # why workers leave: a lost task's error says it (WorkerLost)
            from ..worker_fates import WorkerFates

            try:
                client.register_plugin(WorkerFates())
            except Exception:  # a scheduler without daskflow: KilledWorker says less
                logger.debug("daskflow: no worker fates on this scheduler", exc_info=True)
        if self.run.report:
            self.run_id, self.run_dir = start_run(client, self.token)
            max_bytes = dask.utils.parse_bytes(dask.config.get("daskflow.recovery.max-bytes"))
            if max_bytes:  # private (0700), signed with a key of this run (see recovery)
                self.run.results = recovery.keep_in(os.path.join(self.run_dir, "results"),
                                                    signing.results_key(self.token))
                self.run.results_max_bytes = int(max_bytes)


def run_settings(token: str, record: bool) -> RunSettings:
    """The run's settings from dask config (paths made absolute here, on the client).

    The checkpoint key is derived here, from the user's key file, and
    travels with the settings: workers may not see the file. A session made
    on a worker (``record=False``: calls inside join apps) needs none, as
    its calls belong to their parent's run and use its settings.
    """
    cfg = dask.config.get
    directory = cfg("daskflow.checkpoint.dir")
    reuse = tuple(_absolute(u) for u in cfg("daskflow.checkpoint.reuse") or ())
    return RunSettings(
        token,
        report=record and bool(cfg("daskflow.provenance.enabled")),
        checkpoint=_absolute(directory) if directory else None,
        checkpoint_mode=_checked_mode(cfg("daskflow.checkpoint.mode")),
        checkpoint_period=float(dask.utils.parse_timedelta(cfg("daskflow.checkpoint.period"))),
        reuse=reuse,
        checksum_limit=int(dask.utils.parse_bytes(cfg("daskflow.provenance.checksum-max-bytes"))),
        checkpoint_key=signing.checkpoint_key() if record and (directory or reuse) else None,
        memo=memo_ids.Rule("dask"),  # ships the driver's id_for_memo registrations
    )


CHECKPOINT_MODES = ("task_exit", "periodic", "dag_exit", "manual")


def _checked_mode(mode: str) -> str:
    if mode not in CHECKPOINT_MODES:
        raise ValueError(f"daskflow.checkpoint.mode is {mode!r}; expected one of "
                         f"{', '.join(CHECKPOINT_MODES)}")
    return mode


def _absolute(url: str) -> str:
    return url if "://" in url else os.path.abspath(url)


def start_run(client: distributed.Client, token: str) -> tuple[str, str]:
    """Make the run's directory and register the plugin that records it."""
    from .. import failure_log
    from ..provenance.plugin import ProvenancePlugin
    from ..provenance.store import new_run_dir

    run_id, run_dir = new_run_dir(_absolute(dask.config.get("daskflow.run-dir")))
    run = {
        "run_id": run_id,
        "script": os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "<interactive>",
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "cwd": os.getcwd(),
        "start": time.time(),
        "profile": getattr(getattr(client, "profile", None), "name", None)
        or ("local" if getattr(client, "pools", None) == ["local"] else None),
        "versions": {"daskflow": __version__, "dask": dask.__version__,
                     "distributed": distributed.__version__,
                     "python": platform.python_version()},
        "scheduler": client.scheduler.address,
    }
    db_path = os.path.join(run_dir, "provenance.db")
    client.register_plugin(ProvenancePlugin(run, db_path, token))
    client.subscribe_topic(failure_log.topic(token), failure_log.FailureLines())  # one line each
    logger.info("daskflow run %s recorded in %s", run_id, run_dir)
    return run_id, run_dir


def end_run(client: distributed.Client, token: str) -> None:
    """End the run on the scheduler and wait until all of it is recorded
    (the client's leaving would end it too, but without waiting)."""
    from ..provenance.plugin import END_HANDLER, WRITER_EXIT_WAIT

    try:
        client.sync(getattr(client.scheduler, END_HANDLER), token=token,
                    callback_timeout=2 * WRITER_EXIT_WAIT + 5)
    except Exception:  # a scheduler without the handler: the run ends when the client leaves
        logger.debug("daskflow: could not end run %s before closing", token, exc_info=True)


def session_of(client: distributed.Client, record: bool = True) -> Session:
    session = client.__dict__.get("_daskflow_session")
    if session is None:
        with _start_lock:
            session = client.__dict__.get("_daskflow_session")
            if session is None:
                session = client._daskflow_session = Session(client, record)
    return session


def current() -> tuple[Session, int | str, RunSettings]:
    """The session an app call goes to, the call's task id and its run."""
    parent = parent_task()
    if parent is not None:  # inside a join app's body, on a worker
        tid, children, run = parent
        return session_of(distributed.get_client(), record=False), f"{tid}.{next(children)}", run
    client = _default_client()
    session = client.__dict__.get("_daskflow_session") or session_of(client)
    return session, next(session.tids), session.run


def next_tids(n: int) -> tuple[Session, list[int | str], RunSettings]:
    """The session, ``n`` task ids for a batch of calls (``App.map``) and their run."""
    parent = parent_task()
    if parent is not None:
        tid, children, run = parent
        return (session_of(distributed.get_client(), record=False),
                [f"{tid}.{next(children)}" for _ in range(n)], run)
    session = session_of(_default_client())
    return session, [next(session.tids) for _ in range(n)], session.run


def checkpoint(client: distributed.Client | None = None) -> int:
    """Write the cached results the workers hold back, now.

    With ``daskflow.checkpoint.mode`` ``task_exit`` (the default) each result
    of a ``cache=`` app is written when its task ends; the other modes
    (``periodic``, ``dag_exit``, ``manual``) hold results on the workers
    until a period passes, the client closes, or this is called.

    Parameters
    ----------
    client : distributed.Client, optional
        Default: the current client.

    Returns
    -------
    int
        How many entries were written.
    """
    from ..memo import keys as memo

    client = client or _default_client()
    return sum(client.run(memo.flush).values())


def _default_client() -> distributed.Client:
    try:
        return default_client()
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
        # an app call returns at once: its task waits for the workers
        client = Client(set_as_default=True, wait_for_workers=False)
        atexit.register(client.close)
        logger.info("daskflow started a local Dask cluster; dashboard: %s", client.dashboard_link)
        return client
