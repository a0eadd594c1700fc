"""The ``daskflow`` command."""

from __future__ import annotations

import os
import runpy
import sys

import click

from . import __version__
from .cli_cache import cache
from .cli_profiles import profiles
from .cli_provenance import register as register_provenance


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="daskflow")
def main() -> None:
    """daskflow: Parsl-style apps on Dask distributed."""


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--profile", "-p", default=None,
              help="Site profile to run on (a name or a YAML file); default: the local cluster.")
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(profile: str | None, script: str, args: tuple[str, ...]) -> None:
    """Run a workflow SCRIPT (with its ARGS) as ``python SCRIPT ARGS`` would.

    The script need not create a client: with --profile, the profile's
    cluster is started first; without, the script's first app call starts the
    embedded local cluster. The exit code is 1 if the script raises.
    """
    if profile is not None:
        import atexit

        from .client import Client
        from .sites.profile import ProfileError

        try:
            client = Client(profile=profile, set_as_default=True)
        except (ProfileError, NotImplementedError) as exc:
            raise click.UsageError(str(exc)) from exc
        atexit.register(client.close)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        raise
    except BaseException as exc:  # report like python would, then fail
        import traceback

        traceback.print_exc()
        raise SystemExit(1) from exc


main.add_command(cache)
main.add_command(profiles)
register_provenance(main)

if __name__ == "__main__":  # pragma: no cover
    main()
