"""Listing tables for the ``daskflow`` commands: one look for every listing.

``runs``, ``tasks``, ``show``, ``cache ls``, ``profiles ls`` and the summary
of ``daskflow run`` all print rows of values under a header row. They are
built here, with rich, the same way:

- a column is right-aligned when it holds numbers (every value an ``int`` or
  ``float``) or when the command names it in ``right`` (quantities printed
  with a unit, such as sizes, ages and durations); the others are left-aligned;
- a missing value (``None``) is printed ``-``; a value is never wrapped,
  folded or cut, whatever its length (keys and URLs stay whole and
  copyable), and a line break inside a value becomes a space, so that each
  row is one line;
- in a terminal the header is bold and ruled (and a ``total`` row ruled
  off); anywhere else (a pipe, a file, a test) there is no box or colour:
  columns are separated by two spaces and lines carry no trailing blanks, so
  ``line.split()`` or ``awk`` read them.

Rich's layout costs about 50 microseconds per cell, so long listings are
rendered and written :data:`CHUNK` rows at a time with column widths fixed
once: the first rows show at once (``daskflow tasks | head``) and memory
stays flat.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
import io
from numbers import Real
import sys

import click
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

MISSING = "-"
CHUNK = 500  # rows rendered at a time
GAP = 2  # spaces between columns when there is no box


def _cell(value) -> str:
    if value is None:
        return MISSING
    return " ".join(str(value).splitlines())


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _right(columns: Sequence[str], rows: Sequence[Sequence], right: Iterable[str]) -> list[bool]:
    named = set(right)
    unknown = named - set(columns)
    if unknown:  # a typo would silently left-align a column
        raise ValueError(f"right={sorted(unknown)} names no column of {list(columns)}")
    return [name in named or (bool(rows) and all(_is_number(r[i]) or r[i] is None for r in rows)
                              and any(r[i] is not None for r in rows))
            for i, name in enumerate(columns)]


def is_terminal(err: bool = False) -> bool:
    """Whether standard output (or error) is a terminal."""
    stream = sys.stderr if err else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # None, or closed
        return False


def _render(table: Table, terminal: bool) -> list[str]:
    console = Console(file=io.StringIO(), width=1_000_000, force_terminal=terminal,
                      color_system="standard" if terminal else None, force_jupyter=False,
                      force_interactive=False, legacy_windows=False, highlight=False,
                      markup=False, emoji=False, soft_wrap=False)
    console.print(table)
    return [line.rstrip() for line in console.file.getvalue().splitlines()]


def listing_lines(columns: Sequence[str], rows: Sequence[Sequence], *, right: Iterable[str] = (),
                  total: Sequence | None = None, title: str | None = None,
                  terminal: bool = False) -> Iterator[str]:
    """The lines of a listing: ``title`` (if any), the header, one line per row.

    Parameters
    ----------
    columns
        The header, one name per column.
    rows
        The values, one sequence per row, in column order.
    right
        Names of columns to right-align besides those that hold numbers
        (quantities with a unit: sizes, ages, durations).
    total
        A last row set off from the others (ruled in a terminal), e.g. totals.
    title
        A line above the table.
    terminal
        Style for a terminal (bold ruled header) rather than for a pipe.
    """
    every = [*rows, *([total] if total is not None else [])]
    if any(len(r) != len(columns) for r in every):
        raise ValueError(f"a row has not the {len(columns)} values of columns {list(columns)}")
    aligned = _right(columns, every, right)
    cells = [[_cell(v) for v in r] for r in rows]
    last = [_cell(v) for v in total] if total is not None else None
    widths = [max(cell_len(c) for c in [name, *(r[i] for r in cells), *(last[i:i + 1] if last else [])])
              for i, name in enumerate(columns)]

    def table(header: bool, part: list[list[str]], footer: bool) -> Table:
        t = Table(box=box.SIMPLE if terminal else None, show_header=header,
                  show_footer=footer, show_edge=False, pad_edge=False, padding=(0, GAP // 2),
                  header_style="bold" if terminal else "", footer_style="bold" if terminal else "",
                  highlight=False)
        for i, (name, r, w) in enumerate(zip(columns, aligned, widths)):
            t.add_column(Text(name), footer=Text(last[i]) if footer else "", width=w,
                         justify="right" if r else "left", no_wrap=True)
        for row in part:
            t.add_row(*(Text(c) for c in row))
        return t

    if title:
        yield title
    chunks = [cells[i:i + CHUNK] for i in range(0, len(cells), CHUNK)] or [[]]
    for n, part in enumerate(chunks):
        first, final = n == 0, n == len(chunks) - 1
        lines = _render(table(first, part, final and last is not None), terminal)
        yield from lines


def echo_listing(columns: Sequence[str], rows: Sequence[Sequence], *, right: Iterable[str] = (),
                 total: Sequence | None = None, title: str | None = None,
                 err: bool = False) -> None:
    """Print a listing (see :func:`listing_lines`) to standard output (or
    error), styled for a terminal only when it is one."""
    lines: list[str] = []
    for line in listing_lines(columns, rows, right=right, total=total, title=title,
                              terminal=is_terminal(err)):
        lines.append(line)
        if len(lines) >= CHUNK:
            click.echo("\n".join(lines), err=err)
            lines = []
    if lines:
        click.echo("\n".join(lines), err=err)


def listing(columns: Sequence[str], rows: Sequence[Sequence], **kw) -> str:
    """A listing as plain text (for a pipe), one string; see :func:`listing_lines`."""
    return "\n".join(listing_lines(columns, rows, **kw))
