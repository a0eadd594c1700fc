"""The one door to distributed's internals.

daskflow lives on distributed's public API where it can. What it cannot do
through that API is done here, and only here, so that a distributed release
that changes an internal breaks one function, caught by
``tests/test_dask_internals.py``, not a behaviour somewhere else.
"""

from __future__ import annotations

from typing import Callable

from distributed.protocol.serialize import Serialized, serialize

WAITING_FOR_A_WORKER = ("no-worker", "queued")


def err_waiting_tasks(scheduler, why: Callable[[object], BaseException | None],
                      stimulus_id: str) -> int:
    """Err the tasks waiting for a worker for which ``why(task_state)`` gives
    an exception, as if they had raised it: their futures, their dependents
    and the scheduler plugins see it. Returns how many tasks erred.

    Uses ``Scheduler.unrunnable``, ``Scheduler.queued``, ``_transition``,
    ``_transitions`` and ``send_all`` (distributed has no public way to fail
    a task that never ran).
    """
    count = 0
    for ts in [*scheduler.unrunnable, *scheduler.queued]:
        if ts.state not in WAITING_FOR_A_WORKER:
            continue  # erred meanwhile, as a dependent of another
        exc = why(ts)
        if exc is None:
            continue
        recs, client_msgs, worker_msgs = scheduler._transition(
            ts.key, "erred", stimulus_id, cause=ts.key,
            exception=Serialized(*serialize(exc)), traceback=None,
            exception_text=f"{type(exc).__name__}: {exc}", traceback_text="")
        scheduler._transitions(recs, client_msgs, worker_msgs, stimulus_id)
        scheduler.send_all(client_msgs, worker_msgs)
        count += 1
    return count
