"""What staging costs and what the node cache saves: many tasks reading one
remote file over HTTP, daskflow against plain Dask tasks that fetch it
themselves with fsspec, in the same run.

    python benchmarks/bench_staging.py [--n 200] [--size-mb 4] [--rounds 2]

A loopback ``http.server`` serves the file and counts the GET requests. Three
workloads on one 2-worker local cluster (best of the rounds, tasks/s):

* plain Dask: ``client.map`` of a function that downloads the file with
  fsspec and returns its size (what a user would write without staging);
* daskflow, node cache off: an app taking ``File("http://...")``, staged in
  by the task body (one download per task, as plain Dask);
* daskflow, node cache on (the default): one download per node, later
  tasks read the cached copy.

Reported: tasks/s, the ratio to plain Dask, and GETs seen by the server.
"""

from __future__ import annotations

import argparse
import http.server
import os
import tempfile
import threading
import time

import dask
import distributed

import daskflow
from daskflow import File, python_app


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    gets = 0

    def do_GET(self):
        type(self).gets += 1
        super().do_GET()

    def log_message(self, *args):
        pass


def serve(directory: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = lambda *a, **kw: CountingHandler(*a, directory=directory, **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def fetch_size(url: str) -> int:
    import fsspec

    with tempfile.TemporaryDirectory() as d:
        local = os.path.join(d, "data.bin")
        fsspec.filesystem("http").get_file(url, local)
        return os.path.getsize(local)


@python_app
def staged_size(data):
    return os.path.getsize(data.filepath)


def timed(run) -> tuple[float, int]:
    before = CountingHandler.gets
    start = time.perf_counter()
    run()
    return time.perf_counter() - start, CountingHandler.gets - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="tasks per workload")
    ap.add_argument("--size-mb", type=float, default=4.0, help="size of the remote file")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as served, tempfile.TemporaryDirectory() as scratch:
        with open(os.path.join(served, "data.bin"), "wb") as f:
            f.write(os.urandom(int(args.size_mb * 2**20)))
        server, base = serve(served)
        url = f"{base}/data.bin"
        best: dict[str, tuple[float, int]] = {}
        settings = {"daskflow.run-dir": os.path.join(scratch, "runinfo"),
                    "daskflow.staging.dir": os.path.join(scratch, "staging")}
        with dask.config.set(settings), daskflow.Client(
                n_workers=2, threads_per_worker=1, dashboard_address=":0") as client:
            expected = int(args.size_mb * 2**20)

            def plain():
                futures = client.map(fetch_size, [url] * args.n, pure=False)
                assert set(client.gather(futures)) == {expected}

            def daskflow_run(cache: bool):
                def run():
                    with dask.config.set({"daskflow.staging.cache.enabled": cache,
                                          "daskflow.staging.cache.dir":
                                          os.path.join(scratch, f"cache-{time.time()}")}):
                        futures = [staged_size(File(url)) for _ in range(args.n)]
                    assert set(client.gather(futures)) == {expected}
                return run

            workloads = {"plain Dask (fsspec in the task)": plain,
                         "daskflow, node cache off": daskflow_run(False),
                         "daskflow, node cache on": daskflow_run(True)}
            for _ in range(args.rounds):
                for name, run in workloads.items():
                    seconds, gets = timed(run)
                    if name not in best or seconds < best[name][0]:
                        best[name] = (seconds, gets)
        server.shutdown()
    base_rate = args.n / best["plain Dask (fsspec in the task)"][0]
    print(f"{args.n} tasks reading one {args.size_mb:g} MiB file over HTTP "
          f"(best of {args.rounds}, 2 workers)")
    print(f"{'workload':34} {'tasks/s':>9} {'vs Dask':>8} {'GETs':>6}")
    for name, (seconds, gets) in best.items():
        rate = args.n / seconds
        print(f"{name:34} {rate:9.1f} {rate / base_rate:7.2f}x {gets:6d}")


if __name__ == "__main__":
    distributed.utils.silence_logging = True
    main()
