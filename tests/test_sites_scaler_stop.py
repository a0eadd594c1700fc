"""Stopping the scaler of a profile's cluster while it is adding a block:
the block's start is finished, then closed with the cluster; no traceback,
no process left behind, and no block started once stopping began."""

from __future__ import annotations

import logging
from contextlib import suppress

import distributed
import psutil
from distributed.core import Status
from waiting import until

import daskflow
from daskflow import python_app

BURST = """
name: stop-mid-block
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: burst
    provider: local
    workers_per_node: 1
    scaling: {strategy: simple, init_blocks: 0, min_blocks: 0, max_blocks: 1, max_idletime: 60s}
"""


@python_app(executors=["burst"])
def on_burst():
    return distributed.get_worker().name


def _children() -> set[int]:
    """Our child processes, but multiprocessing's resource tracker: started
    with the first worker process, it lives as long as we do."""
    pids = set()
    for process in psutil.Process().children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            if "resource_tracker" not in " ".join(process.cmdline()):
                pids.add(process.pid)
    return pids


class _Errors(logging.Handler):
    """Keeps the records at ERROR and above (distributed's loggers do not
    propagate to the root logger, so pytest's caplog would not see them)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_closing_while_a_block_starts_is_clean(tmp_path):
    path = tmp_path / "burst.yaml"
    path.write_text(BURST)
    before = _children()
    errors = _Errors()
    loggers = [logging.getLogger(name) for name in ("distributed", "daskflow")]
    for logger in loggers:
        logger.addHandler(errors)
    try:
        for _ in range(3):  # each round closes mid-start
            with daskflow.Client(profile=str(path), set_as_default=False) as c, c.as_current():
                scaler, cluster = c._scaler, c.cluster
                future = on_burst()  # noqa: F841 (held: a released task is no demand)
                until(lambda: scaler.blocks["burst"], "the scaler added no block", interval=0.01)
                # the block's worker is still starting (it takes seconds): stop mid-start
                assert "burst-0-0" not in {ws.name for ws in cluster.scheduler.workers.values()}
                scaler.stop()
                assert scaler._task.done()
            # leaving the block closed the client and the cluster without an error
            assert cluster.status == Status.closed
            assert all(w.status == Status.closed for w in cluster._created)
            assert _children() <= before
    finally:
        for logger in loggers:
            logger.removeHandler(errors)
    assert [r.getMessage() for r in errors.records] == []


def test_a_stopped_scaler_starts_no_block(tmp_path):
    path = tmp_path / "burst.yaml"
    path.write_text(BURST)
    with daskflow.Client(profile=str(path), set_as_default=False) as c, c.as_current():
        scaler, cluster = c._scaler, c.cluster
        scaler.stop()
        future = on_burst()  # noqa: F841 (held: a released task is no demand)
        until(lambda: cluster.scheduler.tasks, "the task did not reach the scheduler")
        cluster.sync(scaler.step)  # a step that was under way when stopping began
        assert scaler.blocks["burst"] == {} and cluster.worker_spec == {}
