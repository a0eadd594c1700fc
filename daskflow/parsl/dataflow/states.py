"""``parsl.dataflow.states``: the states Parsl names a task's life by,
which ``parsl.dfk().task_state_counts`` counts."""

from __future__ import annotations

from enum import IntEnum


class States(IntEnum):
    """A task's state, numbered as in Parsl."""

    pending = 0
    running = 2
    exec_done = 3
    failed = 4
    dep_fail = 5
    launched = 7
    fail_retryable = 8
    memo_done = 9
    joining = 10
    running_ended = 11

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


FINAL_FAILURE_STATES = {States.failed, States.dep_fail}
FINAL_STATES = {States.exec_done, States.memo_done, *FINAL_FAILURE_STATES}

__all__ = ["FINAL_FAILURE_STATES", "FINAL_STATES", "States"]
