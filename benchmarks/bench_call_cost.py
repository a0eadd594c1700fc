"""The driver's CPU per app call, against raw Dask's ``client.submit`` / ``client.map``.

Run from the repository root (about a minute on 2 cores)::

    python benchmarks/bench_call_cost.py [--calls N] [--rounds R] [--no-report]

On one ``daskflow.Client`` (2 worker processes x 1 thread), each round
submits N no-op calls four ways: ``[noop(i) for i in range(N)]``,
``[client.submit(noop_raw, i) ...]``, ``noop.map(range(N))`` and
``client.map(noop_raw, range(N))``, and waits for them. The figure is the
CPU time of the submitting thread alone (``time.thread_time``) per call, in
microseconds: what the script pays to make a call, without the event loop's
thread and the scheduler (which share the driver's process) and without the
wall-clock noise of a busy machine. Medians over the rounds; the four ways
alternate within each round. ``process`` adds the whole driver process's CPU
per call, from the submission to the last result.

The functions live in the script itself (``__main__``), as in a user's
script or notebook. ``--no-report`` turns provenance recording off.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import dask
import distributed

import daskflow
from daskflow import python_app


def noop_raw(x):
    return x


noop = python_app(noop_raw)


def measure(submit, n: int) -> tuple[float, float]:
    """(submitting thread's CPU, driver process's CPU to the end) per call, in µs."""
    gc.collect()
    thread0, process0 = time.thread_time(), time.process_time()
    futures = submit(n)
    thread1 = time.thread_time()
    distributed.wait(futures)
    process1 = time.process_time()
    del futures
    gc.collect()
    time.sleep(0.3)  # the releases reach the scheduler before the next way
    return (thread1 - thread0) / n * 1e6, (process1 - process0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-report", action="store_true", help="provenance off")
    args = parser.parse_args()
    with dask.config.set({"daskflow.provenance.enabled": not args.no_report}), \
            daskflow.Client(processes=True, n_workers=2, threads_per_worker=1,
                            dashboard_address=None) as client:
        ways = {
            "app(i)": lambda n: [noop(i) for i in range(n)],
            "client.submit": lambda n: [client.submit(noop_raw, i, pure=False)
                                        for i in range(n)],
            "app.map": lambda n: noop.map(range(n)),
            "client.map": lambda n: client.map(noop_raw, range(n), pure=False),
        }
        for submit in ways.values():  # warm up: the apps pickled, the workers' caches
            measure(submit, 200)
        figures: dict[str, list] = {way: [] for way in ways}
        for _ in range(args.rounds):
            for way, submit in ways.items():
                figures[way].append(measure(submit, args.calls))
    med = {way: [statistics.median(f[i] for f in fs) for i in (0, 1)]
           for way, fs in figures.items()}
    print(f"daskflow {daskflow.__version__} ({daskflow.__file__}), distributed "
          f"{distributed.__version__}: {args.calls} calls x {args.rounds} rounds, medians")
    print(f"{'way':15} {'submitting thread':>18} {'process, to results':>20}   (us per call)")
    for way, (thread, process) in med.items():
        print(f"{way:15} {thread:18.1f} {process:20.1f}")
    for own, raw in (("app(i)", "client.submit"), ("app.map", "client.map")):
        extra = med[own][0] - med[raw][0]
        print(f"{own} costs the submitting thread {extra:+.1f} us per call over {raw} "
              f"(x{med[own][0] / med[raw][0]:.2f})")


if __name__ == "__main__":
    main()
