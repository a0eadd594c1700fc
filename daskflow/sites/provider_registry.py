"""The providers by name, in the order they were defined.

A ``Provider`` subclass with a ``name`` joins this table when it is defined
(``providers/base.py``); the profile schema reads it when a profile is
validated. It is its own module, importing nothing, so that the schema and
the providers (whose pool types are schema classes) need not import each
other.
"""

PROVIDERS: dict[str, type] = {}
