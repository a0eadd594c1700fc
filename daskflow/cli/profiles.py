"""``daskflow profiles``: list, show and check site profiles."""

from __future__ import annotations

import sys

import click
import yaml

from ..sites.profile import ProfileError, available_profiles, load_profile, validate_file
from .tables import echo_listing


@click.group()
def profiles():
    """List, show and check site profiles.

    A site profile is a YAML file that says where a workflow runs: one Dask
    scheduler and its pools of workers (see docs/sites.md).
    """


def _pools(profile) -> str:
    return ", ".join(f"{p.label}:{p.provider}" for p in profile.pools)


@profiles.command("ls")
def ls_cmd():
    """List the available profiles, with their pools and files.

    Yours, in daskflow/profiles/ under the dask config directory
    (~/.config/dask by default), shadow the shipped ones of the same name.
    """
    rows = []
    for name, path in available_profiles().items():
        try:
            p = validate_file(path)
            rows.append([name, p.description, _pools(p), path])
        except ProfileError as e:
            rows.append([name, f"INVALID ({len(e.problems)} problem(s))", "", path])
    echo_listing(["NAME", "DESCRIPTION", "POOLS", "PATH"], rows)


@profiles.command("show")
@click.argument("name")
def show_cmd(name):
    """Print profile NAME (or a YAML file) with its defaults filled in.

    The profile is validated first: if it has problems, they are printed
    instead and the exit code is 1.
    """
    try:
        p = load_profile(name)
    except ProfileError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    click.echo(f"# {p.path}")
    click.echo(yaml.safe_dump(p.to_dict(), sort_keys=False, default_flow_style=False), nl=False)


@profiles.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check_cmd(files):
    """Validate profile FILES; exit 1 if any has problems."""
    failed = False
    for f in files:
        try:
            p = validate_file(f)
        except ProfileError as e:
            click.echo(str(e), err=True)
            failed = True
        else:
            n = len(p.pools)
            click.echo(f"{f}: ok ({n} pool{'s' if n != 1 else ''}: {_pools(p)})")
    sys.exit(1 if failed else 0)
