"""Time from a script's first app call to its result on the embedded local
default, against ``distributed.LocalCluster`` started the same way.

Run from the repository root (about a minute)::

    python benchmarks/bench_startup.py [--repeat N] [--json out.json]

Each measurement is a fresh interpreter running a small script, as a user
starts one, with 2 workers x 1 thread and the dashboard on:

* ``daskflow``: a script with no ``__main__`` guard; the clock starts just
  before the first app call (which starts the cluster) and stops when its
  result is back;
* ``LocalCluster``: the same function through ``distributed.LocalCluster``
  and ``Client.submit`` in a guarded script (it needs one); the clock starts
  before ``LocalCluster(...)``.

Both import their libraries before the clock starts. The two alternate so
that both see the same machine load; the medians are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

DASKFLOW = """
import time
from daskflow import python_app

@python_app
def add(a, b):
    return a + b

t0 = time.perf_counter()
value = add(1, 2).result()
print("SECONDS", time.perf_counter() - t0, value)
"""

LOCALCLUSTER = """
import time
import distributed

def add(a, b):
    return a + b

if __name__ == "__main__":
    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0")
    client = distributed.Client(cluster)
    value = client.submit(add, 1, 2).result()
    print("SECONDS", time.perf_counter() - t0, value)
    client.close()
    cluster.close()
"""


def measure(source: str, workdir: str) -> float:
    path = os.path.join(workdir, "script.py")
    with open(path, "w") as f:
        f.write(source)
    env = dict(os.environ, DASK_DASKFLOW__LOCAL__N_WORKERS="2",
               DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0",
               DASK_DASKFLOW__RUN_DIR=os.path.join(workdir, "runinfo"))
    proc = subprocess.run([sys.executable, path], capture_output=True, text=True, cwd=workdir,
                          env=env, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("SECONDS"):
            _, seconds, value = line.split()
            assert value == "3", proc.stdout
            return float(seconds)
    raise RuntimeError(f"no timing from the script (exit {proc.returncode}):\n{proc.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"daskflow": [], "LocalCluster": []}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.repeat):
            times["LocalCluster"].append(measure(LOCALCLUSTER, workdir))
            times["daskflow"].append(measure(DASKFLOW, workdir))
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["daskflow"] / medians["LocalCluster"]
    print(f"first app call to its result, median of {args.repeat} (2 workers x 1 thread):")
    for name, values in times.items():
        print(f"  {name:13s} {medians[name]:6.2f} s   (all: "
              f"{', '.join(f'{v:.2f}' for v in values)})")
    print(f"  ratio daskflow / LocalCluster: {ratio:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seconds": times, "median": medians, "ratio": ratio}, f, indent=1)


if __name__ == "__main__":
    main()
