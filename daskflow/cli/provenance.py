"""``daskflow runs/show/tasks/graph``: the provenance store from the shell.

The commands are plain click commands; the main ``daskflow`` group adds them
with ``main.add_command(...)`` (or :func:`register`). Every command takes
``--dir DIR``, the runinfo directory (default: dask config ``daskflow.run-dir``,
``runinfo``); ``RUN`` is a run number ("003", "3"), "latest" (the default) or
"-N" (``-1`` is the latest).

What they print is redacted once more (``daskflow.redaction``): a database
written by an older daskflow may hold URL passwords or signed query strings.
"""

from __future__ import annotations

import json
import os
import time

import click
from dask.utils import format_bytes

from ..provenance.store import DB_NAME, STATES, ProvenanceStore, default_base, find_run, list_runs
from ..redaction import redact_text
from .tables import echo_listing

dir_option = click.option(
    "--dir", "base", type=click.Path(file_okay=False), default=None, metavar="DIR",
    help="The runinfo directory (default: dask config daskflow.run-dir, 'runinfo').")
run_argument = click.argument("run", default="latest", required=False)
# so that a RUN of "-1" is not taken for an unknown option
RUN_SETTINGS = {"ignore_unknown_options": True}


def fmt_duration(seconds) -> str:
    """"-", "0.4ms", "0.42s", "12.3s", "4m05s", "2h03m".

    Not :func:`dask.utils.format_time`, which means the same but writes
    ``"420.00 ms"``, ``"245.00 s"`` (up to ten minutes) and ``"2hr 3m"``: a
    blank inside a value would split it in two for whoever reads the listings
    with ``line.split()`` or ``awk``, and these are shorter.
    """
    if seconds is None:
        return "-"
    if seconds < 0.01:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def fmt_time(t) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def first_line(text, width: int = 100) -> str:
    lines = str(text or "").strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def open_run(base: str | None, run: str) -> ProvenanceStore:
    """The store of ``run`` under ``base``, read-only; click errors if absent."""
    base = base or default_base()
    try:
        path = find_run(base, run)
        return ProvenanceStore(os.path.join(path, DB_NAME), readonly=True)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("runs")
@dir_option
def runs(base: str | None) -> None:
    """List the runs recorded in the runinfo directory, oldest first."""
    base = base or default_base()
    found = list_runs(base)
    if not found:
        click.echo(f"no runs in {os.path.abspath(base)}")
        return
    rows = [[r["run_id"], os.path.basename(r["script"]) if r["script"] else "-",
             f"{r['user'] or '?'}@{r['host'] or '?'}",
             fmt_time(r["start_time"]), fmt_duration(r["duration"]), r["status"],
             r["tasks"], r["done"], r["failed"], r["memo"]] for r in found]
    echo_listing(["run", "script", "user@host", "start", "duration", "status", "tasks",
                  "done", "failed", "memo"], rows, right=["duration"])


@click.command("show", context_settings=RUN_SETTINGS)
@run_argument
@dir_option
def show(run: str, base: str | None) -> None:
    """Summarise RUN: counts by app and state, durations, failures.

    RUN is a run number (3 or 003), latest (the default) or -N (-1 is the
    latest run, -2 the one before).
    """
    with open_run(base, run) as store:
        s = store.summary()
    r = s["run"] or {}
    click.echo(f"run {r.get('run_id', '?')}  {r.get('script') or '-'}  "
               f"{r.get('user') or '?'}@{r.get('host') or '?'}  status: {r.get('status', 'unfinished')}")
    click.echo(f"start {fmt_time(r.get('start_time'))}  end {fmt_time(r.get('end_time'))}  "
               f"duration {fmt_duration(r.get('duration'))}")
    for label, key in (("cwd", "cwd"), ("scheduler", "scheduler"), ("profile", "profile")):
        if r.get(key):
            click.echo(f"{label} {r[key]}")
    if r.get("versions"):
        click.echo("versions " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()))
    click.echo("")
    if not s["apps"]:
        click.echo("no tasks")
    else:
        rows = [[app if app is not None else "?", a["total"], *(a["states"].get(st, 0) for st in STATES),
                 a["memo_hits"], a["retried"], fmt_duration(a["duration_mean"]),
                 fmt_duration(a["duration_total"] if a["duration_mean"] is not None else None)]
                for app, a in s["apps"].items()]
        echo_listing(["app", "tasks", *STATES, "memo hits", "retried", "mean", "total"], rows,
                     right=["mean", "total"])
    if s["failures"]:
        click.echo(f"\nfailures ({len(s['failures'])}):")
        for f in s["failures"]:
            extra = [f"exit code {f['exit_code']}" if f["exit_code"] is not None else "",
                     f"{f['tries']} tries" if (f["tries"] or 0) > 1 else "",
                     f"on {f['worker']}" if f["worker"] else ""]
            extra = ", ".join(e for e in extra if e)
            click.echo(f"  {f['app']} {f['tid']} ({f['key']})" + (f"  [{extra}]" if extra else ""))
            if f.get("args"):
                click.echo(f"      arguments: {first_line(redact_text(f['args']), 200)}")
            for text in redact_text(str(f["exception"] or "(no message)")).strip().splitlines()[:20]:
                click.echo(f"      {text}")


@click.command("tasks", context_settings=RUN_SETTINGS)
@run_argument
@click.option("--state", multiple=True, type=click.Choice(STATES, case_sensitive=False),
              help="Only tasks in this state (repeatable).")
@click.option("--app", multiple=True, help="Only tasks of this app (repeatable).")
@dir_option
def tasks(run: str, state: tuple[str, ...], app: tuple[str, ...], base: str | None) -> None:
    """List the tasks of RUN, one line each, in task-id order, with what
    each used: processor time (user, system), peak memory, bytes read and
    written.

    RUN is a run number (3 or 003), latest (the default) or -N (-1 is the
    latest run, -2 the one before).
    """
    with open_run(base, run) as store:
        found = store.tasks(state=[s.lower() for s in state] or None, app=list(app) or None)
    if not found:
        click.echo("no tasks")
        return
    rows = [[t["tid"] or "-", t["app"] or "?", t["state"], fmt_duration(t["duration"]),
             *_usage_cells(t), t["tries"], t["worker"] or "-",
             first_line(redact_text(t["exception"]))]
            for t in found]
    echo_listing(["tid", "app", "state", "duration", *USAGE_HEADS, "tries", "worker",
                  "exception"], rows, right=["duration", *USAGE_HEADS])


USAGE_HEADS = ("cpu_user", "cpu_sys", "peak_mem", "read", "written")  # one word each: awk reads them


def _usage_cells(task: dict) -> list[str]:
    """What a call used, as ``daskflow tasks`` shows it ("-": not measured)."""
    if task.get("cpu_user") is None:
        return ["-"] * len(USAGE_HEADS)
    return [f"{task['cpu_user']:.3f}s", f"{task['cpu_system']:.3f}s",
            *(format_bytes(int(task[k] or 0)) for k in ("peak_memory", "read_bytes",
                                                         "write_bytes"))]


@click.command("graph", context_settings=RUN_SETTINGS)
@run_argument
@click.option("--format", "fmt", type=click.Choice(["dot", "json", "prov"]), default="dot",
              show_default=True, help="Graphviz DOT, a JSON graph, or W3C PROV-JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of standard output.")
@dir_option
def graph(run: str, fmt: str, output: str | None, base: str | None) -> None:
    """Export the task graph of RUN as DOT, JSON or W3C PROV-JSON.

    RUN is a run number (3 or 003), latest (the default) or -N (-1 is the
    latest run, -2 the one before). To draw run 3 with Graphviz:

    \b
        daskflow graph 3 | dot -Tsvg > graph.svg
    """
    from ..provenance.export import to_dot, to_json, to_prov

    with open_run(base, run) as store:
        if fmt == "dot":
            text = to_dot(store)
        else:
            text = json.dumps((to_json if fmt == "json" else to_prov)(store), indent=2) + "\n"
    if output:
        with open(output, "w") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


COMMANDS = (runs, show, tasks, graph)


def register(group: click.Group) -> None:
    """Add the provenance commands to a click group (the ``daskflow`` command)."""
    for command in COMMANDS:
        group.add_command(command)
