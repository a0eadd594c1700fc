"""What a call's reported duration covers (``worker.durations``): the call,
not daskflow's bookkeeping after it. The first call of an app in a worker
process sizes the chunks of the loop that follows; its result's keeping
(``recovery.remember_soon``, whose first use starts the process's writer
thread) used to count as the call's time and made a loop of 2,000 short
calls go as 200 chunks instead of 16. The task bodies run in this process;
the bookkeeping is slowed on purpose to see where the clock stops."""

from __future__ import annotations

import time

import pytest

from daskflow.shipped import AppDef, Options, RunSettings
from daskflow.worker import durations, recovery, task


def _square(x):
    return x * x


@pytest.fixture
def slow_keeping(monkeypatch, tmp_path):
    noted = []
    monkeypatch.setattr(durations, "note", lambda token, app, calls, seconds:
                        noted.append((app, calls, seconds)))
    monkeypatch.setattr(recovery, "remember_soon", lambda *args: time.sleep(0.3))
    kept = recovery.keep_in(str(tmp_path / "results"), b"k" * 32)
    run = RunSettings("tok", results=kept, results_max_bytes=1024)
    app = AppDef(_square, "square", "python", None, "test._square:0")
    return noted, app, Options(run=run)


def test_a_call_is_timed_without_keeping_its_result(slow_keeping):
    noted, app, opts = slow_keeping
    assert task.execute(app, 1, "square-1-tok", opts, (3,), {}) == 9
    ((name, calls, seconds),) = noted
    assert (name, calls) == ("square", 1) and seconds < 0.1


def test_a_chunk_is_timed_without_keeping_its_outcomes(slow_keeping):
    noted, app, opts = slow_keeping
    calls = [(i, f"square-1-tok[{i}]", (i,), {}) for i in range(4)]
    assert list(task.execute_chunk(app, opts, calls)) == [0, 1, 4, 9]
    ((name, n, seconds),) = noted
    assert (name, n) == ("square", 4) and seconds < 0.1
