"""The embedded local default: started by the first app call with no client,
on loopback, one single-threaded worker process per core, closed at exit."""

from __future__ import annotations

import os
import pickle
import threading

import distributed
import pytest

import daskflow
from daskflow import python_app

QUICKSTART = '''
import os
import distributed
from daskflow import python_app, bash_app

@python_app
def multiply(a, b):
    return a * b

@bash_app
def echo_hello(stdout="echo-hello.stdout", stderr="echo-hello.stderr"):
    return 'echo "Hello World!"'

if __name__ == "__main__":
    print(multiply(5, 9).result())
    print(echo_hello().result())
    print(multiply(2, 2).result())
    client = distributed.default_client()
    client.wait_for_workers(os.cpu_count(), timeout=60)  # the app calls did not wait for all
    info = client.scheduler_info()
    print("SCHEDULER", info["address"])
    print("WORKERS", len(info["workers"]), os.cpu_count())
    print("THREADS", sorted({w["nthreads"] for w in info["workers"].values()}))
    print("LISTEN", sorted({a.rsplit(":", 1)[0] for addr, w in info["workers"].items()
                            for a in (addr, w["nanny"])}))
    print("MPI", sorted(w["resources"].get("mpi-ranks", 0) for w in info["workers"].values()))
    print("DASHBOARD", client.dashboard_link)
    print("POOLS", client.pools, type(client).__name__)
'''


def test_first_app_call_starts_a_local_cluster_and_exits_cleanly(run_script, tmp_path):
    proc = run_script(QUICKSTART)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["45", "0", "4"]
    assert (tmp_path / "echo-hello.stdout").read_text() == "Hello World!\n"
    out = dict(line.split(" ", 1) for line in lines[3:])
    assert out["SCHEDULER"].startswith("tcp://127.0.0.1:")
    workers, cores = out["WORKERS"].split()
    assert workers == cores
    assert out["THREADS"] == "[1]"
    # workers and their nannies listen on loopback only; the MPI slots sit on one worker
    assert out["LISTEN"] == "['tcp://127.0.0.1']", out["LISTEN"]
    assert out["MPI"] == str([0] * (int(cores) - 1) + [int(cores)]), out["MPI"]
    assert out["DASHBOARD"].startswith("http://127.0.0.1:")
    assert out["POOLS"] == "['local'] Client"
    # the dashboard link is logged once; the shutdown is quiet
    assert proc.stderr.count("dashboard: http://127.0.0.1:") == 1, proc.stderr
    for word in ("Traceback", "Error", "Exception", "Task was destroyed"):
        assert word not in proc.stderr, proc.stderr


def test_client_subclasses_distributed_client(client):
    assert isinstance(client, distributed.Client)
    assert isinstance(client, daskflow.Client)
    assert client.pools == ["local"]


def test_threads_in_this_process_on_loopback():
    """``processes=False`` (one worker in the driver's own process, as
    LocalCluster offers) keeps the default's loopback host."""
    @python_app
    def pid():
        import os
        return os.getpid()

    with daskflow.Client(processes=False, n_workers=1, dashboard_address=None,
                         set_as_default=False) as client, client.as_current():
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert pid().result(timeout=60) == os.getpid()


def test_workers_in_this_process_take_the_scripts_objects_by_reference():
    """With ``processes=False`` an argument of the script's own types (or of
    modules like ``threading`` whose objects do not pickle) is the very
    object in the task, as between threads; copies for workers elsewhere."""
    from daskflow.shipped import _SHARED

    class Tally:
        def __init__(self):
            self.seen = []

    @python_app
    def note(tally, gate, x):
        assert gate.wait(60)
        tally.seen.append(x)
        return id(tally)

    tally, gate = Tally(), threading.Event()
    with daskflow.Client(processes=False, n_workers=1, threads_per_worker=2,
                         dashboard_address=None, set_as_default=False) as client, \
            client.as_current():
        first = note(tally, gate, 1)
        rest = note.map([tally, tally], [gate, gate], [2, 3])
        gate.set()
        assert first.result(timeout=60) == id(tally)
        assert [f.result(timeout=60) for f in rest] == [id(tally)] * 2
        assert sorted(tally.seen) == [1, 2, 3]
        assert len(_SHARED) >= 2
    assert not _SHARED, "a closed client lets go of what it passed by reference"


def test_results_that_do_not_pickle_come_back_by_reference_in_process():
    from daskflow.shipped import _SHARED

    @python_app
    def make_lock(n):
        return {"n": n, "lock": threading.Lock()}

    @python_app
    def use(box):
        with box["lock"]:
            return box["n"]

    with daskflow.Client(processes=False, n_workers=1, threads_per_worker=2,
                         dashboard_address=None, set_as_default=False) as client, \
            client.as_current():
        box = make_lock(1)
        assert box.result(timeout=60)["n"] == 1
        assert box.result()["lock"] is box.result()["lock"]  # the very object
        assert use(box).result(timeout=60) == 1
        members = make_lock.map([2, 3], chunksize=2)
        assert [use(m).result(timeout=60) for m in members] == [2, 3]
        assert daskflow.gather(members)[1]["n"] == 3
    assert not _SHARED


def test_a_reference_cannot_be_taken_by_a_worker_elsewhere():
    from daskflow.shipped import NotLoadable, SharedObjects

    shared = SharedObjects()
    marker = shared.share(threading.Event())
    assert pickle.loads(pickle.dumps(marker)).load() is not None  # in this process
    shared.release()
    with pytest.raises(NotLoadable, match="passed by reference"):
        marker.load()


def test_a_users_distributed_client_is_used_as_is():
    @python_app
    def where():
        return distributed.get_worker().address

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as plain, plain.as_current():
        f = where()
        assert f.client is plain
        assert f.result() in plain.scheduler_info()["workers"]


def test_embedded_default_honours_dask_config(run_script):
    proc = run_script(
        "import dask, distributed\n"
        "from daskflow import python_app\n"
        "@python_app\n"
        "def one():\n"
        "    return 1\n"
        "if __name__ == '__main__':\n"
        "    with dask.config.set({'daskflow.local.n-workers': 1,\n"
        "                          'daskflow.local.dashboard-address': ':0'}):\n"
        "        assert one().result() == 1\n"
        "    print(len(distributed.default_client().scheduler_info()['workers']))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


def test_embedded_default_reads_environment_variables(run_script, monkeypatch):
    monkeypatch.setenv("DASK_DASKFLOW__LOCAL__N_WORKERS", "1")
    monkeypatch.setenv("DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS", "127.0.0.1:0")
    proc = run_script(
        "import distributed\n"
        "from daskflow import python_app\n"
        "@python_app\n"
        "def one():\n"
        "    return 1\n"
        "if __name__ == '__main__':\n"
        "    assert one().result() == 1\n"
        "    print(len(distributed.default_client().scheduler_info()['workers']))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
