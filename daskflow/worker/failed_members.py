"""Which calls of a chunk failed, told to the client as a Dask event.

A chunk task succeeds whatever its calls do, so Dask alone would call every
member "finished". The worker names the failed ones (one event per chunk
that has any) before the task ends; the event reaches the client before the
chunk's completion does, so a failed member reads "error" from the start.
"""

from __future__ import annotations

from distributed import get_worker

TOPIC = "daskflow-failed-members"


def tell(token: str, chunk_key: str, indices: list[int], cancelled: list[int]) -> None:
    """Tell the client of run ``token`` that these calls of the chunk failed
    (``cancelled``: those of them that were cancelled)."""
    try:
        worker = get_worker()
    except ValueError:  # not in a worker
        return
    message = {"run": token, "chunk": chunk_key, "failed": indices}
    if cancelled:
        message["cancelled"] = cancelled
    worker.log_event(TOPIC, message)
