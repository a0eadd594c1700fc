"""``daskflow profiles``: list, show and check site profiles."""

from __future__ import annotations

import os
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


@profiles.command("from-parsl")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the profile to this YAML file (default: standard output).")
@click.option("--name", default=None,
              help="The profile's name (default: the output file's name, else the config's).")
@click.option("--force", is_flag=True, default=False, help="Replace the output file if it exists.")
def from_parsl_cmd(config_file, output, name, force):
    """Write the site profile equivalent to a Parsl configuration.

    CONFIG_FILE is a Python file that defines a Parsl Config as "config"
    (or a function fresh_config() returning one); it runs with "import
    parsl" giving daskflow.parsl, so give it the configuration, not the
    workflow script. The Config is translated as parsl.load would; the
    profile is validated and written as YAML. What a profile cannot hold
    (a Python retry handler, exit_mode, run_dir, options without meaning
    on Dask) is named in comments at its top; Python objects with no YAML
    equivalent are also warned about on stderr.
    """
    from ..parsl.to_profile import load_config, to_profile

    stem = os.path.splitext(os.path.basename(output or config_file))[0]
    name = name or stem
    if output and os.path.exists(output) and not force:
        raise click.UsageError(f"{output} exists; give --force to replace it")
    try:
        translated = to_profile(load_config(config_file), name, config_file)
    except Exception as e:  # the config file's own code, or what cannot be translated
        click.echo(f"{config_file}: {type(e).__name__}: {e}", err=True)
        sys.exit(1)
    for warning in translated.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output is None:
        click.echo(translated.text, nl=False)
        return
    with open(output, "w") as f:
        f.write(translated.text)
    p = validate_file(output)
    click.echo(f"wrote {output} (profile {p.name!r}: {_pools(p)})", err=True)
