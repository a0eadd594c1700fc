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


def worker_memory_limit(scheduler, address: str) -> int | None:
    """The memory limit (bytes) of a worker the scheduler knows, if it has one.

    Uses ``Scheduler.workers`` and ``WorkerState.memory_limit``."""
    ws = scheduler.workers.get(address)
    return getattr(ws, "memory_limit", None) or None


def blamed_key(scheduler, key) -> object | None:
    """The key of the task whose failure made task ``key`` err as a dependent
    (distributed tells plugins a dependent erred, not because of which task).

    Uses ``Scheduler.tasks`` and ``TaskState.exception_blame``."""
    ts = scheduler.tasks.get(key)
    blame = getattr(ts, "exception_blame", None)
    return None if blame is None else blame.key


def exit_reporting_nanny(topic: str):
    """A ``distributed.Nanny`` that tells the scheduler, as event ``topic``
    (``{worker, exitcode}``), how its worker's process ended when it ended
    on its own (not while the Nanny closes): distributed's Nanny only logs
    it locally.

    Overrides ``Nanny._on_worker_exit`` (no public hook sees the exit code).
    """
    from distributed import Nanny
    from distributed.core import Status

    class ExitReportingNanny(Nanny):
        async def _on_worker_exit(self, exitcode):
            if self.status == Status.running and self.worker_address:
                try:
                    self.log_event(topic, {"worker": self.worker_address,
                                           "exitcode": int(exitcode)})
                except Exception:  # telling is a courtesy: restarting matters more
                    pass
            return await super()._on_worker_exit(exitcode)

    return ExitReportingNanny
