"""``daskflow run SCRIPT``: a workflow script as a batch job, watched live.

The script runs in this process (as ``python SCRIPT`` would). A thread finds
the run the script's first app call starts and polls the scheduler's
``daskflow_workflow`` handler (the provenance plugin's live aggregate, see
``dashboard.state``) twice a second for a rich progress display on stderr.
When the script ends, one last poll waits until the plugin has taken in every
event, then a summary table per app and the run id are printed, and the exit
code says whether every task succeeded. Everything daskflow prints goes to
stderr: the script's own stdout stays its own.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time
import traceback

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .provenance import fmt_duration
from .tables import echo_listing

POLL_INTERVAL = 0.5  # seconds between polls of the scheduler
UNFINISHED = ("pending", "running", "cancelled")
SUMMARY_COLUMNS = ["app", "tasks", "done", "failed", "cached", "unfinished", "time"]


class RunWatcher:
    """Polls the scheduler for the state of the run that the script starts."""

    def __init__(self, script: str, live: Live | None = None, interval: float = POLL_INTERVAL):
        self.script = os.path.abspath(script)
        self.started = time.time()
        self.live = live
        self.interval = interval
        self.client = None
        self.session = None  # the run's daskflow.client.session.Session
        self.run_dir: str | None = None
        self.snapshot: dict | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="daskflow-run-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        # look for the run often until it starts, then poll at the interval
        while not self._stop.wait(self.interval if self.session else 0.05):
            self.poll()
            if self.live is not None:
                self.live.update(render_progress(self.snapshot))

    def _find(self) -> None:
        import distributed

        try:
            client = distributed.default_client()
        except ValueError:
            return
        session = client.__dict__.get("_daskflow_session")
        if session is not None and session.run_id is not None:
            self.client, self.session, self.run_dir = client, session, session.run_dir

    def poll(self, settle: bool = False) -> None:
        if self.session is None:
            self._find()
        if self.session is None or self.client.status != "running":
            return
        try:
            snap = self.client.sync(self.client.scheduler.daskflow_workflow,
                                    run_id=self.session.token, settle=settle,
                                    described=self.session.described if settle else 0,
                                    callback_timeout=30)
        except Exception:  # the cluster is going away: keep the last snapshot
            return
        if snap:
            self.snapshot = snap

    def finish(self) -> dict | None:
        """Stop polling; the run's final state (from the store if the script
        closed its cluster)."""
        self._stop.set()
        self._thread.join()
        before = self.snapshot
        if self.session is None:
            self._find()
        if self.session is not None and self.session.burst is not None \
                and self.client.status == "running":
            self.session.burst.flush()  # calls still held for packing go now
        self.poll(settle=True)
        if self.run_dir is None:  # the script closed its client before we saw it
            self.run_dir = recorded_run(self.script, self.started)
        if self.run_dir is not None and (self.snapshot is None or self.snapshot is before) \
                and (self.client is None or self.client.status != "running"):
            self.snapshot = from_store(self.run_dir) or self.snapshot
        return self.snapshot


def recorded_run(script: str, since: float) -> str | None:
    """The directory of the newest run of ``script`` recorded since ``since``."""
    from ..provenance.store import default_base, list_runs

    base = os.path.abspath(default_base())
    runs = [r for r in list_runs(base)
            if r["script"] == script and (r["start_time"] or 0) >= since - 1]
    return os.path.join(base, runs[-1]["run_id"]) if runs else None


def from_store(run_dir: str, wait: float = 3.0) -> dict | None:
    """The snapshot's fields read from the run's provenance database (its
    cluster is gone, so its plugin wrote everything it had)."""
    from ..provenance.store import DB_NAME, ProvenanceStore

    path = os.path.join(run_dir, DB_NAME)
    deadline = time.monotonic() + wait
    while True:
        try:
            with ProvenanceStore(path, readonly=True) as store:
                s = store.summary()
        except Exception:
            return None
        run = s["run"] or {}
        if run.get("end_time") is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    apps = {}
    for app, a in s["apps"].items():
        apps[str(app)] = {**{k: 0 for k in ("pending", "running", "done", "failed", "memo",
                                            "cancelled")},
                          **a["states"], "total": a["total"], "compute": a["duration_total"]}
    return {"run_id": run.get("run_id", os.path.basename(run_dir)), "script": run.get("script"),
            "start": run.get("start_time"), "end": run.get("end_time"),
            "status": run.get("status") or "?", "apps": apps,
            "n_failed": len(s["failures"]), "failures": s["failures"]}


def render_progress(snap: dict | None):
    """The live display: a bar and counts per app."""
    if snap is None:
        return Text("daskflow: waiting for the script's first app call…", style="dim")
    elapsed = (snap.get("end") or time.time()) - (snap.get("start") or time.time())
    table = Table(title=f"daskflow run {snap['run_id']} · {elapsed:.1f} s", title_justify="left",
                  box=None, pad_edge=False)
    for name in ("app", "progress", "done", "failed", "cached", "running", "pending"):
        table.add_column(name, justify="left" if name in ("app", "progress") else "right")
    for app, c in sorted(snap["apps"].items()):
        finished = c["done"] + c["failed"] + c["memo"]
        table.add_row(app, ProgressBar(total=max(c["total"], 1), completed=finished, width=30),
                      str(c["done"]), str(c["failed"]), str(c["memo"]), str(c["running"]),
                      str(c["pending"]))
    return table


def summary_rows(snap: dict) -> tuple[list[list], list]:
    """Per app: tasks, done, failed, cached (memo hits), unfinished, compute
    time; and the totals row ("all")."""
    totals = dict.fromkeys(("total", "done", "failed", "memo", "unfinished", "compute"), 0)
    rows = []
    for app, c in sorted(snap["apps"].items()):
        row = {"total": c["total"], "done": c["done"], "failed": c["failed"], "memo": c["memo"],
               "unfinished": sum(c.get(s, 0) for s in UNFINISHED), "compute": c["compute"] or 0}
        for k in totals:
            totals[k] += row[k]
        rows.append([app, *(row[k] for k in ("total", "done", "failed", "memo", "unfinished")),
                     fmt_duration(row["compute"])])
    return rows, ["all", *(totals[k] for k in ("total", "done", "failed", "memo", "unfinished")),
                  fmt_duration(totals["compute"])]


def print_summary(snap: dict) -> None:
    """The summary listing on stderr (see :mod:`daskflow.cli.tables`)."""
    rows, total = summary_rows(snap)
    echo_listing(SUMMARY_COLUMNS, rows, right=["time"], total=total,
                 title=f"Summary of run {snap['run_id']}", err=True)


def succeeded(snap: dict) -> bool:
    """Every task of the run done or answered from the cache."""
    return all(c["failed"] == 0 and all(c.get(s, 0) == 0 for s in UNFINISHED)
               for c in snap["apps"].values())


def run_script(script: str, args: tuple[str, ...], profile: str | None = None,
               progress: bool = True, parsl: bool = False) -> int:
    """Run ``script`` with ``args``; the exit code: the script's own if it
    exited non-zero or raised (1), else 0 only if every task succeeded.
    ``parsl``: ``import parsl`` gives ``daskflow.parsl``."""
    console = Console(stderr=True)
    if parsl:
        from ..parsl import install

        install()
    if profile is not None:
        import atexit

        from ..client.session import Client

        client = Client(profile=profile, set_as_default=True)  # ProfileError: the caller's
        atexit.register(client.close)
    live = None
    if progress and console.is_terminal:
        live = Live(render_progress(None), console=console, refresh_per_second=4, transient=True,
                    redirect_stdout=sys.stdout.isatty(), redirect_stderr=True)
        live.start()
    watcher = RunWatcher(script, live)
    watcher.start()
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            code = 1
        else:
            code = exc.code or 0
    except BaseException:  # report like python would, then fail
        code = 1
        if live is not None:
            live.stop()
        traceback.print_exc()
    snap = watcher.finish()
    if live is not None:
        live.stop()
    if snap is None:
        if watcher.run_dir is None:
            console.print("daskflow: the script started no daskflow run (no app was called, "
                          "or provenance is off)", style="dim")
        return code
    print_summary(snap)
    console.print(f"run {snap['run_id']}: {watcher.run_dir}\n"
                  f"details: daskflow show {snap['run_id']} --dir "
                  f"{os.path.dirname(watcher.run_dir)}", highlight=False)
    if code == 0 and not succeeded(snap):
        code = 1
    return code
