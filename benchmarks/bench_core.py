"""Core overheads of daskflow against raw Dask (and Parsl, when importable).

Run from the repository root (2 cores are enough; takes ~11 minutes)::

    python benchmarks/bench_core.py [--quick] [--json out.json] [--repeat N] [--no-parsl]

``--quick`` scales every size down ~10x (a CI smoke test); ``--json`` writes
the figures; ``--repeat`` keeps the best of N runs of workloads 1-3.

All Dask measurements share one LocalCluster (2 worker processes x 1 thread),
started by ``daskflow.Client``; raw Dask runs through the same client with the
same module-level functions. daskflow runs as by default: calls of short
apps are packed into chunk tasks (transparent batching), after a warm-up
that lets the workers report how long they take. A bare
``ProcessPoolExecutor`` (2 processes) gives the floor with no scheduler at
all. Parsl (ThreadPoolExecutor, then HighThroughputExecutor on a
LocalProvider with 2 workers) runs after the Dask cluster is closed, so none
competes with another for the 2 cores.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc

import dask
import distributed
import psutil

import daskflow
from daskflow import bash_app, python_app


# --- workload functions: module level, so Dask, daskflow and Parsl pickle them alike
def noop_raw(x):
    return x


def total_raw(*xs):  # *xs: Parsl resolves futures only at the top level of the arguments
    return sum(xs)


def true_cmd(i):
    return "true"


def run_true(i):  # what a bash app does, for raw Dask
    return subprocess.run(["bash", "-c", "true"], check=True).returncode


noop = python_app(noop_raw)
total = python_app(total_raw)
true_app = bash_app(true_cmd)

FULL = dict(tput=5000, chain=1000, fanin=5000, bash=2000, mem=100_000, mem_batch=5000)
QUICK = {k: max(1, v // 10) for k, v in FULL.items()}
MEM_TARGET = 2048  # bytes per finished task whose future was dropped


# --- helpers
def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def settle(pause: float = 0.3) -> None:
    """Let released keys reach the scheduler before the next measurement."""
    gc.collect()
    time.sleep(pause)


def best(repeat: int, measure, higher_better: bool = True) -> float:
    values = []
    for _ in range(repeat):
        values.append(measure())
        settle()
    return max(values) if higher_better else min(values)


def per_result(fs) -> None:
    for f in fs:
        f.result()


def rate(n: int, submit, collect) -> float:
    """tasks/s end to end: submit all, then collect all."""
    return n / timed(lambda: collect(submit()))


def chain_ms(n: int, call) -> float:
    """ms per hop of a chain of n calls, each taking the previous future."""
    def run():
        f = call(0)
        for _ in range(n - 1):
            f = call(f)
        f.result()
    return timed(run) / n * 1e3


def fanin_s(n: int, leaf, join) -> float:
    return timed(lambda: join(*[leaf(i) for i in range(n)]).result())


# --- Dask and daskflow
def bench_dask(client, S, R, res) -> None:
    n = S["tput"]
    gather = client.gather
    df_sub = lambda: [noop(i) for i in range(n)]  # noqa: E731
    dk_sub = lambda: [client.submit(noop_raw, i, pure=False) for i in range(n)]  # noqa: E731
    df_map = lambda: noop.map(range(n))  # noqa: E731
    dk_map = lambda: client.map(noop_raw, range(n), pure=False)  # noqa: E731
    df_chunk = lambda: noop.map(range(n), chunksize=100)  # noqa: E731
    cases = [  # row, daskflow (submit, collect), raw Dask (submit, collect)
        ("1-by-1 + gather", df_sub, gather, dk_sub, gather),
        ("1-by-1 + .result()", df_sub, per_result, dk_sub, per_result),
        (".map + gather", df_map, gather, dk_map, gather),
        (".map + .result()", df_map, per_result, dk_map, per_result),
        (".map(chunk=100) + gather", df_chunk, gather, dk_map, gather),
        (".map(chunk=100) + .result()", df_chunk, per_result, dk_map, per_result),
    ]
    for row, dfs, dfc, dks, dkc in cases:
        res[row] = dict(unit="tasks/s", higher=True,
                        daskflow=best(R, lambda: rate(n, dfs, dfc)),
                        dask=best(R, lambda: rate(n, dks, dkc)))
    sub = lambda x: client.submit(noop_raw, x, pure=False)  # noqa: E731
    res["chain"] = dict(unit="ms/hop", higher=False,
                        daskflow=best(R, lambda: chain_ms(S["chain"], noop), False),
                        dask=best(R, lambda: chain_ms(S["chain"], sub), False))
    join = lambda *xs: client.submit(total_raw, *xs, pure=False)  # noqa: E731
    res["fan-in"] = dict(unit="s", higher=False,
                         daskflow=best(R, lambda: fanin_s(S["fanin"], noop, total), False),
                         dask=best(R, lambda: fanin_s(S["fanin"], sub, join), False))
    nb = S["bash"]
    res["bash `true`"] = dict(  # a loop of calls, as Parsl users write it
        unit="tasks/s", higher=True,
        daskflow=best(R, lambda: rate(nb, lambda: [true_app(i) for i in range(nb)], gather)),
        dask=best(R, lambda: rate(nb, lambda: [client.submit(run_true, i, pure=False)
                                               for i in range(nb)], gather)))


def bench_process_pool(S, R, res) -> None:
    """The floor with no scheduler at all: a bare ProcessPoolExecutor with as
    many processes as the Dask workers, submitting one by one."""
    from concurrent.futures import ProcessPoolExecutor

    n = S["tput"]
    with ProcessPoolExecutor(2) as pool:
        per_result([pool.submit(noop_raw, i) for i in range(50)])  # the processes started
        res["1-by-1 + .result()"]["process-pool"] = best(
            R, lambda: rate(n, lambda: [pool.submit(noop_raw, i) for i in range(n)],
                            per_result))


def retained(n: int, batch: int, submit) -> dict:
    """Driver memory kept per finished task after its future is dropped.

    tracemalloc decides: it counts exactly the Python blocks allocated during
    the run and still alive after the drop (leaks; the provenance writer's
    backlog is waited for first), whereas RSS mostly shows
    the allocator's high-water mark (pymalloc arenas and malloc'd pages are
    rarely given back to the OS after 100k futures lived at once) and so
    cannot tell a leak from a peak. RSS growth (minus tracemalloc's own
    bookkeeping) is reported alongside for information. A warm-up round first
    fills one-time caches (pickled functions, dict tables, imports). The
    LocalCluster's scheduler lives in this process, so its state counts too.
    """
    def run(count):
        for start in range(0, count, batch):
            fs = submit(range(start, min(start + batch, count)))
            distributed.wait(fs)
            del fs
        settle(1.0)
        records_written(distributed.get_client())

    run(min(2 * batch, n))
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    tracemalloc.start()
    run(n)
    kept = tracemalloc.get_traced_memory()[0]
    top = tracemalloc.take_snapshot().statistics("lineno")[:2]
    overhead = tracemalloc.get_tracemalloc_memory()
    tracemalloc.stop()
    rss = proc.memory_info().rss - rss0 - overhead
    return dict(bytes=kept / n, rss=rss / n, top=[str(s) for s in top])


def records_written(client) -> None:
    """Wait until the provenance writer recorded every event queued so far:
    its backlog is work in progress, not memory kept per task."""
    async def written(dask_scheduler):
        for plugin in list(dask_scheduler.plugins.values()):
            if hasattr(plugin, "settle"):
                await plugin.settle(timeout=120)

    client.run_on_scheduler(written)


def bench_memory(client, S, res, details) -> None:
    n, b = S["mem"], S["mem_batch"]
    # daskflow first, the conservative order: distributed's own low-level logs
    # (a BatchedSend keeps its last 1000 flushes, each with every message sent
    # in it) still grow at 100k tasks; the later a run, the nearer their cap.
    dfs = {row: retained(n, n if "chunk" in row else b, submit) for row, submit in (
        (".map(chunk=100), one call", lambda r: noop.map(r, chunksize=100)),
        (f".map, batches of {b}", noop.map))}
    raw = retained(n, b, lambda r: client.map(noop_raw, r, pure=False))
    for row, df in dfs.items():
        res["mem " + row] = dict(unit="B/task", higher=False, daskflow=df["bytes"],
                                 dask=raw["bytes"])
        details["mem " + row] = dict(daskflow=df, dask=raw)


# --- Parsl
def bench_parsl(S, R, res) -> None:
    import parsl
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor, ThreadPoolExecutor
    from parsl.providers import LocalProvider

    # HTEX starts process_worker_pool.py and the interchange from PATH.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    executors = {
        "parsl-tpe": lambda: ThreadPoolExecutor(label="tpe", max_threads=2),
        "parsl-htex": lambda: HighThroughputExecutor(
            label="htex", address="127.0.0.1", max_workers_per_node=2,
            provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1)),
    }
    run_dir = tempfile.mkdtemp(prefix="bench-parsl-")
    try:
        for col, make in executors.items():
            dfk = parsl.load(Config(executors=[make()], run_dir=run_dir,
                                    initialize_logging=False, usage_tracking=0))
            try:
                p_noop, p_total = parsl.python_app(noop_raw), parsl.python_app(total_raw)
                p_true = parsl.bash_app(true_cmd)
                per_result([p_noop(i) for i in range(50)])  # waits for HTEX workers
                n = S["tput"]
                res["1-by-1 + .result()"][col] = best(
                    R, lambda: rate(n, lambda: [p_noop(i) for i in range(n)], per_result))
                nb = S["bash"]
                res["bash `true`"][col] = best(
                    R, lambda: rate(nb, lambda: [p_true(i) for i in range(nb)], per_result))
                res["chain"][col] = best(R, lambda: chain_ms(S["chain"], p_noop), False)
                res["fan-in"][col] = best(R, lambda: fanin_s(S["fanin"], p_noop, p_total), False)
            finally:
                dfk.cleanup()
                parsl.clear()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    time.sleep(0.5)
    left = [" ".join(p.cmdline()[:3]) for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(p.cmdline())]  # multiprocessing's own
    if left:
        print(f"WARNING: processes left after Parsl cleanup: {left}")


# --- report
def htex_ref(res, row):
    """Parsl HTEX figure a row is compared with: its own, or for throughput
    rows HTEX's 1-by-1 + .result() (how Parsl users submit)."""
    r = res[row]
    if "parsl-htex" in r or r["unit"] != "tasks/s" or row.startswith("bash"):
        return r.get("parsl-htex")
    return res["1-by-1 + .result()"].get("parsl-htex")


def fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:,.0f}"


def table(res) -> str:
    head = ["workload", "unit", "daskflow", "raw dask", "df/dask", "proc-pool", "parsl-tpe",
            "parsl-htex", "df/htex"]
    rows = []
    for row, r in res.items():
        ref = htex_ref(res, row)
        rows.append([row, r["unit"] + (" ^" if r["higher"] else " v"), fmt(r["daskflow"]),
                     fmt(r["dask"]), f"{r['daskflow'] / r['dask']:.2f}x" if r["dask"] else "-",
                     fmt(r.get("process-pool")), fmt(r.get("parsl-tpe")), fmt(ref if "parsl-htex" in r else None),
                     f"{r['daskflow'] / ref:.2f}x" if ref else "-"])
    widths = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def targets(res) -> dict:
    ratio = lambda row: res[row]["daskflow"] / res[row]["dask"]  # noqa: E731
    htex = res["1-by-1 + .result()"].get("parsl-htex")
    pool = res["1-by-1 + .result()"].get("process-pool")
    chunk = res[".map(chunk=100) + .result()"]["daskflow"]
    mem = max(r["daskflow"] for k, r in res.items() if k.startswith("mem"))

    def over_htex(row, key="daskflow"):  # how many times better than Parsl HTEX
        r, ref = res[row], htex_ref(res, row)
        if not ref:
            return None
        return r[key] / ref if r["higher"] else ref / r[key]

    out = {
        "1-by-1 >= 0.8x raw client.submit (gather)": (ratio("1-by-1 + gather"), ">=", 0.8),
        ".map >= 0.8x raw client.map (gather)": (ratio(".map + gather"), ">=", 0.8),
        "chain latency <= 1.25x raw Dask": (ratio("chain"), "<=", 1.25),
        f"driver memory <= {MEM_TARGET} B/dropped task": (mem, "<=", MEM_TARGET),
        "default loop >= 3x Parsl HTEX": (over_htex("1-by-1 + .result()"), ">=", 3.0),
        ".map without chunksize >= 3x Parsl HTEX": (over_htex(".map + .result()"), ">=", 3.0),
        "chain per hop <= Parsl HTEX (times better)": (over_htex("chain"), ">=", 1.0),
        "fan-in >= 3x Parsl HTEX": (over_htex("fan-in"), ">=", 3.0),
        "bash `true` >= 1.5x Parsl HTEX": (over_htex("bash `true`"), ">=", 1.5),
        "bash `true` costs <= 1.1x raw Dask (df/dask tasks/s)": (
            ratio("bash `true`"), ">=", 1 / 1.1),
        ".map(chunk=100) >= 7x Parsl HTEX 1-by-1": (chunk / htex if htex else None, ">=", 7.0),
        "stretch: default loop >= 0.5x a bare ProcessPoolExecutor": (
            res["1-by-1 + .result()"]["daskflow"] / pool if pool else None, ">=", 0.5),
    }
    return {k: dict(value=v, op=op, limit=lim,
                    met=None if v is None else (v >= lim if op == ">=" else v <= lim))
            for k, (v, op, lim) in out.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes / 10 (CI smoke test)")
    ap.add_argument("--json", metavar="PATH", help="write the figures to PATH")
    ap.add_argument("--repeat", type=int, default=1, help="best of N for workloads 1-3")
    ap.add_argument("--no-parsl", action="store_true", help="skip Parsl even if importable")
    args = ap.parse_args(argv)
    S, R = (QUICK if args.quick else FULL), args.repeat
    res, details = {}, {}
    t0 = time.perf_counter()
    # provenance is recorded as by default, into a scratch run directory
    dask.config.set({"daskflow.run-dir": tempfile.mkdtemp(prefix="bench-runinfo-")})
    with daskflow.Client(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=":0") as client:
        client.gather(client.map(noop_raw, range(200), pure=False))  # warm-up
        client.gather(noop.map(range(200)) + noop.map(range(200), chunksize=100))
        client.gather(true_app.map(range(4)) + [total(*noop.map(range(4)))])
        client.gather(client.map(run_true, range(4), pure=False))
        settle()
        bench_dask(client, S, R, res)
        bench_memory(client, S, res, details)
    try:
        import parsl  # noqa: F401
        have_parsl = not args.no_parsl
    except ImportError:
        have_parsl = False
    bench_process_pool(S, R, res)
    if have_parsl:
        bench_parsl(S, R, res)
    print(f"\ndaskflow {daskflow.__version__} vs dask distributed {distributed.__version__}"
          + (f" vs parsl {parsl.__version__}" if have_parsl else "") + f"; sizes {S}; "
          f"{os.cpu_count()} cpus; {time.perf_counter() - t0:.0f} s\n")
    print(table(res))
    print("\n^ higher is better, v lower is better; ratios are always daskflow/other. df/htex "
          "compares throughput rows with Parsl HTEX 1-by-1 + .result().")
    for row, d in details.items():
        print(f"{row}: RSS growth {d['daskflow']['rss']:.0f} B/task (raw dask "
              f"{d['dask']['rss']:.0f}); top retained daskflow allocations:")
        for site in d["daskflow"]["top"]:
            print("    " + site)
    goals = targets(res)
    print("\nTargets:")
    for name, g in goals.items():
        state = "n/a" if g["met"] is None else ("MET" if g["met"] else "NOT MET")
        print(f"  [{state:>7}] {name}: {fmt(g['value'])}")
    if args.json:
        meta = dict(sizes=S, repeat=R, cpus=os.cpu_count(), python=platform.python_version(),
                    daskflow=daskflow.__version__, distributed=distributed.__version__,
                    parsl=parsl.__version__ if have_parsl else None)
        with open(args.json, "w") as f:
            json.dump(dict(meta=meta, results=res, memory=details, targets=goals), f, indent=2)


if __name__ == "__main__":
    main()
