"""What recording provenance costs: no-op throughput with recording on and off.

    python benchmarks/bench_provenance.py [--n 30000] [--rounds 7]

One LocalCluster (2 worker processes x 1 thread); two daskflow sessions on
it, one recording (the default) and one not (``daskflow.provenance.enabled:
false``), measured in alternating rounds so that both see the same machine.
Reports tasks/s for one-by-one calls, ``.map`` and ``.map(chunksize=100)``
(the median of the rounds, each round printed as it ends) and the ratio
on/off: the median of each round's own ratio, since rounds on this kind of
machine swing by 20 % from one to the next and a round's two halves see
the same moment. The target is a cost of at most 10 % (ratio >= 0.90).
Recording includes what comes with it: the kept results of recovery (a run
directory exists only when provenance is on).

It also gives the CPU each kind of process spent per call (medians): this
one (``driver``: the client and the scheduler), the worker processes, and
the run's provenance writer process, and the driver's time in Python's
garbage collector (``gc``; full collections of a heap that holds a round's
futures cost 0.1 to 0.3 s each). A recording round counts until the writer
has applied all of it (the scheduler's ``daskflow_workflow`` handler with
``settle``), so that its work does not spill into the next round.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import statistics
import tempfile
import time

import dask
import distributed
import psutil

import daskflow
from daskflow import python_app
from daskflow.client.session import session_of


@python_app
def noop(x):
    return x


WORKLOADS = {
    "1-by-1": lambda n: [noop(i) for i in range(n)],
    ".map": lambda n: noop.map(range(n)),
    ".map(chunk=100)": lambda n: noop.map(range(n), chunksize=100),
}


class GCTime:
    """Seconds this process spent in the garbage collector (``gc.callbacks``)."""

    def __init__(self):
        self.total = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start


def rate(client, n: int, submit) -> float:
    with client.as_current():
        start = time.perf_counter()
        client.gather(submit(n))
        return n / (time.perf_counter() - start)


def cpu_by_process() -> dict[str, float]:
    """CPU seconds so far of this process, of its worker processes and of
    the provenance writer processes (those alive now)."""
    me = psutil.Process()
    times = me.cpu_times()
    cpu = {"driver": times.user + times.system, "workers": 0.0, "writer": 0.0,
           "gc": GC.total}
    for child in me.children(recursive=True):
        try:
            kind = "writer" if "daskflow.provenance.writer" in " ".join(child.cmdline()) \
                else "workers"
            times = child.cpu_times()
        except psutil.Error:  # gone meanwhile
            continue
        cpu[kind] += times.user + times.system
    return cpu


def settle(client) -> None:
    """Wait until the run's writer applied every event queued so far."""
    client.sync(client.scheduler.daskflow_workflow, run_id=session_of(client).run_id,
                settle=True)


GC = GCTime()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    runs = tempfile.mkdtemp(prefix="bench-prov-")
    with dask.config.set({"daskflow.run-dir": runs}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                     dashboard_address=":0") as cluster:
        with dask.config.set({"daskflow.provenance.enabled": False}):
            off = daskflow.Client(cluster, set_as_default=False)
            rate(off, 300, WORKLOADS[".map"])  # warm-up; the session reads the config now
        on = daskflow.Client(cluster, set_as_default=False)
        rate(on, 300, WORKLOADS[".map"])
        rates = {(w, m): [] for w in WORKLOADS for m in ("off", "on")}
        cpu = {(w, m): [] for w in WORKLOADS for m in ("off", "on")}
        for number in range(args.rounds):
            for name, submit in WORKLOADS.items():
                pair = (("off", off), ("on", on))
                for mode, c in pair if number % 2 == 0 else pair[::-1]:  # neither always first
                    gc.collect()  # both start from the same heap: a full collection more
                    # or less in a round is 10 % of it
                    before = cpu_by_process()
                    rates[name, mode].append(rate(c, args.n, submit))
                    if mode == "on":
                        settle(c)
                    after = cpu_by_process()
                    cpu[name, mode].append({k: (after[k] - before[k]) / args.n * 1e6
                                            for k in after})
            print(f"round {number + 1}: " + ", ".join(
                f"{name} {rates[name, 'off'][-1]:,.0f} / {rates[name, 'on'][-1]:,.0f}"
                for name in WORKLOADS) + " tasks/s (off / on)", flush=True)
        best = {k: statistics.median(v) for k, v in rates.items()}
        paired = {name: statistics.median(on / off for on, off in
                                          zip(rates[name, "on"], rates[name, "off"]))
                  for name in WORKLOADS}
        off.close()
        on.close()
    time.sleep(1)
    db = os.path.join(runs, "000", "provenance.db")
    rows = sqlite3.connect(db).execute("select count(*) from tasks").fetchone()[0]
    print(f"\nn={args.n}, medians of {args.rounds} rounds, 2 workers x 1 thread; "
          f"{rows} tasks recorded in {db}\n")
    print(f"{'workload':<18}{'off tasks/s':>12}{'on tasks/s':>12}{'on/off':>8}  (median of the rounds' ratios)")
    worst = 1.0
    for name in WORKLOADS:
        ratio = paired[name]
        worst = min(worst, ratio)
        print(f"{name:<18}{best[name, 'off']:>12,.0f}{best[name, 'on']:>12,.0f}{ratio:>8.2f}")
    print(f"\nCPU per call (µs, medians): {'driver':>8}{'(gc)':>7}{'workers':>9}{'writer':>8}")
    for name in WORKLOADS:
        for mode in ("off", "on"):
            med = {k: statistics.median(r[k] for r in cpu[name, mode])
                   for k in ("driver", "gc", "workers", "writer")}
            print(f"  {name + ' ' + mode:<26}{med['driver']:>8.1f}{med['gc']:>7.1f}"
                  f"{med['workers']:>9.1f}{med['writer']:>8.1f}")
    print(f"\nrecording costs at most {(1 - worst) * 100:.1f} % "
          f"(target <= 10 %): {'MET' if worst >= 0.9 else 'NOT MET'}")


if __name__ == "__main__":
    main()
