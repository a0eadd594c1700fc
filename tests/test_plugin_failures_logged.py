"""What runs beside the scheduler says so when it fails: distributed only
logs a plugin's exceptions, so without daskflow's own log lines a broken
provenance writer, live state or pool scaler would go unnoticed. Each test
breaks one of them in a real run and reads the "daskflow" log (the ``logs``
fixture)."""

from __future__ import annotations

import os
import subprocess

import dask
import distributed
import pytest
from waiting import until

import daskflow
from daskflow import python_app
from daskflow.client.session import session_of
from daskflow.provenance.store import ProvenanceStore

BURST = """
name: failing-scaler
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: burst
    provider: local
    workers_per_node: 1
    scaling: {strategy: simple, init_blocks: 0, min_blocks: 0, max_blocks: 1, max_idletime: 60s}
"""

BROKEN = """  - label: broken
    provider: local
    workers_per_node: 1
    scaling: {strategy: simple, init_blocks: 0, min_blocks: 0, max_blocks: 1, max_idletime: 60s}
"""


@python_app
def pf_inc(x):
    return x + 1


@python_app(executors=["burst"])
def pf_on_burst():
    return distributed.get_worker().name


def _messages(logs) -> list[str]:
    return [r.getMessage() for r in logs.records]


def _record(logs, message: str):
    """The record whose message starts with ``message`` (the writer process's
    records come with their traceback in the text)."""
    return next(r for r in logs.records if r.getMessage().startswith(message))


def _said(logs, message: str) -> bool:
    return any(m.startswith(message) for m in _messages(logs))


def _immutable(path: str, on: bool) -> bool:
    """chattr +i / -i: an immutable file cannot be written, not even by root."""
    return subprocess.run(["chattr", "+i" if on else "-i", path],
                          capture_output=True).returncode == 0


def test_a_store_that_cannot_be_written_is_logged(tmp_path, logs):
    """The run's store stops taking writes mid-run (its write-ahead log made
    immutable: a real I/O error). The run goes on; the writer logs each batch
    it could not record and, at the end, the end it could not record, both
    naming the store. (The end used to kill the writer thread, unlogged, and
    the live state never ended.)"""
    wal = None
    try:
        with dask.config.set({"daskflow.run-dir": str(tmp_path / "runinfo")}), \
                daskflow.Client(n_workers=1, threads_per_worker=1,
                                dashboard_address=":0") as c, c.as_current():
            assert pf_inc(1).result(timeout=60) == 2
            session = session_of(c)
            state = c.cluster.scheduler.plugins[f"daskflow-provenance-{session.token}"].state
            db = os.path.join(session.run_dir, "provenance.db")
            wal = db + "-wal"
            until(lambda: os.path.exists(wal), f"the store has no write-ahead log {wal}")
            if not _immutable(wal, True):
                wal = None
                pytest.skip("chattr +i is not possible here (needs ext4-like files and root)")
            assert pf_inc(2).result(timeout=60) == 3  # the run goes on
            batch = f"daskflow: could not record a provenance batch in {db}"
            until(lambda: _said(logs, batch),
                  lambda: f"no log line says the batch was not recorded: {_messages(logs)}",
                  timeout=30)
            record = _record(logs, batch)  # from the plugin's thread, or the writer process's
            assert "disk I/O error" in record.getMessage() + str(record.exc_info and
                                                                 record.exc_info[1])
    finally:
        if wal is not None:
            _immutable(wal, False)
    # the client closed: the writer met the end of the run, and said so
    end = f"daskflow: could not record the end of run {session.run_id} in {db}"
    assert _said(logs, end), _messages(logs)
    assert state.status == "completed"  # the live state ended all the same


def test_a_live_state_that_cannot_be_updated_is_logged(tmp_path, logs, monkeypatch):
    """The live state (what the dashboard and ``daskflow run`` read) lives in
    the writer's memory, where no real failure can be arranged: its ``apply``
    is replaced, on a writer run in this process, by one that raises. The
    failure is logged, and the store still records the batch."""
    from daskflow.provenance.writer import Writer

    db = str(tmp_path / "provenance.db")
    run = {"run_id": "000", "script": "s.py", "start": 1.0}
    with ProvenanceStore(db) as store:
        store.start_run(run)
    writer = Writer(run, db, "TOKEN", record_arguments=False)

    def broken(batch):
        raise RuntimeError("the live state is broken")

    monkeypatch.setattr(writer.state, "apply", broken)
    desc = {"app": "inc", "tid": 1, "hash": "h", "args": "((1,), {})"}
    writer.write([("new", "inc-1-TOKEN", 2.0, desc, []),
                  ("transition", "inc-1-TOKEN", "processing", "memory", 3.0, {}),
                  ("end", 4.0, "completed")])
    writer.close()
    message = "daskflow: could not update the live run state"
    assert _said(logs, message), _messages(logs)
    assert str(_record(logs, message).exc_info[1]) == "the live state is broken"
    with ProvenanceStore(db, readonly=True) as store:
        assert [t["state"] for t in store.tasks()] == ["done"]
        assert store.runs()[0]["status"] == "completed"


def test_a_failing_scaling_step_is_logged_and_scaling_goes_on(tmp_path, logs, monkeypatch):
    """A pool's demand is counted from the scheduler's own task states, where
    no real failure can be arranged: the scaler's ``_demand`` is replaced, on
    this cluster's scaler only, by one that always raises for pool ``broken``
    (scaled first). Each failed step is logged naming the pool and its cause,
    and pool ``burst``, scaled after it in the same step, still grows: the
    call runs."""
    path = tmp_path / "burst.yaml"
    path.write_text(BURST.replace("pools:\n", "pools:\n" + BROKEN))
    with daskflow.Client(profile=str(path), set_as_default=False) as c, c.as_current():
        scaler = c._scaler
        assert [p.label for p in scaler.pools] == ["broken", "burst"]
        real = scaler._demand
        failed = []

        def fails_for_broken(scheduler, pool):
            if pool.label == "broken":
                failed.append(pool.label)
                raise RuntimeError(f"cannot count the demand of pool {pool.label}")
            return real(scheduler, pool)

        monkeypatch.setattr(scaler, "_demand", fails_for_broken)
        future = pf_on_burst()
        until(lambda: failed, "the scaler never asked for the demand again", timeout=30)
        assert future.result(timeout=60) == "burst-0-0"
    record = _record(logs, "daskflow: pool scaling step failed for pool broken")
    assert str(record.exc_info[1]) == "cannot count the demand of pool broken"
    assert not any("failed for pool burst" in m for m in _messages(logs)), _messages(logs)
