"""Every ``daskflow`` command's --help reads correctly in a terminal: click
prints docstrings as they are, so no reST markup, and no names of arguments,
metavars or options that the command does not have."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from daskflow.cli.main import main

# Upper-case words that are not placeholders: file formats and the like.
TERMS = {"DOT", "JSON", "PROV", "W3C", "YAML"}

CAPS = re.compile(r"(?<![\w$.-])[A-Z][A-Z0-9_]+(?![\w])")
LONG_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def walk(command: click.Command, path: tuple[str, ...] = ()):
    """(path, command) for the command and every subcommand below it."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


def render_help(group: click.Command, path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(group, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def help_body(text: str) -> str:
    """The help without its usage lines and its list of subcommands (whose
    texts are checked with the subcommands)."""
    text = text.split("\nCommands:\n")[0]
    assert text.startswith("Usage: "), text
    return text.split("\n\n", 1)[1]


def names_of(command: click.Command, ctx: click.Context) -> tuple[set[str], set[str]]:
    """The placeholders (argument names, option metavars) and long options of
    ``command``, as its help shows them."""
    placeholders, options = set(), set()
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument):
            placeholders.add(param.human_readable_name)
        else:
            record = param.get_help_record(ctx)
            if record:
                placeholders |= set(CAPS.findall(record[0]))
            options |= {o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")}
    return placeholders, options


def problems(group: click.Command, path: tuple[str, ...], command: click.Command) -> list[str]:
    """What is wrong with the --help of ``command`` (at ``path`` under ``group``)."""
    body = help_body(render_help(group, path))
    ctx = click.Context(command, info_name=path[-1] if path else "daskflow")
    placeholders, options = names_of(command, ctx)
    found = []
    if "`" in body:
        found.append("backticks (reST or Markdown markup)")
    if re.search(r"::\s*$|:(func|class|meth|mod|attr|data):", body, re.M):
        found.append("reST markup")
    found += [f"{w} is no argument or metavar" for w in CAPS.findall(body)
              if w not in placeholders | TERMS]
    found += [f"{o} is no option" for o in LONG_OPTION.findall(body) if o not in options]
    return found


COMMANDS = list(walk(main))


def test_walks_every_command():
    walked = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "run", "runs", "show", "tasks", "graph", "cache", "cache ls", "cache prune",
            "cache clear", "profiles", "profiles ls", "profiles show", "profiles check",
            "profiles from-parsl", "globus", "globus login"} <= walked


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "daskflow" for p, _ in COMMANDS])
def test_help_reads_correctly(path, command):
    assert problems(main, path, command) == []


def test_checker_sees_placeholders_and_options():
    """The check is not vacuous: it reads the names the help mentions."""
    body = help_body(render_help(main, ("tasks",)))
    ctx = click.Context(main.commands["tasks"], info_name="tasks")
    placeholders, options = names_of(main.commands["tasks"], ctx)
    assert "RUN" in CAPS.findall(body) and "RUN" in placeholders
    assert {"DIR", "TEXT"} <= placeholders and {"--dir", "--state", "--app"} <= options


def test_checker_catches_a_missing_argument_and_markup():
    @click.group()
    def group():
        """Old-style texts."""

    @group.command()
    @click.option("--dir", "base", metavar="DIR", help="The runinfo directory.")
    def runs(base):
        """List the runs recorded under RUNINFO, oldest first (see --base)."""

    @group.command()
    @click.argument("script")
    def run(script):
        """Run a workflow SCRIPT as ``python SCRIPT`` would."""

    assert problems(group, ("runs",), runs) == ["RUNINFO is no argument or metavar",
                                                "--base is no option"]
    assert problems(group, ("run",), run) == ["backticks (reST or Markdown markup)"]
    assert problems(group, (), group) == []
