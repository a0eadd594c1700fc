"""The ``daskflow`` command."""

from __future__ import annotations

import sys

import click

from ..version import __version__
from .cache import cache
from .dashboard import dashboard
from .globus import globus
from .profiles import profiles
from .provenance import register as register_provenance


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="daskflow")
def main() -> None:
    """daskflow: Parsl-style apps on Dask distributed.

    Run a workflow script (run); look at the runs it recorded (runs, show,
    tasks, graph, dashboard); manage cached app results (cache), site profiles
    (profiles) and Globus logins (globus). Each command has its own --help.
    """


@main.command(context_settings={"ignore_unknown_options": True,
                                "allow_interspersed_args": False})
@click.option("--profile", "-p", default=None,
              help="Site profile to run on (a name or a YAML file); default: the local cluster.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show live progress per app on a terminal (stderr).")
@click.option("--parsl", "parsl", is_flag=True, default=False,
              help="Run a Parsl script unchanged: 'import parsl' gives daskflow.parsl.")
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(profile: str | None, progress: bool, parsl: bool, script: str,
        args: tuple[str, ...]) -> None:
    """Run a workflow SCRIPT, showing live progress per app.

    SCRIPT runs with its ARGS as "python SCRIPT ARGS" would. While it runs,
    a terminal shows progress per app on stderr; at the end come a summary
    table and the run id.

    The script need not create a client: with --profile, the profile's
    cluster is started first; without, the script's first app call starts the
    embedded local cluster. The exit code is 0 only if the script succeeded
    and every task of its run succeeded (done or a cache hit); 1 if the
    script raised or a task failed or never finished.

    With --parsl, "import parsl" in the script gives daskflow.parsl, so a
    Parsl script runs unchanged; its parsl.load(config) starts the cluster.
    """
    from ..parsl.importer import ParslAlreadyImported
    from ..sites.profile import ProfileError
    from .run import run_script

    try:
        code = run_script(script, args, profile=profile, progress=progress, parsl=parsl)
    except (ProfileError, NotImplementedError, ParslAlreadyImported) as exc:
        raise click.UsageError(str(exc)) from exc
    sys.exit(code)


main.add_command(cache)
main.add_command(dashboard)
main.add_command(globus)
main.add_command(profiles)
register_provenance(main)
