"""``daskflow dashboard [RUN]``: the Workflow page of a recorded run.

A live run's page dies with its script (the scheduler serves it); this
command serves the same page from the run's provenance database, for a run
that finished, was killed, or is still going on elsewhere (the page follows
its database). Parsl's ``parsl-visualize`` does this for Parsl's monitoring
database.
"""

from __future__ import annotations

import os

import click

from ..provenance.store import default_base, find_run, list_runs
from .provenance import RUN_SETTINGS, dir_option, run_argument


@click.command("dashboard", context_settings=RUN_SETTINGS)
@run_argument
@click.option("--all", "every", is_flag=True, default=False,
              help="Offer every run of the runinfo directory in the page's run menu.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Another than 127.0.0.1 lets other machines reach "
                   "the page (it still asks for the printed token).")
@click.option("--port", default=8788, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: a free one).")
@dir_option
def dashboard(run: str, every: bool, host: str, port: int, base: str | None) -> None:
    """Serve the Workflow page of RUN until Ctrl-C: counts per app and
    state, the task timeline by worker, the app graph, the failures, and
    the pools and blocks of its workers.

    RUN is a run number (3 or 003), latest (the default) or -N (-1 is the
    latest run, -2 the one before). The page's address, with the token it
    asks for, is printed once it is served.
    """
    from ..dashboard.serve import serve
    from ..provenance.recorded import RecordedRuns

    base = base or default_base()
    try:
        chosen = find_run(base, run)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    directories = [r["path"] for r in list_runs(base)] if every else [chosen]
    if chosen not in directories:
        directories.append(chosen)
    runs = RecordedRuns(directories, shown=chosen)

    def started(url: str) -> None:
        click.echo(f"Workflow page of run {os.path.basename(chosen)}"
                   f"{f' (and {len(directories) - 1} other runs)' if every else ''}: {url}")
        click.echo("Ctrl-C to stop.")

    try:
        serve(runs, host=host, port=port, started=started)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc}") from None
    except KeyboardInterrupt:
        pass
