"""Bash apps in a loop: how the chunk duration trades calls per task for spread.

    python benchmarks/bench_bash.py [--calls 2000] [--rounds 5] [--durations 20ms,50ms,100ms]

One cluster (2 worker processes x 1 thread, as the local default on 2
cores). Each round runs, for each ``daskflow.batching.chunk-duration``, a
fresh ``daskflow.Client`` on that cluster (a client reads the setting when
its session starts) that warms up (the workers report how long a bash call
takes), then times a loop of ``--calls`` bash apps running ``true``
collected with ``gather``; raw Dask tasks running the same
``subprocess.run`` close each round. Settings alternate within a round so
that the machine's drift spreads over all of them; the report gives each
one's median and range of tasks/s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time

import dask

import daskflow
from daskflow import bash_app


def true_cmd(i):
    return "true"


def run_true(i):  # what a bash app does, for raw Dask
    return subprocess.run(["bash", "-c", "true"], check=True).returncode


true_app = bash_app(true_cmd)


def loop_rate(client, n: int) -> float:
    start = time.perf_counter()
    client.gather([true_app(i) for i in range(n)])
    return n / (time.perf_counter() - start)


def packed_rate(address: str, duration: str, n: int) -> tuple[float, int]:
    """tasks/s of a loop under a new client with this chunk duration, and
    the chunk capacity it used."""
    with dask.config.set({"daskflow.batching.chunk-duration": duration}):
        with daskflow.Client(address) as client, client.as_current():
            client.gather([true_app(i) for i in range(20)])  # durations reported
            burst = client._daskflow_session.burst  # the session began with the first call
            deadline = time.monotonic() + 30
            while burst.durations.capacity(true_app.name) < 2 and time.monotonic() < deadline:
                client.gather([true_app(i) for i in range(20)])
            capacity = burst.durations.capacity(true_app.name)
            return loop_rate(client, n), capacity


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--durations", default="20ms,50ms,100ms")
    args = ap.parse_args(argv)
    durations = args.durations.split(",")
    dask.config.set({"daskflow.run-dir": tempfile.mkdtemp(prefix="bench-runinfo-")})
    rates = {d: [] for d in durations + ["raw Dask"]}
    capacities = {d: set() for d in durations}
    with daskflow.Client(n_workers=2, threads_per_worker=1, dashboard_address=":0") as base:
        address = base.scheduler.address
        base.gather(base.map(run_true, range(8), pure=False))
        for r in range(args.rounds):
            for d in durations if r % 2 == 0 else reversed(durations):
                rate, capacity = packed_rate(address, d, args.calls)
                rates[d].append(rate)
                capacities[d].add(capacity)
            start = time.perf_counter()
            base.gather([base.submit(run_true, i, pure=False) for i in range(args.calls)])
            rates["raw Dask"].append(args.calls / (time.perf_counter() - start))
    print(f"{args.calls} bash apps running `true` per loop, {args.rounds} rounds; tasks/s")
    for name, values in rates.items():
        cap = f"  (calls per chunk {sorted(capacities[name])})" if name in capacities else ""
        print(f"  {name:>9}: median {statistics.median(values):7,.0f}  "
              f"range {min(values):,.0f}-{max(values):,.0f}{cap}")


if __name__ == "__main__":
    main()
