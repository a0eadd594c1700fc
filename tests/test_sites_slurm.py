"""Pools of workers from real Slurm jobs (single-node Slurm on localhost,
started by scripts/start-slurm.sh from the test command)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import dask
import pytest
from waiting import until

import daskflow
from daskflow import python_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sbatch") is None or subprocess.run(
        ["scontrol", "ping"], capture_output=True).returncode != 0,
        reason="Slurm is not running here (scripts/start-slurm.sh starts it, as root)"),
]

MIXED = """
name: mixed
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: login
    provider: local
    workers_per_node: 1
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
  - label: batch
    provider: slurm
    block: {cores: 1, memory: 1GB, walltime: "00:10:00", queue: debug}
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
"""


@python_app
def where(*_):
    import distributed
    return distributed.get_worker().name, os.environ.get("SLURM_JOB_ID")


def _our_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if "daskflow-" in line]


ELASTIC = """
name: slurm-elastic
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: cpu
    provider: slurm
    block: {cores: 1, memory: 1GB, walltime: "00:10:00", queue: debug}
    scaling: {strategy: simple, init_blocks: 0, min_blocks: 0, max_blocks: 2, max_idletime: 3s}
"""


@python_app
def slow(seconds):
    import time
    time.sleep(seconds)
    return os.environ.get("SLURM_JOB_ID")


def test_blocks_scale_0_n_0_in_squeue(tmp_path):
    profile = tmp_path / "elastic.yaml"
    profile.write_text(ELASTIC)
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        time.sleep(2)
        assert _our_jobs() == []  # no work, no job
        futures = [slow(2) for _ in range(6)]
        until(lambda: len(_our_jobs()) == 2, "two sbatch jobs for the work", timeout=90)
        jobs = set(_our_jobs())
        assert set(c.gather(futures)) <= jobs
        until(lambda: _our_jobs() == [], "idle jobs were not cancelled", timeout=90)


def test_a_cancelled_block_is_replaced_and_its_tasks_complete(tmp_path):
    profile = tmp_path / "elastic.yaml"
    profile.write_text(ELASTIC.replace("max_blocks: 2", "max_blocks: 1"))
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        futures = [slow(1) for _ in range(8)]
        until(lambda: any(f.done() for f in futures), "no task finished on the first block", timeout=90)
        (first,) = _our_jobs()
        subprocess.run(["scancel", first], check=True)
        results = c.gather(futures)
        assert len(results) == 8
        assert any(job != first for job in results)  # a replacement block ran the rest
    until(lambda: _our_jobs() == [], "jobs outlived the client", timeout=30)


def test_workers_come_from_sbatch_jobs_and_leave_with_the_client(tmp_path):
    with daskflow.Client(profile="slurm-localhost", set_as_default=False) as c, c.as_current():
        name, job_id = where().result(timeout=120)
        assert job_id in _our_jobs() and name.startswith("cpu-")
    until(lambda: _our_jobs() == [], "the Slurm job outlived the client", timeout=30)


def test_local_and_slurm_pools_on_one_scheduler(tmp_path):
    profile = tmp_path / "mixed.yaml"
    profile.write_text(MIXED)
    on_batch = python_app(executors=["batch"])(where.__wrapped__)
    on_login = python_app(executors=["login"])(where.__wrapped__)
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        c.wait_for_workers(2, timeout=120)
        batch = c.gather([on_batch(i) for i in range(4)])
        login = c.gather([on_login(i) for i in range(4)])
        assert {job for _, job in batch} == set(_our_jobs()) and None not in {j for _, j in batch}
        assert {name for name, _ in login} == {"login-0-0"}
        assert {job for _, job in login} == {None}


def test_a_block_launched_with_srun_names_its_workers_by_node(tmp_path):
    """launcher: srun — the worker runs as a job step, one per node (one node here)."""
    profile = tmp_path / "srun.yaml"
    profile.write_text(ELASTIC.replace("provider: slurm", "provider: slurm\n    launcher: srun"))
    step = python_app(lambda: (__import__("distributed").get_worker().name,
                               os.environ.get("SLURM_STEP_ID"), os.environ.get("SLURM_PROCID")))
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        name, step_id, rank = step().result(timeout=120)
    assert name == "cpu-0-n0" and step_id == "0" and rank == "0"


MPI_POOL = """
name: slurm-mpi
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: cpu
    provider: slurm
    mpi: {launcher: srun, slots: 1}
    block: {cores: 2, memory: 1GB, walltime: "00:10:00", queue: debug}
    scaling: {strategy: simple, init_blocks: 0, min_blocks: 0, max_blocks: 1, max_idletime: 3s}
"""


def test_mpi_apps_on_a_slurm_block_are_launched_with_srun(tmp_path):
    """One MPI slot (node) per block: two 2-rank apps run as srun steps, one after the other."""
    from daskflow import bash_app

    @bash_app
    def ranks(stdout=None, parsl_resource_specification=None):
        return 'echo "start $SLURM_PROCID/$SLURM_NTASKS step $SLURM_STEP_ID $(date +%s.%N)"; ' \
               'sleep 1; echo "end $(date +%s.%N)"'

    profile = tmp_path / "mpi.yaml"
    profile.write_text(MPI_POOL)
    spec = {"num_nodes": 1, "num_ranks": 2}
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        outs = [tmp_path / f"run{i}.out" for i in range(2)]
        c.gather([ranks(stdout=str(o), parsl_resource_specification=spec) for o in outs])
    runs = []
    for out in outs:
        words = out.read_text().split()
        assert sorted(w for w in words if "/" in w) == ["0/2", "1/2"]  # two ranks under srun
        stamps = [float(words[i + 1]) for i, w in enumerate(words) if w in ("end",)]
        starts = [float(words[i + 4]) for i, w in enumerate(words) if w == "start"]
        runs.append((min(starts), max(stamps)))
    runs.sort()
    assert runs[1][0] >= runs[0][1]  # the block's one slot: never both at once


def test_tls_reaches_the_batch_jobs(tmp_path):
    profile = tmp_path / "secure.yaml"
    profile.write_text(ELASTIC.replace("scheduler: {dashboard: 127.0.0.1:0}",
                                       "scheduler: {dashboard: 127.0.0.1:0, security: tls}"))
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        assert c.scheduler.address.startswith("tls://")
        job = slow(0).result(timeout=120)
        assert job is not None
        assert all(a.startswith("tls://") for a in c.scheduler_info()["workers"])


def test_the_same_script_runs_on_local_and_on_slurm(tmp_path):
    import sys

    script = tmp_path / "wf.py"
    script.write_text(
        "import os\n"
        "from daskflow import python_app, bash_app\n"
        "@python_app\n"
        "def square(x):\n"
        "    return x * x\n"
        "@bash_app\n"
        "def hello(stdout=None):\n"
        "    return 'echo hello from ${SLURM_JOB_ID:-local}'\n"
        "if __name__ == '__main__':\n"
        "    out = os.path.join(os.getcwd(), 'hello.txt')\n"
        "    print('SUM', sum(f.result() for f in square.map(range(10))), hello(stdout=(out, 'w')).result())\n"
        "    print(open(out).read().strip())\n")
    outputs = {}
    for profile in ("local", "slurm-localhost"):
        proc = subprocess.run([sys.executable, "-m", "daskflow.cli", "run", "--profile", profile,
                               str(script)], capture_output=True, text=True, timeout=180,
                              cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        outputs[profile] = proc.stdout.split("\n")
    assert outputs["local"][0] == outputs["slurm-localhost"][0] == "SUM 285 0"
    assert outputs["local"][1] == "hello from local"
    assert outputs["slurm-localhost"][1].startswith("hello from ") and \
        outputs["slurm-localhost"][1] != "hello from local"
    assert _our_jobs() == []  # the run's jobs ended with it


def test_jobs_end_by_themselves_after_the_driver_is_killed(tmp_path):
    """kill -9 of the driver (and its scheduler): the workers in the batch
    job give up on the scheduler after the death timeout and the job ends."""
    import signal
    import sys

    from daskflow.sites.start import DEATH_TIMEOUT

    script = tmp_path / "wf.py"
    script.write_text(
        "import time\n"
        "from daskflow import python_app\n"
        "@python_app\n"
        "def one():\n"
        "    return 1\n"
        "if __name__ == '__main__':\n"
        "    print('RESULT', one().result(), flush=True)\n"
        "    time.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, "-m", "daskflow.cli", "run", "--profile",
                             "slurm-localhost", str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=tmp_path, start_new_session=True)
    assert proc.stdout.readline().startswith("RESULT 1")
    assert len(_our_jobs()) == 1
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    killed = time.time()
    until(lambda: _our_jobs() == [], "the job did not end without its driver",
          timeout=DEATH_TIMEOUT + 60)
    print(f"job ended {time.time() - killed:.1f} s after the driver was killed")


# --- blocks whose jobs cannot run their workers: WorkersUnavailable, not a hang

BROKEN = """
name: slurm-broken
scheduler: {dashboard: 127.0.0.1:0}
pools:
  - label: cpu
    provider: slurm
    block:
      cores: 1
      memory: 1GB
      walltime: "00:05:00"
      queue: debug
      worker_init: ["echo 'site set-up failed: no scratch space' >&2", "exit 3"]
    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}
"""


@python_app
def add(a, b):
    return a + b


def _watch(client):
    from daskflow.sites.watch import CALLBACK

    return client._owns_cluster.scheduler.plugins[CALLBACK]


def test_a_job_that_dies_at_once_fails_the_waiting_call_quoting_its_stderr(tmp_path):
    profile = tmp_path / "broken.yaml"
    profile.write_text(BROKEN)
    start = time.monotonic()
    with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
        assert time.monotonic() - start < 30  # the client does not wait for batch jobs
        with pytest.raises(daskflow.WorkersUnavailable) as info:
            add(1, 2).result(timeout=90)
        seconds = time.monotonic() - start
    print(f"WorkersUnavailable {seconds:.1f} s after the client was asked for")
    message = str(info.value)
    assert message.startswith("no worker of pool 'cpu' can run this task: no worker could start")
    assert re.search(r"block 'cpu-0' \(slurm job \d+\) ended", message), message
    assert "site set-up failed: no scratch space" in message
    assert seconds < 60
    assert _our_jobs() == []


def test_a_job_whose_worker_never_joins_fails_after_the_startup_timeout(tmp_path):
    profile = tmp_path / "stuck.yaml"
    profile.write_text(BROKEN.replace('"exit 3"', '"sleep 600"').replace(
        "site set-up failed: no scratch space", "waiting for a licence server"))
    with dask.config.set({"daskflow.workers.startup-timeout": "4s",
                          "daskflow.workers.batch-poll-interval": "1s"}):
        with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
            start = time.monotonic()
            with pytest.raises(daskflow.WorkersUnavailable) as info:
                add(1, 2).result(timeout=90)
            seconds = time.monotonic() - start
    message = str(info.value)
    assert "no worker joined within 4 s (daskflow.workers.startup-timeout)" in message
    assert re.search(r"block 'cpu-0' \(slurm job \d+\) is running \(RUNNING\)", message), message
    assert "waiting for a licence server" in message
    assert 4 <= seconds < 40
    until(lambda: _our_jobs() == [], "the stuck job outlived the client", timeout=30)


def test_a_queued_job_is_never_a_failure(tmp_path):
    """A held job stays PENDING: however short the start-up timeout, its
    pool's tasks wait (the timeout counts from the job's start)."""
    profile = tmp_path / "held.yaml"
    profile.write_text(ELASTIC.replace("queue: debug}", "queue: debug, job_extra: [--hold]}")
                       .replace("init_blocks: 0, min_blocks: 0", "init_blocks: 1, min_blocks: 1"))
    with dask.config.set({"daskflow.workers.startup-timeout": "1s",
                          "daskflow.workers.batch-poll-interval": "0.5s"}):
        with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
            future = add(1, 2)
            with pytest.raises(TimeoutError):
                future.result(timeout=6)
            (job,) = _watch(c).members.values()
            assert job.state == "PENDING" and job.running_since is None
            assert _watch(c).failure("cpu") is None
    until(lambda: _our_jobs() == [], "the held job outlived the client", timeout=30)


def test_a_healthy_slurm_pool_is_watched_and_not_failed(tmp_path):
    profile = tmp_path / "healthy.yaml"
    profile.write_text(BROKEN.replace(
        'worker_init: ["echo \'site set-up failed: no scratch space\' >&2", "exit 3"]',
        "worker_init: ['echo starting a worker >&2']"))
    with dask.config.set({"daskflow.workers.batch-poll-interval": "0.5s"}):
        with daskflow.Client(profile=str(profile), set_as_default=False) as c, c.as_current():
            assert add(1, 2).result(timeout=120) == 3
            (job,) = _watch(c).members.values()
            # the watch asks Slurm every 0.5 s while the job runs its worker, and finds
            # no fault (the call may finish before its first look at a running job)
            until(lambda: job.state == "RUNNING", lambda: f"the watch saw the job {job.state}",
                  timeout=30, interval=0.1)
            assert job.running_since is not None and not job.ended
            assert _watch(c).failure("cpu") is None


def test_job_states_asks_squeue_about_queued_running_ended_and_forgotten_jobs():
    from daskflow.sites.job_status import ENDED, PENDING, RUNNING, job_states
    from daskflow.sites.providers import SlurmProvider

    slurm = SlurmProvider.status

    def submit(*args):
        out = subprocess.run(["sbatch", "-p", "debug", "-J", "jobstatus-probe", "--mem=100M",
                              "-o", "/dev/null", *args], capture_output=True, text=True,
                             check=True).stdout
        return out.split()[-1]  # "Submitted batch job N"

    held, running, failed = (submit("--hold", "--wrap", "sleep 60"),
                             submit("--wrap", "sleep 60"), submit("--wrap", "exit 3"))
    try:
        until(lambda: job_states(slurm, [running, failed]) ==
              {running: (RUNNING, "RUNNING"), failed: (ENDED, "FAILED")},
              "squeue did not list one job RUNNING and one FAILED", timeout=30)
        assert job_states(slurm, [held, "999999"]) == \
            {held: (PENDING, "PENDING"), "999999": (ENDED, "")}
        # every id unknown: squeue exits 1 ("Invalid job id specified"), an answer
        assert job_states(slurm, ["999999"]) == {"999999": (ENDED, "")}
    finally:
        subprocess.run(["scancel", held, running], check=True)


def test_a_failing_status_command_is_told_once_and_fails_no_pool(tmp_path):
    """squeue missing (sbatch and scancel still there): the watch cannot
    tell that the job died, says so once, and does not fail the pool on a guess."""
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in ("sbatch", "scancel"):
        (bin_dir / command).symlink_to(shutil.which(command))
    (tmp_path / "broken.yaml").write_text(BROKEN)
    script = tmp_path / "wf.py"
    script.write_text(
        "import daskflow\n"
        "from daskflow import python_app\n"
        "@python_app\n"
        "def add(a, b):\n"
        "    return a + b\n"
        "with daskflow.Client(profile='broken.yaml') as c:\n"
        "    try:\n"
        "        add(1, 2).result(timeout=8)\n"
        "    except TimeoutError:\n"
        "        print('STILL WAITING')\n")
    env = dict(os.environ, PATH=str(bin_dir), DASK_DASKFLOW__WORKERS__BATCH_POLL_INTERVAL="0.5s",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "STILL WAITING"
    told = [line for line in proc.stderr.splitlines() if "cannot tell whether" in line]
    assert len(told) == 1, proc.stderr
    assert "slurm jobs of pool(s) cpu" in told[0] and "squeue" in told[0]
