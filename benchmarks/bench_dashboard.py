"""Is the Workflow page responsive with 100,000 tasks in a run?

    python benchmarks/bench_dashboard.py [--tasks 100000] [--real]

Synthetic part (always): feeds N tasks through ``WorkflowState.apply`` in the
batches the provenance plugin's writer makes (new row, running, done, every
100th failed, every task forgotten at the end), and times

* apply: microseconds per task (all its events);
* snapshot: the copy the page and ``daskflow run`` read (ms);
* page update: ``WorkflowPage.update()`` on a real scheduler after a batch
  moved the state (ms, median of 20), and the size of the page's document
  (the JSON Bokeh would send a browser): both must not grow with N.

It runs at 1,000 and at N tasks so the two can be compared.

``--real`` also runs N calls of a no-op app for real (``map`` with
``chunksize=500``) on a local cluster, opens the Workflow page in headless
Chromium (``scripts/setup-chromium.sh``) and reports how long the page took
to show every call done after the last one finished, and the page's update
time on the live scheduler.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bokeh.core.json_encoder import serialize_json
from bokeh.document import Document
from distributed import Scheduler

from daskflow.dashboard.page import WorkflowPage
from daskflow.dashboard.state import EXTENSION, WorkflowRegistry, WorkflowState

APPS = 8
BATCH = 5000


def batches(n: int):
    """The writer's batches for n tasks of APPS apps, each depending on the previous."""
    for start in range(0, n, BATCH):
        ids = range(start, min(n, start + BATCH))
        keys = [f"app{i % APPS}-{i}-tok" for i in ids]
        yield {"tasks": [{"key": k, "tid": str(i), "app": f"app{i % APPS}", "chunk_key": None}
                         for i, k in zip(ids, keys)],
               "deps": [(k, f"app{(i - 1) % APPS}-{i - 1}-tok") for i, k in zip(ids, keys) if i]}
        yield {"updates": [{"key": k, "state": "running", "started": float(i)}
                           for i, k in zip(ids, keys)]}
        yield {"updates": [{"key": k, "state": "failed" if i % 100 == 0 else "done",
                            "started": float(i), "finished": i + 0.5, "worker": f"w{i % 16}",
                            "exception": "ValueError: synthetic" if i % 100 == 0 else None}
                           for i, k in zip(ids, keys)]}


async def measure(n: int) -> dict:
    state = WorkflowState({"run_id": "bench", "start": 0.0})
    t0 = time.perf_counter()
    for batch in batches(n):
        state.apply(batch)
    apply_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(20):
        state.snapshot(intervals=True)
    snapshot_ms = (time.perf_counter() - t0) / 20 * 1e3
    async with Scheduler(dashboard_address=":0") as scheduler:
        registry = scheduler.extensions[EXTENSION] = WorkflowRegistry()
        registry.add(state)
        page = WorkflowPage(scheduler)
        doc = Document()
        doc.add_root(page.root)
        page.update()
        times = []
        for i in range(20):
            key = f"app{i % APPS}-{n + i}-tok"
            state.apply({"tasks": [{"key": key, "tid": str(n + i), "app": f"app{i % APPS}"}],
                         "updates": [{"key": key, "state": "done", "started": float(n + i),
                                      "finished": n + i + 0.5, "worker": "w0"}]})
            t0 = time.perf_counter()
            page.update()
            times.append(time.perf_counter() - t0)
        doc_bytes = len(serialize_json(doc.to_json()))
    forget = {"transitions": [(f"app{i % APPS}-{i}-tok", "memory", "forgotten", 0.0, None)
                              for i in range(n + 20)]}
    held = state.sizes()["tasks"]
    state.apply(forget)
    return {"tasks": n, "apply_us_per_task": apply_us, "snapshot_ms": snapshot_ms,
            "page_update_ms": statistics.median(times) * 1e3, "doc_kib": doc_bytes / 1024,
            "held_keys": held, "held_after_forget": state.sizes()["tasks"],
            "intervals": state.sizes()["intervals"], "failures": state.sizes()["failures"]}


def real(n: int) -> dict:
    """N no-op calls on a local cluster, watched by the page in headless Chromium."""
    import tempfile

    import distributed
    from playwright.sync_api import sync_playwright

    import daskflow

    @daskflow.python_app
    def noop(x):
        return x

    with daskflow.Client(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as c, \
            sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path="/usr/bin/chromium", headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = ctx.new_page()
        noop(0).result()  # the run (and the page) exist
        page.goto(c.dashboard_link.replace("/status", "/workflow"))
        page.wait_for_selector("#daskflow-counts", timeout=30_000)
        t0 = time.perf_counter()
        futures = noop.map(range(n), chunksize=500)
        distributed.wait(futures)
        ran = time.perf_counter() - t0
        done = page.locator("#daskflow-counts tr[data-app='noop'] td[data-state='done']")
        t1 = time.perf_counter()
        while int(done.inner_text() or 0) < n + 1:
            time.sleep(0.05)
            assert time.perf_counter() - t1 < 120, done.inner_text()
        shown = time.perf_counter() - t1
        scheduler = c.cluster.scheduler

        async def update_time():
            view = WorkflowPage(scheduler)
            view.update()
            t = time.perf_counter()
            for _ in range(10):
                view.shown = None  # force a full redraw
                view.update()
            return (time.perf_counter() - t) / 10 * 1e3

        update_ms = c.sync(update_time)
        ctx.close()
    return {"calls": n, "run_s": ran, "page_caught_up_s": shown, "page_update_ms": update_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--real", action="store_true", help="also a real run in a real browser")
    args = parser.parse_args()
    print(f"{'tasks':>8} {'apply µs/task':>14} {'snapshot ms':>12} {'page update ms':>15} "
          f"{'doc KiB':>8} {'held keys':>10} {'after forget':>13} {'intervals':>10}")
    for n in (1000, args.tasks):
        r = asyncio.run(measure(n))
        print(f"{r['tasks']:>8} {r['apply_us_per_task']:>14.2f} {r['snapshot_ms']:>12.2f} "
              f"{r['page_update_ms']:>15.2f} {r['doc_kib']:>8.0f} {r['held_keys']:>10} "
              f"{r['held_after_forget']:>13} {r['intervals']:>10}")
    if args.real:
        r = real(args.tasks)
        print(f"real run: {r['calls']} calls in {r['run_s']:.1f} s; the page showed them all "
              f"{r['page_caught_up_s']:.2f} s after they finished; a full page update on the "
              f"live scheduler takes {r['page_update_ms']:.1f} ms")


if __name__ == "__main__":
    main()
