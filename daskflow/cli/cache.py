"""``daskflow cache``: list, prune and clear the checkpoint store."""

from __future__ import annotations

from collections import defaultdict
import time

import click
import dask

from ..errors import UnsafeKeyFile
from ..memo.checkpoints import CheckpointStore, Entry, parse_age
from .tables import echo_listing

DIR_HELP = "Checkpoint directory or fsspec URL [default: dask config daskflow.checkpoint.dir]."


def default_dir() -> str:
    """The store named by the dask config value ``daskflow.checkpoint.dir``."""
    url = dask.config.get("daskflow.checkpoint.dir", "runinfo/checkpoints")
    if not url:
        raise click.UsageError("daskflow.checkpoint.dir is null (no checkpoint store); give --dir")
    return str(url)


def human_size(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def human_age(seconds: float) -> str:
    """``5400`` -> ``"1.5h"``, ``864000`` -> ``"10d"`` (the largest of s, m, h, d that fits)."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or unit == "s":
            n = seconds / size
            return f"{n:.1f}{unit}" if n < 10 and unit != "s" else f"{n:.0f}{unit}"
    raise AssertionError  # pragma: no cover


def _short(key: str, n: int = 12) -> str:
    return key if len(key) <= n else key[: n - 3] + "..."


def _total(entries: list[Entry]) -> str:
    n = len(entries)
    return f"{n} {'entry' if n == 1 else 'entries'}, {human_size(sum(e.size for e in entries))}"


def _age(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


dir_option = click.option("--dir", "url", default=None, metavar="URL", help=DIR_HELP)


@click.group("cache")
def cache() -> None:
    """Inspect and clean the checkpoint store of cached app results."""


@cache.command("ls")
@click.option("--app", default=None, help="Only this app's entries.")
@dir_option
@click.option("--summary", is_flag=True, help="One line per app instead of one per entry.")
@click.option("--verify", is_flag=True,
              help="Read every entry and check its signature with your key (never unpickling "
                   "it); list those that do not verify, which runs ignore and recompute.")
def ls(app: str | None, url: str | None, summary: bool, verify: bool) -> None:
    """List the stored entries: app, key, size and age."""
    store = _open(url, readonly=True)
    entries = _entries(store, app)
    now = time.time()
    if not entries:
        click.echo(f"no entries in {store.url}")
        return
    problems: dict[Entry, str] = {}
    if verify:
        try:
            problems = {e: why for e in entries if (why := store.problem(e.app, e.key))}
        except UnsafeKeyFile as exc:
            raise click.ClickException(str(exc)) from exc
    if summary:
        groups: dict[str, list[Entry]] = defaultdict(list)
        for e in entries:
            groups[e.app].append(e)
        rows = [[a, len(g), human_size(sum(e.size for e in g)),
                 human_age(now - max(e.created for e in g)),
                 human_age(now - min(e.created for e in g))]
                + ([sum(e in problems for e in g)] if verify else [])
                for a, g in sorted(groups.items())]
        echo_listing(["APP", "ENTRIES", "SIZE", "NEWEST", "OLDEST"]
                     + (["UNVERIFIED"] if verify else []), rows,
                     right=["SIZE", "NEWEST", "OLDEST"])
    else:
        rows = [[e.app, _short(e.key), human_size(e.size), human_age(now - e.created)]
                + ([("NO" if e in problems else "yes")] if verify else [])
                for e in sorted(entries, key=lambda e: (e.app, -e.created, e.key))]
        echo_listing(["APP", "KEY", "SIZE", "AGE"] + (["VERIFIED"] if verify else []), rows,
                     right=["SIZE", "AGE"])
    click.echo(f"total: {_total(entries)} in {store.url}")
    if verify:
        n = len(problems)
        click.echo(f"{n} {'entry does' if n == 1 else 'entries do'} not verify with your key"
                   + (" (ignored and recomputed by runs, never unpickled):" if n else ""))
        for e, why in problems.items():
            click.echo(f"  {e.app}/{e.key}: {why}")


@cache.command("prune")
@click.option("--app", default=None, help="Only this app's entries.")
@click.option("--older-than", "older_than", default=None, callback=_age, metavar="AGE",
              help="Only entries older than AGE, e.g. 90s, 30m, 12h, 7d, 2w.")
@dir_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def prune(app: str | None, older_than: float | None, url: str | None, yes: bool) -> None:
    """Remove the entries of one app (--app), older than an age (--older-than), or both."""
    if app is None and older_than is None:
        raise click.UsageError("give --app and/or --older-than (or use 'daskflow cache clear')")
    store = _open(url)
    _remove(store, _entries(store, app, older_than), yes, app)


@cache.command("clear")
@dir_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def clear(url: str | None, yes: bool) -> None:
    """Remove every entry of the store."""
    store = _open(url)
    _remove(store, _entries(store, None), yes, everything=True)


def _open(url: str | None, readonly: bool = False) -> CheckpointStore:
    return CheckpointStore(url or default_dir(), readonly=readonly)


def _entries(store: CheckpointStore, app: str | None, older_than: float | None = None) -> list[Entry]:
    try:
        return store.entries(app, older_than)
    except ValueError as exc:  # a bad --app
        raise click.BadParameter(str(exc), param_hint="--app") from exc


def _remove(store: CheckpointStore, entries: list[Entry], yes: bool, app: str | None = None,
            everything: bool = False) -> None:
    if not entries:
        if everything:
            store.clear()  # leftover temporaries and empty directories
        click.echo(f"nothing to remove in {store.url}")
        return
    if not yes:
        click.confirm(f"Remove {_total(entries)} from {store.url}?", abort=True)
    size = sum(e.size for e in entries)
    if everything:
        count = store.clear()
    else:
        count = store.remove(entries)
        store.sweep_temporaries(app)  # stale ones left by killed writers
    click.echo(f"removed {count} {'entry' if count == 1 else 'entries'}, "
               f"{human_size(size)} from {store.url}")
