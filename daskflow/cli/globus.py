"""``daskflow globus login``: store Globus tokens for ``globus://`` Files."""

from __future__ import annotations

import click


@click.group()
def globus() -> None:
    """Globus authentication for globus:// Files (see docs/staging.md)."""


@globus.command()
@click.option("--client-id", default=None,
              help="A native app's client id; default: daskflow.staging.globus.client-id.")
@click.option("--token-file", default=None, type=click.Path(dir_okay=False),
              help="Where to store the tokens (mode 0600); default: "
                   "daskflow.staging.globus.token-file or ~/.config/daskflow/globus-tokens.json.")
def login(client_id: str | None, token_file: str | None) -> None:
    """Log in to Globus in a browser and store the tokens.

    Prints a Globus login link to open in a browser, asks for the code the
    page then shows, and stores the tokens with a refresh token, so that
    globus:// Files keep working after the access token expires.
    """
    from ..staging.globus import login as native_login
    from ..staging.options import staging_options

    options = staging_options("globus")
    client_id = client_id or options.get("client_id")
    if not client_id:
        raise click.UsageError("give --client-id or set daskflow.staging.globus.client-id")
    path = native_login(client_id, token_file or options.get("token_file"),
                        ask=lambda prompt: click.prompt(prompt.rstrip(": "), type=str),
                        say=click.echo)
    click.echo(f"Globus tokens stored in {path} (readable by you only)")
