"""The provenance plugin on a real cluster: what a run records."""

from __future__ import annotations

import hashlib
import os

from click.testing import CliRunner
import dask
import pytest
from waiting import until

import daskflow
from daskflow import File, bash_app, join_app, python_app
from daskflow.cli.main import main
from daskflow.provenance.store import ProvenanceStore, find_run


@python_app(retries=1)
def flaky(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first try fails")
    return "ok"


@python_app(cache=True)
def cached(x):
    return x + 1


@python_app
def broken():
    raise ValueError("broken on purpose")


@python_app
def after(x):
    return x


@bash_app
def produce(outputs=()):
    return f"printf hello > {outputs[0]}"


@bash_app
def exits(code, stderr=None):
    return f"echo failing >&2; exit {code}"


@join_app
def joined():
    return [cached(100), cached(101)]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One real run of a small workflow; returns (run dir, store, futures)."""
    base = tmp_path_factory.mktemp("prov")
    with dask.config.set({"daskflow.run-dir": str(base / "runinfo"),
                          "daskflow.checkpoint.dir": str(base / "ckpt")}):
        with daskflow.Client(n_workers=2, threads_per_worker=1, dashboard_address=":0") as c, \
                c.as_current():
            fs = {
                "flaky": flaky(str(base / "marker")),
                "cached1": cached(1),
                "cached1again": cached(1),
                "broken": broken(),
                "produce": produce(outputs=[File(str(base / "out.txt"))]),
                "joined": joined(),
                "exits": exits(3, stderr=str(base / "exits.err")),
            }
            fs["after"] = after(fs["broken"])
            fs["cached1"].result()  # stored before the map below looks it up
            fs["cached2"] = cached.map([1, 2], chunksize=2)
            fs["chain"] = after(fs["cached2"][1])
            for f in list(fs.values()):
                for g in (f if isinstance(f, list) else [f]):
                    g.exception()
            run_dir = find_run(str(base / "runinfo"), "latest")
    store = ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True)
    yield base, store, fs
    store.close()


def _task(store, fut):
    key = fut.key if fut.index is None else f"{fut.key}[{fut.index}]"
    (row,) = [t for t in store.tasks() if t["key"] == key]
    return row


def test_run_record(recorded):
    _, store, _ = recorded
    (run,) = store.runs()
    # some of its calls failed (on purpose): the run failed
    assert run["status"] == "failed" and run["end_time"] >= run["start_time"]
    assert run["user"] and run["host"] and run["scheduler"].startswith("tcp://127.0.0.1")
    assert run["versions"]["distributed"]


def test_each_try_is_recorded_with_its_exception(recorded):
    _, store, fs = recorded
    row = _task(store, fs["flaky"])
    assert row["state"] == "done" and row["tries"] == 2
    (first,) = store.tries(row["key"])
    assert first["exception"] == "RuntimeError: first try fails"


def test_failures_and_dependency_failures(recorded):
    _, store, fs = recorded
    assert _task(store, fs["broken"])["state"] == "failed"
    assert "broken on purpose" in _task(store, fs["broken"])["exception"]
    after_row = _task(store, fs["after"])
    assert after_row["state"] == "failed"
    assert (after_row["tid"], str(fs["broken"].tid)) in store.dependencies()


def test_memo_hits_and_misses(recorded):
    _, store, fs = recorded
    assert _task(store, fs["cached1"])["memo"] == "miss"
    first, second = (_task(store, f) for f in fs["cached2"])
    assert (first["state"], first["memo"]) == ("memo", "hit")  # cached(1) ran before
    assert second["memo"] == "miss"
    assert (str(fs["chain"].tid), second["tid"]) in store.dependencies()


def test_output_files_with_size_and_checksum(recorded):
    base, store, fs = recorded
    (f,) = store.files(_task(store, fs["produce"])["key"])
    assert (f["direction"], f["size"]) == ("out", 5)
    assert f["checksum"] == hashlib.sha256(b"hello").hexdigest()


def test_calls_inside_a_join_belong_to_the_run(recorded):
    _, store, fs = recorded
    jtid = str(fs["joined"].tid)
    inner = [t for t in store.tasks() if t["tid"].startswith(jtid + ".")]
    assert len(inner) == 2 and {t["app"] for t in inner} == {"cached"}


def test_every_row_has_an_app_and_a_tid(recorded):
    _, store, _ = recorded
    assert all(t["app"] and t["tid"] for t in store.tasks())


def test_cli_on_the_recorded_run(recorded):
    base, _, fs = recorded
    runner = CliRunner()
    runs = runner.invoke(main, ["runs", "--dir", str(base / "runinfo")])
    assert runs.exit_code == 0 and "failed" in runs.output
    failed = runner.invoke(main, ["tasks", "latest", "--state", "failed",
                                  "--dir", str(base / "runinfo")])
    assert failed.exit_code == 0 and "broken" in failed.output
    prov = runner.invoke(main, ["graph", "latest", "--format", "prov",
                                "--dir", str(base / "runinfo")])
    assert prov.exit_code == 0 and '"activity"' in prov.output


def test_identical_calls_in_a_session_each_have_a_row(recorded):
    _, store, fs = recorded
    again = [t for t in store.tasks() if t["tid"] == str(fs["cached1again"].tid)]
    assert len(again) == 1
    assert (again[0]["state"], again[0]["memo"]) == ("memo", "hit")
    assert again[0]["key"] == f"{fs['cached1'].key}#{fs['cached1again'].tid}"


def test_bash_exit_code_and_streams(recorded):
    base, store, fs = recorded
    assert _task(store, fs["produce"])["exit_code"] == 0
    row = _task(store, fs["exits"])
    assert (row["state"], row["exit_code"]) == ("failed", 3)
    assert row["stderr"] == str(base / "exits.err")


def test_a_run_ends_when_its_client_leaves_a_shared_scheduler(tmp_path):
    import distributed

    with dask.config.set({"daskflow.run-dir": str(tmp_path / "runinfo")}), \
            distributed.LocalCluster(n_workers=1, dashboard_address=":0") as cluster:
        with daskflow.Client(cluster.scheduler_address) as c, c.as_current():
            assert after(41).result() == 41
        until(lambda: not any(n.startswith("daskflow-provenance")
                              for n in cluster.scheduler.plugins),
              "the run's plugin stayed on the scheduler", timeout=10, interval=0.05)
        run_dir = find_run(str(tmp_path / "runinfo"), "latest")
        with ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True) as store:
            until(lambda: store.runs()[0]["end_time"] is not None,  # the writer's last batch
                  "the run's end was never recorded", timeout=20, interval=0.05)
            (run,) = store.runs()
            assert run["status"] == "completed" and run["end_time"]
            assert [t["state"] for t in store.tasks()] == ["done"]


def test_only_changes_of_state_are_recorded(tmp_path):
    """A queued task is told to the plugins as waiting -> waiting, then
    waiting -> queued: only the second is a transition worth a row."""
    with dask.config.set({"daskflow.run-dir": str(tmp_path / "runinfo")}), \
            daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0") as c, \
            c.as_current():
        assert c.gather(after.map(range(20))) == list(range(20))  # more than a worker takes
        run_dir = find_run(str(tmp_path / "runinfo"), "latest")
    with ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True) as store:
        until(lambda: store.runs()[0]["end_time"] is not None,
              "the run's end was never recorded", timeout=20, interval=0.05)
        moves = [(t["start_state"], t["finish_state"]) for t in store.transitions()]
    assert ("waiting", "queued") in moves and ("queued", "processing") in moves
    assert [m for m in moves if m[0] == m[1]] == []
