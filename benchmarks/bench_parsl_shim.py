"""What running a Parsl script on daskflow's shim costs, against daskflow's own API and Parsl.

Run from the repository root (2 cores: ~8 minutes when they are quiet, half
an hour when other work shares them; ``--quick`` 1.5 minutes)::

    python benchmarks/bench_parsl_shim.py [--quick] [--rounds N] [--json out.json]

One Parsl script (``import parsl``, ``@python_app``, plain loops of calls,
``parsl.load(config)`` with a HighThroughputExecutor of 2 workers x 1 core on a
LocalProvider, logging off) runs three ways, each run in a fresh interpreter
started in a scratch directory:

* ``shim``: ``python -m daskflow.parsl script.py`` (``import parsl`` gives
  daskflow.parsl; the HTEX becomes a local pool of 2 workers x 1 thread);
* ``parsl``: the same file with the real Parsl, from a separate virtualenv
  (``--parsl-venv``, default ``.venv-bench``) that ``scripts/lib/venv.sh`` makes
  with this checkout's ``bench`` extra, so Parsl never enters the test venv;
* ``daskflow``: the same workloads with daskflow's own API
  (``daskflow.python_app``, ``daskflow.Client(n_workers=2, threads_per_worker=1)``).

Each run first waits until both workers answer, warms up, then times only the
workloads, ``--repeat`` times each: N no-op calls collected with ``.result()``
and their futures dropped (tasks/s; dropping a future costs the client as
much as a fifth of a call, and Parsl's task table, which the shim keeps too,
lets go of them later, in the next measurement) and a chain of calls each
taking the previous future (ms per hop).
Runs alternate between the arms for ``--rounds`` rounds; the table gives the
medians. The shim must cost at most 10 % more than daskflow's own API in
wall-clock time (``FAIL`` line and exit status 1 otherwise). Each run also
reports its own process's CPU time per task and per hop (the client and, on
daskflow, the Dask scheduler): on a shared machine, where wall-clock figures
swing with other load, it swings less and so shows better what the shim adds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 1.10  # the shim's cost over daskflow's own API
MARK = "BENCH-RESULT "
FULL = {"n": 5000, "hops": 1000, "repeat": 3, "rounds": 3}
QUICK = {"n": 500, "hops": 100, "repeat": 3, "rounds": 1}
ROWS = (("tasks/s", "no-op calls + .result()"), ("ms/hop", "chain"),
        ("cpu ms/task", "  driver CPU, no-op calls"), ("cpu ms/hop", "  driver CPU, chain"))

# Shared by both scripts: wait for both workers, warm up, time the workloads.
WORKLOADS = '''
def wait_for_workers(timeout=180.0):
    """Until two distinct worker processes have answered (HTEX starts its own late)."""
    deadline = time.monotonic() + timeout
    while len({f.result() for f in [pid(0.05) for _ in range(4)]}) < 2:
        if time.monotonic() > deadline:
            sys.exit("the two workers did not both answer within %.0f s" % timeout)


def throughput(n):
    """tasks/s, and this process's CPU ms per task (client and, on Dask, scheduler)."""
    t0, c0 = time.perf_counter(), time.process_time()
    futures = [noop(i) for i in range(n)]
    results = [f.result() for f in futures]
    del futures  # letting go of its future is part of what a call costs the client
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert results == list(range(n))
    return n / elapsed, cpu / n * 1e3


def chain(hops):
    """ms per hop, and this process's CPU ms per hop."""
    t0, c0 = time.perf_counter(), time.process_time()
    f = noop(0)
    for _ in range(hops - 1):
        f = noop(f)
    assert f.result() == 0
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return elapsed / hops * 1e3, cpu / hops * 1e3


def measure(n, hops, repeat):
    wait_for_workers()
    throughput(min(n, 200))
    chain(min(hops, 20))
    out = {"tasks/s": [], "cpu ms/task": [], "ms/hop": [], "cpu ms/hop": []}
    for _ in range(repeat):
        gc.collect()
        for unit, value in zip(("tasks/s", "cpu ms/task"), throughput(n)):
            out[unit].append(value)
        gc.collect()
        for unit, value in zip(("ms/hop", "cpu ms/hop"), chain(hops)):
            out[unit].append(value)
    print("%s%s" % (MARK, json.dumps(out)), flush=True)
'''

# The apps and workloads, the same in both scripts (each imports python_app).
APPS = f'''@python_app
def noop(x):
    return x


@python_app
def pid(delay):
    import os
    import time
    time.sleep(delay)
    return os.getpid()

{WORKLOADS}'''

# The Parsl script, run unchanged by the shim and by the real Parsl.
PARSL_SCRIPT = f'''\
import gc
import json
import sys
import time

import parsl
from parsl import python_app
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

MARK = {MARK!r}


{APPS}

config = Config(
    executors=[HighThroughputExecutor(
        label="htex", address="127.0.0.1", max_workers_per_node=2, cores_per_worker=1,
        provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1))],
    initialize_logging=False, usage_tracking=0)
parsl.load(config)
n, hops, repeat = (int(a) for a in sys.argv[1:4])
measure(n, hops, repeat)
parsl.dfk().cleanup()
'''

# The same workloads with daskflow's own API.
DASKFLOW_SCRIPT = f'''\
import gc
import json
import sys
import time

import daskflow
from daskflow import python_app

MARK = {MARK!r}


{APPS}

if __name__ == "__main__":
    with daskflow.Client(n_workers=2, threads_per_worker=1):
        n, hops, repeat = (int(a) for a in sys.argv[1:4])
        measure(n, hops, repeat)
'''


def parsl_python(venv: str) -> str:
    """The interpreter of ``venv`` with the real Parsl, made (or checked) by
    ``scripts/lib/venv.sh`` with this checkout's ``bench`` extra."""
    venv = os.path.abspath(venv)
    subprocess.run(["bash", "-c", '. scripts/lib/venv.sh && venv_install "$1" bench', "-",
                    venv], cwd=ROOT, check=True)
    return os.path.join(venv, "bin", "python")


def commands(scripts: dict, parsl_py: str | None, sizes: list[str]) -> dict:
    """arm -> (argv, environment)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    arms = {"shim": ([sys.executable, "-m", "daskflow.parsl", scripts["parsl"], *sizes], env),
            "daskflow": ([sys.executable, scripts["daskflow"], *sizes], env)}
    if parsl_py:
        # HTEX starts process_worker_pool.py and the interchange from PATH
        penv = dict(os.environ, PATH=os.path.dirname(parsl_py) + os.pathsep
                    + os.environ["PATH"])
        penv.pop("PYTHONPATH", None)
        arms["parsl"] = ([parsl_py, scripts["parsl"], *sizes], penv)
    return arms


def run_arm(argv: list[str], env: dict, log: str) -> dict:
    """One fresh interpreter in a scratch directory (its runinfo goes there)."""
    work = tempfile.mkdtemp(prefix="bench-parsl-shim-")
    try:
        with open(log, "a") as err:
            done = subprocess.run(argv, env=env, cwd=work, stdout=subprocess.PIPE,
                                  stderr=err, text=True, timeout=1800, check=False)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith(MARK)]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode} without figures; "
                               f"see {log}")
        return json.loads(lines[-1][len(MARK):])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:,.0f}"


def report(med: dict, values: dict) -> tuple[str, list[str]]:
    """The table and the failures (shim cost over daskflow's own > LIMIT)."""
    head = ["workload", "unit", "shim", "daskflow", "parsl", "shim/daskflow cost",
            "shim/parsl cost"]
    rows, failures = [], []
    for unit, name in ROWS:
        m = {arm: med[arm][unit] for arm in med}
        # a cost is 1/rate for tasks/s; a ratio below 1 means the shim is cheaper
        cost = (lambda a, b: b / a) if unit == "tasks/s" else (lambda a, b: a / b)
        own = cost(m["shim"], m["daskflow"])
        # Parsl's driver CPU leaves out its interchange (a process of its own): not compared
        vs_parsl = cost(m["shim"], m["parsl"]) if "parsl" in m and unit[:3] != "cpu" else None
        cells = {arm: f"{fmt(m[arm])} [{fmt(min(values[arm][unit]))}-"
                      f"{fmt(max(values[arm][unit]))}]" for arm in m}
        rows.append([name, unit + (" ^" if unit == "tasks/s" else " v"), cells["shim"],
                     cells["daskflow"], cells.get("parsl", "-"),
                     f"{own:.2f}x", f"{vs_parsl:.2f}x" if vs_parsl else "-"])
        if own > LIMIT and not unit.startswith("cpu"):
            failures.append(f"{name}: the shim costs {own:.2f}x daskflow's own API "
                            f"(limit {LIMIT:.2f}x)")
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]), \
        failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"sizes {QUICK['n']} calls / {QUICK['hops']} hops, one round")
    ap.add_argument("--n", type=int, help="no-op calls per measurement")
    ap.add_argument("--hops", type=int, help="calls in the chain")
    ap.add_argument("--repeat", type=int, help="measurements per run")
    ap.add_argument("--rounds", type=int, help="fresh runs of each arm, alternating")
    ap.add_argument("--parsl-venv", default=os.environ.get("DASKFLOW_BENCH_VENV", ".venv-bench"),
                    help="virtualenv for the real Parsl (made if missing; relative to the "
                         "repository root)")
    ap.add_argument("--no-parsl", action="store_true", help="skip the real Parsl")
    ap.add_argument("--json", metavar="PATH", help="write the figures to PATH")
    args = ap.parse_args(argv)
    size = dict(QUICK if args.quick else FULL)
    size.update({k: getattr(args, k) for k in size if getattr(args, k) is not None})
    parsl_py = None
    if not args.no_parsl:
        parsl_py = parsl_python(os.path.join(ROOT, args.parsl_venv))
    scratch = tempfile.mkdtemp(prefix="bench-parsl-shim-scripts-")
    log = os.path.join(tempfile.gettempdir(), "bench_parsl_shim.log")
    open(log, "w").close()
    scripts = {}
    for name, text in (("parsl", PARSL_SCRIPT), ("daskflow", DASKFLOW_SCRIPT)):
        scripts[name] = os.path.join(scratch, f"workload_{name}.py")
        with open(scripts[name], "w") as f:
            f.write(text)
    arms = commands(scripts, parsl_py, [str(size[k]) for k in ("n", "hops", "repeat")])
    values = {arm: {unit: [] for unit, _ in ROWS} for arm in arms}
    t0 = time.perf_counter()
    try:
        order = list(arms)
        for r in range(size["rounds"]):
            for arm in order[r % len(order):] + order[:r % len(order)]:  # rotate per round
                cmd, env = arms[arm]
                print(f"round {r + 1}/{size['rounds']}: {arm} ...", flush=True)
                for unit, got in run_arm(cmd, env, log).items():
                    values[arm][unit] += got
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    med = {arm: {u: statistics.median(v) for u, v in by.items()} for arm, by in values.items()}
    versions = subprocess.run([parsl_py, "-c", "import parsl; print(parsl.__version__)"],
                              capture_output=True, text=True, check=False).stdout.strip() \
        if parsl_py else None
    print(f"\nsizes {size}; {os.cpu_count()} cpus; parsl {versions or '-'}; "
          f"{time.perf_counter() - t0:.0f} s\n")
    table, failures = report(med, values)
    print(table)
    print("\nmedians over rounds x repeat, [min-max]; ^ higher is better, v lower is better; "
          "a cost ratio below 1.00x means the shim is cheaper.\ndriver CPU: the script's own "
          "process (client and Dask scheduler; for Parsl, not its interchange), less "
          "swayed than wall-clock time by other load on the machine.")
    if args.json:
        meta = {"sizes": size, "cpus": os.cpu_count(), "python": platform.python_version(),
                "parsl": versions}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "medians": med, "values": values, "failures": failures},
                      f, indent=2)
    for failure in failures:
        print("FAIL " + failure)
    if not failures:
        print(f"OK the shim costs at most {LIMIT:.2f}x daskflow's own API")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
