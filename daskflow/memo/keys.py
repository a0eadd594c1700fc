"""Memoization on the worker: the cache key of a call, and its look-up and
storage in checkpoint stores.

The key is computed where the call runs, after Dask resolved its
dependencies, so equal argument *values* give equal keys whichever tasks
produced them. It covers the app's identity (module, name and a digest of its
source: editing the function invalidates its entries) and the bound
arguments, minus ``ignore_for_cache`` and ``walltime``. Files count by URL,
or by content with ``cache="content"``; values of a type with a registered
``id_for_memo`` by that id (``ids``), and under Parsl's rules (``strict``)
every value must have one.

Entries are written when the call ends (``task_exit``), or kept in this
worker process and written every ``checkpoint_period`` seconds
(``periodic``), when the run ends (``dag_exit``) or on
``daskflow.checkpoint()`` (``manual``).

Entries are signed and verified with the run's ``checkpoint_key`` (derived
from the user's key on the driver and shipped in the run's settings, as
this worker may not see the user's key file): an entry written by anyone
else is a miss, never unpickled (see ``checkpoint_store``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import threading
import time
from typing import Any

from dask.base import tokenize

from ..files import File
from .ids import strict_ids, with_ids

NOT_IN_KEY = ("walltime",)
logger = logging.getLogger("daskflow.checkpoint")

# (store URL, signing key) -> {(app, key): value}
_pending: dict[tuple[str, bytes | None], dict[tuple[str, str], Any]] = {}
_pending_lock = threading.Lock()
_flusher: threading.Thread | None = None


def call_key(app, args: tuple, kwargs: dict, staging=None, strict: bool = False) -> str:
    """The memo key of calling ``app`` with these (resolved) arguments.

    ``staging`` (the call's staging settings) reaches the sources of remote
    Files, whose fingerprint (size, ETag, mtime) stands for their content.
    ``strict``: every value by its ``id_for_memo`` (Parsl's rule).

    Raises
    ------
    ValueError
        With ``strict``, a value whose type has no ``id_for_memo``; and
        whatever a registered ``id_for_memo`` raises (the call fails with it).
    """
    try:
        bound = _signature(app.func).bind_partial(*args, **kwargs).arguments
    except TypeError:  # the call itself is wrong; let it fail when it runs
        bound = {"args": args, "kwargs": kwargs}
    values = {k: v for k, v in bound.items()
              if k not in app.ignore_for_cache and k not in NOT_IN_KEY}
    if app.cache == "content":
        values = _by_content(values, staging)
    return tokenize(app.identity, strict_ids(values) if strict else with_ids(values))


@functools.lru_cache(maxsize=1024)
def _signature(func) -> inspect.Signature:
    return inspect.signature(func)


def _by_content(obj, staging=None):
    if isinstance(obj, File):
        if not obj.is_local:  # what the source says about its current version
            from ..staging import fingerprint

            return ("file-remote", fingerprint(obj, staging))
        from ..provenance.report import sha256_file

        return ("file-content", sha256_file(obj.filepath))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_by_content(o, staging) for o in obj)
    if isinstance(obj, dict):
        return {k: _by_content(v, staging) for k, v in obj.items()}
    return obj


@functools.lru_cache(maxsize=64)
def store(url: str, readonly: bool = False, key: bytes | None = None):
    """The store at *url*, signing with *key* (None: the user's checkpoint key)."""
    from .checkpoints import CheckpointStore

    return CheckpointStore(url, readonly=readonly, key=key)


def entry_name(app_name: str) -> str:
    """The app's name as a store directory (``<lambda>`` → ``_lambda_``)."""
    name = re.sub(r"\W", "_", app_name)
    return name if name[:1].isalpha() or name[:1] == "_" else f"_{name}"


def lookup(run, app_name: str, key: str) -> tuple[bool, Any]:
    """A hit in this process' unwritten entries, the run's store, or a reused one
    (under Parsl's rules, a hit in a reused store is saved in the run's too)."""
    app_name = entry_name(app_name)
    with _pending_lock:
        pending = _pending.get((run.checkpoint, run.checkpoint_key), {})
        if (app_name, key) in pending:
            return True, pending[(app_name, key)]
    hit, value = store(run.checkpoint, key=run.checkpoint_key).get(app_name, key)
    if hit:
        return hit, value
    for url in run.reuse:
        hit, value = store(url, readonly=True, key=run.checkpoint_key).get(app_name, key)
        if hit:
            if run.memo == "parsl":  # Parsl's checkpoints carry reused results on
                save(run, app_name, key, value)
            return hit, value
    return False, None


def save(run, app_name: str, key: str, value: Any) -> None:
    """Store a result (a store that fails is logged: the call itself succeeded)."""
    app_name = entry_name(app_name)
    if run.checkpoint_mode == "task_exit":
        _put((run.checkpoint, run.checkpoint_key), app_name, key, value)
        return
    with _pending_lock:
        _pending.setdefault((run.checkpoint, run.checkpoint_key), {})[(app_name, key)] = value
    if run.checkpoint_mode == "periodic":
        _start_flusher(run.checkpoint_period)


def flush() -> int:
    """Write this process' unwritten entries; returns how many were written."""
    with _pending_lock:
        batches = list(_pending.items())
        _pending.clear()
    written = 0
    for where, entries in batches:
        for (app_name, key), value in entries.items():
            written += _put(where, app_name, key, value)
    return written


def _put(where: tuple[str, bytes | None], app_name: str, key: str, value: Any) -> bool:
    url, signing_key = where
    try:
        store(url, key=signing_key).put(app_name, key, value)
        return True
    except Exception as exc:
        logger.warning("daskflow: could not store the result of %s in %s (%s: %s); it will "
                       "be computed again next time", app_name, url, type(exc).__name__, exc)
        return False


def _start_flusher(period: float) -> None:
    global _flusher
    with _pending_lock:
        if _flusher is not None and _flusher.is_alive():
            return

        def loop():
            while True:
                time.sleep(period)
                flush()

        _flusher = threading.Thread(target=loop, name="daskflow-checkpoint", daemon=True)
        _flusher.start()
