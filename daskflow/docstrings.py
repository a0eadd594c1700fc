"""Shared parameter text for docstrings, written once (as dask-jobqueue's
``job_parameters``): a docstring line that holds only ``%(name)s`` is replaced
by ``shared[name]``, indented as that line was."""

from __future__ import annotations

import re
import textwrap

_PLACEHOLDER = re.compile(r"^([ \t]*)%\((\w+)\)s\n", re.MULTILINE)


def fill(doc: str | None, shared: dict[str, str]) -> str | None:
    """``doc`` with each ``%(name)s`` line replaced by ``shared[name]``."""
    if doc is None:  # python -OO drops docstrings
        return None
    return _PLACEHOLDER.sub(lambda m: textwrap.indent(shared[m.group(2)], m.group(1)), doc)


def filled(shared: dict[str, str]):
    """Class or function decorator: ``fill`` its docstring from ``shared``."""
    def decorate(obj):
        obj.__doc__ = fill(obj.__doc__, shared)
        return obj
    return decorate
