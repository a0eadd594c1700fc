"""What Parsl's own tests are known to do on daskflow, and why.

``SKIP``: tests with no meaning on daskflow (Parsl's internals, or what this
machine cannot reach); they do not run. ``FAIL``: differences not yet closed;
they run as strict xfails, so one that starts passing fails the run until it
is taken off this list. Keys are fnmatch patterns of pytest node ids
(relative to the unpacked tree), values ``(modes, reason)`` where modes is a
set of ``"threads"`` (``--config local_threads.py``) and ``"local"``
(``--config local``).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

BOTH = frozenset({"threads", "local"})

SKIP: dict[str, tuple[frozenset, str]] = {
}

FAIL: dict[str, tuple[frozenset, str]] = {
}


def expectation(mode: str, nodeid: str) -> tuple[str, str] | None:
    """``("skip"|"fail", reason)`` for a test of this mode, or None if it must pass."""
    for kind, table in (("skip", SKIP), ("fail", FAIL)):
        for pattern, (modes, reason) in table.items():
            if mode in modes and fnmatchcase(nodeid, pattern):
                return kind, reason
    return None


def unmatched(mode: str, nodeids) -> list[str]:
    """The patterns for ``mode`` that match none of ``nodeids`` (stale entries)."""
    return [pattern for table in (SKIP, FAIL) for pattern, (modes, _) in table.items()
            if mode in modes and not any(fnmatchcase(n, pattern) for n in nodeids)]
