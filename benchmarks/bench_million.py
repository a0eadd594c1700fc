"""A million calls: one plain workflow script of N no-op calls, run to the end.

    python benchmarks/bench_million.py [--calls 1000000] [--window 10000] [--json out.json]
                                       [--tracemalloc]

The benchmark writes a workflow script to a temporary directory and runs it
as a user would, ``python workflow.py``: no ``__main__`` guard, a
``@python_app`` no-op and a plain loop, ``futures.append(noop(i))``. Every
``--window`` calls the script waits for the futures it holds and drops
them (``--window 0``: it holds all N and waits once at the end), so the
futures it keeps are exactly the workflow's own. Provenance is recorded (the
default) into a scratch run directory, and the dashboard's Workflow page is
on: the provenance plugin registers it on the scheduler at the run's start,
and the benchmark loads it over HTTP every ``--page-every`` seconds.

The scheduler in a process of its own. The local default
(``daskflow.Client()``) runs its scheduler inside the driver, so the
driver's memory would include the scheduler's. Here a second script runs
``daskflow.client.local.local_cluster``, the very function the local
default calls: the same ``LocalCluster`` scheduler with its dashboard, the
low-latency plugin installed before anything joins, the watch of the worker
processes, and the workers in daskflow's own processes (2 x 1 thread, as
the default on this machine); only the driver is elsewhere. The workflow
script then connects with ``daskflow.Client(address)`` and tunes its stream
as the local default tunes its own (``latency.tune_client``); its first
call registers, as always, the provenance plugin (which adds the Workflow
page) and the worker fates plugin on that scheduler. The scheduler's
process is measured without its children (the worker processes).

What is measured:

* wall time: from starting the workflow script to its exit (interpreter
  start, cluster connection and closing included), and the loop alone
  (first call to last wait, as the script reports it);
* peak RSS of the driver and of the scheduler's process: exact, the
  kernel's high-water mark (``ru_maxrss`` from ``os.wait4`` on each child
  when it exits); a psutil thread also samples both RSS every 0.2 s;
* memory per finished call whose future was dropped: the slope of the
  driver's sampled RSS against finished calls, from the window that ends
  after 20 % of the calls to the last (steady state: the workflow holds at
  most one window of futures, so anything that grows is kept per dropped
  call); the same slope for the scheduler (target for the driver: at most
  2 KB per call). ``--tracemalloc`` runs the same script with Python's
  tracemalloc on in the driver and prints the lines that kept most memory
  between those two points (slower; for finding where memory goes);
* the provenance database's size (with its WAL) once the run is recorded
  as ended, per call, and the rows it holds; the run's ``results/``
  directory (small results kept for recovery) likewise;
* the Workflow page: the time to load ``/workflow`` (the server builds the
  page's document for the run) during the run (max) and at the end.

A default loop runs at a few hundred calls per second on 2 cores: a
million calls take most of an hour. ``--calls 20000`` is a quick check.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import psutil

TARGET = 2048  # bytes of driver memory per finished call whose future was dropped

SCHEDULER = '''\
"""The local default's cluster, in a process of its own (bench_million.py)."""
import json
import os
import sys
import tracemalloc

if os.environ.get("BENCH_MILLION_TRACE"):
    tracemalloc.start()

from daskflow.client.local import local_cluster
from daskflow.worker.mpi import local_default

cluster, watch = local_cluster(local_default()["local"], n_workers=2, threads_per_worker=1,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0")
print(json.dumps({"address": cluster.scheduler_address,
                  "dashboard": cluster.dashboard_link}), flush=True)
snapshots = []
for line in sys.stdin:  # until the benchmark closes it; "mark": a tracemalloc snapshot
    if line.strip() == "mark" and tracemalloc.is_tracing():
        snapshots.append(tracemalloc.take_snapshot())
        print("traced", tracemalloc.get_traced_memory()[0], flush=True)
    if len(snapshots) == 2:
        for stat in snapshots[1].compare_to(snapshots[0], "lineno")[:15]:
            print("grew", stat, flush=True)
        print("end", flush=True)
        snapshots = []
cluster.close()
'''

WORKFLOW = '''\
"""{calls:,} no-op calls in a plain loop (written by bench_million.py)."""
import os
import time

import distributed

import daskflow
from daskflow import python_app
from daskflow.latency import tune_client

N = {calls}
WINDOW = {window}  # futures held at most (0: all of them)

# the cluster the local default would start, with its scheduler in another process
client = daskflow.Client(os.environ["BENCH_MILLION_SCHEDULER"])
tune_client(client)  # as the local default does for its own client
{trace_setup}

@python_app
def noop(i):
    return i


start = time.time()
futures = []
failed = 0
for i in range(N):
    futures.append(noop(i))
    if len(futures) == WINDOW or i == N - 1:
        distributed.wait(futures)
        failed += sum(f.status != "finished" for f in futures)
        futures = []
        print("progress", i + 1, time.time(), flush=True)
{trace_mark}
{trace_end}
print("loop", N, failed, time.time() - start, flush=True)
client.close()
'''

TRACE_SETUP = '''
import tracemalloc

tracemalloc.start()
MARK = int(os.environ["BENCH_MILLION_MARK"])
snapshots = []'''

TRACE_MARK = '''\
        if i + 1 in (MARK, N):
            snapshots.append(tracemalloc.take_snapshot())
            print("traced", i + 1, tracemalloc.get_traced_memory()[0], flush=True)'''

TRACE_END = '''\
for stat in snapshots[-1].compare_to(snapshots[0], "lineno")[:15]:
    print("grew", stat, flush=True)'''


class Sampler(threading.Thread):
    """RSS of a few processes (not their children), every ``period`` seconds."""

    def __init__(self, pids: dict[str, int], period: float = 0.2):
        super().__init__(daemon=True)
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.period = period
        self.samples: dict[str, list[tuple[float, int]]] = {name: [] for name in pids}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.time()
            for name, proc in self.procs.items():
                try:
                    self.samples[name].append((now, proc.memory_info().rss))
                except psutil.Error:
                    pass
            self.stop.wait(self.period)

    def at(self, name: str, when: float) -> int | None:
        """The RSS sampled last before ``when``."""
        before = [rss for t, rss in self.samples[name] if t <= when]
        return before[-1] if before else None

    def peak(self, name: str) -> int:
        return max((rss for _, rss in self.samples[name]), default=0)


def wait_rusage(proc: subprocess.Popen) -> tuple[int, int]:
    """Wait for a child; its exit status and peak RSS (bytes, the kernel's ``ru_maxrss``)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024


def load_page(url: str) -> float:
    """Seconds to load the Workflow page (the server builds its document)."""
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # distributed serves no Bokeh pages without bokeh
            raise SystemExit(f"{url}: 404; the Workflow page needs bokeh in this Python "
                             f"({sys.executable})") from None
        raise
    return time.perf_counter() - t0


def recorded(db: str, timeout: float = 600) -> dict:
    """Wait until the run is recorded as ended; its rows and the database's size."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
            try:
                end, status = con.execute("select end_time, status from runs").fetchone()
                if end is not None:
                    counts = {table: con.execute(f"select count(*) from {table}").fetchone()[0]
                              for table in ("tasks", "transitions", "dependencies")}
                    counts["done"] = con.execute(
                        "select count(*) from tasks where state = 'done'").fetchone()[0]
                    break
            finally:
                con.close()
        except (sqlite3.Error, TypeError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the run in {db} was not recorded as ended in {timeout} s")
        time.sleep(0.5)
    size = sum(os.path.getsize(db + ext) for ext in ("", "-wal") if os.path.exists(db + ext))
    return dict(status=status, db_bytes=size, rows=counts, recorded_at=time.time())


def du(path: str) -> tuple[int, int]:
    """(files, bytes on disk) under ``path``."""
    files = blocks = 0
    for root, _, names in os.walk(path):
        for name in names:
            files += 1
            blocks += os.lstat(os.path.join(root, name)).st_blocks
    return files, blocks * 512


def slope(sampler: Sampler, name: str, marks: list[tuple[int, float]], n: int) -> float | None:
    """Bytes of RSS per finished call, from the mark at 20 % of the calls to the last."""
    first = next(((c, t) for c, t in marks if c >= 0.2 * n), None)
    last = marks[-1] if marks else None
    if first is None or last is None or last[0] <= first[0]:
        return None
    a, b = sampler.at(name, first[1]), sampler.at(name, last[1])
    return None if a is None or b is None else (b - a) / (last[0] - first[0])


def run(args, work: str) -> dict:
    env = dict(os.environ, DASK_DASKFLOW__RUN_DIR=os.path.join(work, "runinfo"),
               DASK_DASKFLOW__CHECKPOINT__DIR=os.path.join(work, "checkpoints"),
               DASK_DASKFLOW__SIGNING__KEY_FILE=os.path.join(work, "signing.key"))
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    for name, text in (("scheduler.py", SCHEDULER), ("workflow.py", WORKFLOW.format(
            calls=args.calls, window=args.window,
            trace_setup=TRACE_SETUP if args.tracemalloc else "",
            trace_mark=TRACE_MARK if args.tracemalloc else "",
            trace_end=TRACE_END if args.tracemalloc else ""))):
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    scheduler = subprocess.Popen([sys.executable, "scheduler.py"], cwd=work, env=dict(
                                     env, BENCH_MILLION_TRACE="1" if args.tracemalloc else ""),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    info = json.loads(scheduler.stdout.readline())
    page = info["dashboard"].replace("/status", "/workflow")
    env["BENCH_MILLION_SCHEDULER"] = info["address"]
    mark = max(args.window, int(0.2 * args.calls) // max(args.window, 1) * args.window)
    env["BENCH_MILLION_MARK"] = str(mark)
    t0 = time.time()
    driver = subprocess.Popen([sys.executable, "workflow.py"], cwd=work, env=env,
                              stdout=subprocess.PIPE, text=True)
    sampler = Sampler({"driver": driver.pid, "scheduler": scheduler.pid})
    sampler.start()
    marks: list[tuple[int, float]] = []  # (finished calls, when)
    out: dict = {"page_loads_s": [], "grew": [], "traced": []}
    lines: list[str] = []

    def read() -> None:
        for line in driver.stdout:
            lines.append(line)
            word, *rest = line.split(" ", 1)
            if word == "progress":
                calls, when = rest[0].split()
                marks.append((int(calls), float(when)))
                if args.tracemalloc and int(calls) == mark:
                    scheduler.stdin.write("mark\n")
                    scheduler.stdin.flush()
                if len(marks) % max(1, len(range(0, args.calls, args.window or args.calls))
                                    // 20) == 0:
                    print(f"  {int(calls):,} calls, {time.time() - t0:.0f} s, driver "
                          f"{sampler.at('driver', time.time()) / 2**20:.0f} MiB, scheduler "
                          f"{sampler.at('scheduler', time.time()) / 2**20:.0f} MiB", flush=True)
            elif word == "loop":
                _, failed, seconds = rest[0].split()
                out.update(failed=int(failed), loop_s=float(seconds))
            elif word == "traced":
                out["traced"].append([int(x) for x in rest[0].split()])
            elif word == "grew":
                out["grew"].append(rest[0].strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    next_page = time.monotonic() + args.page_every
    # not driver.poll(): it would reap the driver, whose peak RSS wait4 reads below
    while not os.waitid(os.P_PID, driver.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
        time.sleep(0.2)
        if time.monotonic() >= next_page and marks:
            out["page_loads_s"].append(load_page(page))
            next_page = time.monotonic() + args.page_every
    code, driver_peak = wait_rusage(driver)
    wall = time.time() - t0
    reader.join(10)
    if code != 0 or "loop_s" not in out:
        raise SystemExit(f"the workflow script failed ({code}):\n" + "".join(lines[-20:]))
    run_dir = os.path.join(work, "runinfo", "000")
    db = recorded(os.path.join(run_dir, "provenance.db"))
    out["page_end_s"] = load_page(page)
    sampler.stop.set()
    sampler.join()
    out["scheduler_traced"], out["scheduler_grew"] = [], []
    if args.tracemalloc:
        scheduler.stdin.write("mark\n")
        scheduler.stdin.flush()
        for line in scheduler.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "end":
                break
            out["scheduler_" + word].append(rest)
    scheduler.stdin.close()
    _, scheduler_peak = wait_rusage(scheduler)
    results = du(os.path.join(run_dir, "results"))
    n = args.calls
    return dict(
        calls=n, window=args.window, failed=out["failed"], wall_s=wall, loop_s=out["loop_s"],
        calls_per_s=n / out["loop_s"],
        driver_peak_rss=driver_peak, scheduler_peak_rss=scheduler_peak,
        driver_peak_rss_sampled=sampler.peak("driver"),
        scheduler_peak_rss_sampled=sampler.peak("scheduler"),
        driver_bytes_per_dropped_call=slope(sampler, "driver", marks, n),
        scheduler_bytes_per_call=slope(sampler, "scheduler", marks, n),
        provenance_db_bytes=db["db_bytes"], provenance_rows=db["rows"],
        provenance_status=db["status"], provenance_lag_s=db["recorded_at"] - t0 - wall,
        results_files=results[0], results_bytes=results[1],
        page_load_max_s=max(out["page_loads_s"], default=None), page_loads=len(
            out["page_loads_s"]), page_load_end_s=out["page_end_s"],
        traced=out["traced"], grew=out["grew"], scheduler_traced=out["scheduler_traced"],
        scheduler_grew=out["scheduler_grew"],
        rss_samples={k: v[:: max(1, len(v) // 400)] for k, v in sampler.samples.items()})


def mib(b) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f} MiB"


def report(r: dict) -> None:
    n = r["calls"]
    per = lambda b: "-" if b is None else f"{b:,.0f} B/call"  # noqa: E731
    rows = [
        ("calls (window)", f"{n:,} ({r['window'] or 'all'}), {r['failed']} failed"),
        ("wall time", f"{r['wall_s']:,.1f} s (loop {r['loop_s']:,.1f} s, "
                      f"{r['calls_per_s']:,.0f} calls/s)"),
        ("driver peak RSS", f"{mib(r['driver_peak_rss'])} (sampled "
                            f"{mib(r['driver_peak_rss_sampled'])})"),
        ("scheduler peak RSS", f"{mib(r['scheduler_peak_rss'])} (sampled "
                               f"{mib(r['scheduler_peak_rss_sampled'])})"),
        ("driver per dropped call", per(r["driver_bytes_per_dropped_call"])
         + f" (target <= {TARGET} B)"),
        ("scheduler per call", per(r["scheduler_bytes_per_call"])),
        ("provenance DB", f"{mib(r['provenance_db_bytes'])}, "
                          f"{r['provenance_db_bytes'] / n:,.0f} B/call; rows "
                          f"{r['provenance_rows']}; status {r['provenance_status']}, "
                          f"ended {r['provenance_lag_s']:.1f} s after the script"),
        ("kept results", f"{r['results_files']:,} files, {mib(r['results_bytes'])} on disk"),
        ("Workflow page load", f"max {r['page_load_max_s'] or 0:.3f} s over "
                               f"{r['page_loads']} loads during the run, "
                               f"{r['page_load_end_s']:.3f} s at the end"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if r["traced"]:
        print("tracemalloc in the driver (finished calls, traced bytes):", r["traced"])
        print("grew most between them:")
        for line in r["grew"]:
            print("    " + line)
    if r["scheduler_traced"]:
        print("tracemalloc in the scheduler's process (traced bytes at the two marks):",
              r["scheduler_traced"])
        print("grew most between them:")
        for line in r["scheduler_grew"]:
            print("    " + line)
    per_call = r["driver_bytes_per_dropped_call"]
    if per_call is not None:
        print(f"\ndriver memory per finished dropped call <= {TARGET} B: "
              f"{'MET' if per_call <= TARGET else 'NOT MET'}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--window", type=int, default=10_000,
                    help="futures the workflow holds before it waits and drops them (0: all)")
    ap.add_argument("--page-every", type=float, default=30.0,
                    help="seconds between loads of the Workflow page during the run")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="trace the driver's allocations (slower) and print what grew")
    ap.add_argument("--json", metavar="PATH", help="write the figures to PATH")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench-million-")
    try:
        r = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("scratch directory:", work)
    import distributed

    import daskflow

    print(f"\ndaskflow {daskflow.__version__}, distributed {distributed.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} cpus\n")
    report(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(meta=dict(cpus=os.cpu_count(), python=platform.python_version(),
                                     daskflow=daskflow.__version__,
                                     distributed=distributed.__version__), **r), f, indent=2)


if __name__ == "__main__":
    main()
