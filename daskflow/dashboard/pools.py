"""Pools and blocks as the scheduler sees them, for the Workflow page.

Live workers say which pool they belong to through their pool resources
(``pool:LABEL``, see ``pool_resources``) and which block through their names
(``LABEL-INDEX`` or ``LABEL-INDEX-I``, see ``sites.start``). Blocks that were
asked for but whose workers have not joined yet (a batch job waiting in its
queue) are known only to the ``PoolScaler``; it is read, defensively, when
it is registered on the scheduler as ``scheduler.extensions["daskflow-pools"]``.
"""

from __future__ import annotations

from typing import Any

from ..dask_internals import processing_tasks
from ..pool_resources import pool_of as resource_pool

SCALER = "daskflow-pools"  # where the sites room may register its PoolScaler
DEFAULT_POOL = "(no pool)"  # workers without pool resources (a plain LocalCluster)


def pool_of(ws) -> str:
    """The pool label of a worker: its single-label pool resource."""
    own = map(resource_pool, getattr(ws, "resources", None) or {})
    return next(filter(None, own), DEFAULT_POOL)


def block_of(name: str, pool: str) -> str:
    """The block index in a worker name ``POOL-INDEX[-I]`` (else the name)."""
    if name.startswith(pool + "-"):
        index = name[len(pool) + 1:].split("-", 1)[0]
        if index.isdigit():
            return index
    return "-" if pool == DEFAULT_POOL else name


def worker_facts(scheduler, address: str, joined: float) -> dict[str, Any]:
    """What the run's record keeps of a worker that joined it
    (``provenance.store.WORKER_FIELDS``), so that a finished run's page can
    still show its pools and blocks."""
    facts: dict[str, Any] = {"address": address, "joined": joined}
    ws = scheduler.workers.get(address)
    if ws is not None:
        pool = pool_of(ws)
        facts.update(name=str(ws.name), host=ws.host, pool=pool,
                     block=block_of(str(ws.name), pool), threads=ws.nthreads)
    return facts


def pool_rows(scheduler) -> list[dict[str, Any]]:
    """One row per block: ``pool, block, state, workers, processing``.

    ``state`` is ``busy`` (a worker has tasks), ``idle``, ``pending`` (asked
    for, no worker joined yet) or ``gone`` (its workers left). Cost: one
    pass over the workers, plus the scaler's blocks.
    """
    blocks: dict[tuple[str, str], dict[str, Any]] = {}
    for ws in list(scheduler.workers.values()):
        pool = pool_of(ws)
        key = (pool, block_of(str(ws.name), pool))
        row = blocks.setdefault(key, {"pool": key[0], "block": key[1], "state": "idle",
                                      "workers": 0, "processing": 0})
        row["workers"] += 1
        processing = processing_tasks(ws)
        row["processing"] += len(processing)
        if processing:
            row["state"] = "busy"
    scaler = scheduler.extensions.get(SCALER)
    declared = getattr(scaler, "blocks", None)
    if isinstance(declared, dict):
        seen = getattr(scaler, "seen", set())
        for pool, indexes in declared.items():
            for index, names in dict(indexes).items():
                key = (str(pool), str(index))
                if key not in blocks:
                    gone = any(n in seen for n in names)
                    blocks[key] = {"pool": key[0], "block": key[1],
                                   "state": "gone" if gone else "pending",
                                   "workers": 0, "processing": 0}
    return in_order(blocks.values())


def in_order(rows) -> list[dict[str, Any]]:
    """Block rows by pool, then block index (numbers as numbers, names after)."""
    return sorted(rows, key=lambda r: (r["pool"], _order(r["block"])))


def _order(block: str) -> tuple:
    return (0, int(block), "") if block.isdigit() else (1, 0, block)
