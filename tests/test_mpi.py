"""MPI apps with a real MPI (the mpich and mpi4py wheels of the test extra):
bash and Python apps launched with mpiexec, slots that keep concurrent MPI
apps from oversubscribing a block, clear errors at call time."""

from __future__ import annotations

import os
import re
import shutil
import sys

import pytest
from waiting import until

import daskflow
from daskflow import bash_app, python_app
from daskflow.errors import BashExitFailure, MpiUnavailable
from daskflow.worker.mpi import MpiSpec, mpi_command

HAVE_MPI = shutil.which("mpiexec") is not None or os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "mpiexec"))
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="no mpiexec (the test extra installs mpich)")


@bash_app
def hello(stdout=None, parsl_resource_specification=None):
    return 'echo "rank $PMI_RANK of $PMI_SIZE"'


@bash_app
def explicit(stdout=None, resource_specification=None):
    return 'echo "prefix=$DASKFLOW_MPI_PREFIX"; $PARSL_MPI_PREFIX hostname'


@python_app
def ranks():
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    for turn in range(comm.size):  # one at a time: the launcher may merge lines written at once
        if turn == comm.rank:
            print(f"hello from rank {comm.rank}", flush=True)
        comm.Barrier()
    return comm.gather(comm.rank * 10, root=0)


@python_app
def rank_fails(which):
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == which:
        raise ValueError(f"rank {which} gives up")
    MPI.COMM_WORLD.Barrier()
    return "never"


@bash_app
def timed(log, parsl_resource_specification=None):
    return f'echo "start $(date +%s.%N)" >> {log}.$PMI_RANK; sleep 1; ' \
           f'echo "end $(date +%s.%N)" >> {log}.$PMI_RANK'


def _local_default_with(slots: int):
    """A local default whose block has ``slots`` MPI slots, whatever this machine has."""
    import dask

    with dask.config.set({"daskflow.local.mpi-slots": slots}), daskflow.Client(
            n_workers=2, threads_per_worker=1, dashboard_address=":0",
            set_as_default=False) as c, c.as_current():
        yield c


@pytest.fixture(scope="module")
def two_slots():
    yield from _local_default_with(2)


def _runs_overlap(tmp_path, prefix: str) -> bool:
    """Whether the two runs logged by ``timed`` (start/end per rank) overlapped."""
    overlap = []
    for rank in (0, 1):
        words = (tmp_path / f"{prefix}.{rank}").read_text().split()
        starts = sorted(float(t) for kind, t in zip(words[::2], words[1::2]) if kind == "start")
        ends = sorted(float(t) for kind, t in zip(words[::2], words[1::2]) if kind == "end")
        assert len(starts) == len(ends) == 2
        overlap.append(starts[1] < ends[0])
    return all(overlap)


def test_resource_specification_shapes():
    assert MpiSpec.parse("a", {"num_ranks": 4}) == MpiSpec(1, 4, 4)
    assert MpiSpec.parse("a", {"num_nodes": 2, "ranks_per_node": 3}) == MpiSpec(2, 6, 3)
    assert MpiSpec.parse("a", {"num_ranks": 5, "ranks_per_node": 2}) == MpiSpec(3, 5, 2)
    assert MpiSpec.parse("a", {"cores": 2}) is None
    with pytest.raises(ValueError, match="do not fit"):
        MpiSpec.parse("a", {"num_nodes": 1, "num_ranks": 4, "ranks_per_node": 2})
    with pytest.raises(ValueError, match="num_ranks must be an int >= 1"):
        MpiSpec.parse("a", {"num_ranks": 0})


def test_the_prefix_is_applied_unless_the_command_uses_it():
    assert mpi_command("./a.out x", "mpiexec -n 2") == "mpiexec -n 2 bash -c './a.out x'"
    for used in ("$DASKFLOW_MPI_PREFIX ./a.out", "${PARSL_MPI_PREFIX} ./a.out"):
        assert mpi_command(used, "mpiexec -n 2") == used


@needs_mpi
def test_bash_mpi_app_runs_two_ranks(two_slots, tmp_path):
    out = tmp_path / "hello.out"
    assert hello(stdout=str(out), parsl_resource_specification={"num_ranks": 2}).result(60) == 0
    # the launcher gathers both ranks' lines (written at once, they may share a line)
    assert sorted(re.findall(r"rank \d of \d", out.read_text())) == ["rank 0 of 2", "rank 1 of 2"]


@bash_app
def ranks_sleep(piddir, parsl_resource_specification=None):
    return f"echo $$ > {piddir}/rank.$PMI_RANK; exec sleep 60"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"  # a zombie is gone too
    except FileNotFoundError:
        return False


@needs_mpi
def test_cancelling_an_mpi_app_stops_the_launcher_and_its_ranks(two_slots, tmp_path):
    f = ranks_sleep(str(tmp_path), parsl_resource_specification={"num_ranks": 2})
    pidfiles = [tmp_path / "rank.0", tmp_path / "rank.1"]
    until(lambda: all(p.exists() and p.read_text().strip() for p in pidfiles),
          "the ranks never started", timeout=60, interval=0.05)
    pids = [int(p.read_text()) for p in pidfiles]
    assert all(_alive(pid) for pid in pids)
    assert f.cancel() is True
    assert isinstance(f.exception(timeout=20), daskflow.AppCancelled)
    until(lambda: not any(_alive(pid) for pid in pids), "a rank outlived the cancel",
          timeout=10, interval=0.05)
    assert hello(parsl_resource_specification={"num_ranks": 2}).result(60) == 0  # slots freed


@bash_app
def ranks_busy(parsl_resource_specification=None):
    return ("python3 -c 'import time; end = time.process_time() + 0.3\n"
            "while time.process_time() < end: pass'")


@needs_mpi
def test_what_an_mpi_app_used_counts_every_rank(two_slots):
    """Its usage comes from the launcher's process tree: both ranks' CPU."""
    from daskflow.client.session import session_of
    from daskflow.provenance.store import DB_NAME, ProvenanceStore

    f = ranks_busy(parsl_resource_specification={"num_ranks": 2})
    assert f.result(60) == 0
    two_slots.sync(two_slots.scheduler.daskflow_workflow, settle=True)
    db = os.path.join(session_of(two_slots).run_dir, DB_NAME)
    with ProvenanceStore(db, readonly=True) as store:
        until(lambda: any(t["key"] == f.key and t["cpu_user"] is not None
                          for t in store.tasks()), "the MPI app's usage was never recorded",
              timeout=20, interval=0.1)
        (row,) = [t for t in store.tasks() if t["key"] == f.key]
    assert row["cpu_user"] + row["cpu_system"] >= 0.55, row  # 2 ranks x 0.3 s


@needs_mpi
def test_the_prefix_is_exposed_to_the_command(two_slots, tmp_path):
    out = tmp_path / "explicit.out"
    explicit(stdout=str(out), resource_specification={"num_ranks": 2}).result(60)
    lines = out.read_text().splitlines()
    assert lines[0].startswith("prefix=") and "mpiexec -n 2 -ppn 2" in lines[0]
    assert len(lines) == 3  # one echo, then hostname once per rank


@needs_mpi
def test_python_mpi_app_returns_rank_0s_value_and_keeps_every_ranks_output(two_slots, tmp_path):
    out = tmp_path / "ranks.out"
    value = ranks(stdout=str(out), parsl_resource_specification={"num_ranks": 2}).result(60)
    assert value == [0, 10]
    assert sorted(re.findall(r"hello from rank \d", out.read_text())) == [
        "hello from rank 0", "hello from rank 1"]


@needs_mpi
def test_python_mpi_app_failures(two_slots):
    with pytest.raises(ValueError, match="rank 0 gives up"):  # rank 0's own exception
        rank_fails(0, parsl_resource_specification={"num_ranks": 2}).result(60)
    with pytest.raises(BashExitFailure, match="rank 1 gives up"):  # another rank: its traceback
        rank_fails(1, parsl_resource_specification={"num_ranks": 2}).result(60)


@needs_mpi
def test_two_mpi_apps_on_a_two_slot_block_run_one_after_the_other(two_slots, tmp_path):
    spec = {"num_ranks": 2}
    two_slots.gather([timed(str(tmp_path / "timed"), parsl_resource_specification=spec)
                      for _ in range(2)])
    assert not _runs_overlap(tmp_path, "timed")  # the second started after the first ended


@needs_mpi
def test_with_four_slots_the_same_two_apps_overlap(tmp_path):
    """The control of the test above: its check does see concurrent runs."""
    for c in _local_default_with(4):
        spec = {"num_ranks": 2}
        c.gather([timed(str(tmp_path / "timed"), parsl_resource_specification=spec)
                  for _ in range(2)])
    assert _runs_overlap(tmp_path, "timed")


def test_more_ranks_than_any_block_fails_at_call_time(two_slots):
    with pytest.raises(MpiUnavailable, match="needs 3 ranks but the largest block"):
        hello(parsl_resource_specification={"num_ranks": 3})


def test_an_mpi_app_on_a_client_without_mpi_slots_fails_at_call_time(tmp_path):
    profile = tmp_path / "nompi.yaml"
    profile.write_text("name: nompi\nscheduler: {dashboard: 127.0.0.1:0}\npools:\n"
                       "  - label: cpu\n    provider: local\n    workers_per_node: 1\n"
                       "    mpi: {slots: 0}\n"
                       "    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}\n")
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        with pytest.raises(MpiUnavailable, match="no pool it may run on has MPI slots"):
            hello(parsl_resource_specification={"num_ranks": 1})
