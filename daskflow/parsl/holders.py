"""Parsl's configuration classes as plain data holders.

A script builds ``Config``, executors, providers and launchers with Parsl's
constructor keywords; ``parsl.load`` reads them (``translate``). Each holder
declares Parsl's keywords in Parsl's order with their defaults (and those of
older Parsl releases that scripts still pass), so a misspelt keyword fails
at once with a ``TypeError`` naming it, as in Parsl.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

REQUIRED = object()  #: a keyword without a default


class Holder:
    """Keeps the keywords it was built with as attributes; ``given`` names
    those the script passed (only they can make ``parsl.load`` warn)."""

    keywords: ClassVar[dict[str, Any]] = {}  #: Parsl's keywords and defaults, in order
    legacy: ClassVar[dict[str, Any]] = {}  #: keywords of older Parsl releases

    def __init__(self, *args, **kwargs):
        name = type(self).__name__
        names = list(self.keywords)
        if len(args) > len(names):
            raise TypeError(f"{name}() takes at most {len(names)} positional arguments "
                            f"({len(args)} given)")
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key in given:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            if key not in self.keywords and key not in self.legacy:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
            given[key] = value
        missing = [k for k, d in self.keywords.items() if d is REQUIRED and k not in given]
        if missing:
            raise TypeError(f"{name}() missing required argument {missing[0]!r}")
        self.given = given
        for key, default in {**self.legacy, **self.keywords}.items():
            setattr(self, key, given[key] if key in given else copy.copy(default))

    def changed(self) -> dict[str, Any]:
        """The keywords whose value is not the default, whether given to the
        constructor or set on the object after (``config.retries = 2``)."""
        defaults = {**self.legacy, **self.keywords}
        current = {k: getattr(self, k) for k in defaults}
        return {k: v for k, v in current.items() if not _same(v, defaults[k])}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.given.items())
        return f"{type(self).__name__}({args})"


def _same(value, default) -> bool:
    if isinstance(default, Holder) or isinstance(value, Holder):
        return type(value) is type(default) and not value.changed()
    try:
        return bool(value == default)
    except Exception:
        return False
