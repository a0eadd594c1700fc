"""Per-scheme storage options and staging settings, from ``dask.config``.

Options for a scheme live under ``daskflow.staging.<scheme>`` (for example
``daskflow.staging.s3.endpoint_url`` or ``DASK_DASKFLOW__STAGING__S3__ANON=true``)
and are passed as keyword arguments to the fsspec filesystem of that scheme.
A site profile's ``staging:`` section feeds the same keys. Credentials never
come from code: the app call carries none.

The driver takes a snapshot of these settings when an app is called (only
for the schemes the call names) and ships it with the task, so that what the
driver's config (or profile) says reaches workers started elsewhere; a
scheme the snapshot lacks (a File that arrived through a future) is read
from the worker's own config.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import dask

from ..shipped import reduce_to_fields

# Keys under daskflow.staging that are settings of daskflow, not schemes.
RESERVED = frozenset(("dir", "cache", "transfers", "secede", "retry"))
# Schemes that share another scheme's options (their own keys win).
ALIASES = {"https": "http", "s3a": "s3", "gcs": "gs", "abfs": "az", "abfss": "az"}


def staging_options(scheme: str) -> dict[str, Any]:
    """Storage options for ``scheme`` from ``daskflow.staging.<scheme>``.

    Top-level keys are fsspec keyword arguments; kebab-case keys are turned
    into snake_case (``endpoint-url`` → ``endpoint_url``). ``https`` falls
    back on ``http``, ``s3a`` on ``s3``, ``gcs`` on ``gs`` (and its own keys win).
    """
    scheme = scheme.lower()
    if scheme in RESERVED:
        raise ValueError(f"'{scheme}' is a staging setting, not a URL scheme")
    merged: dict[str, Any] = {}
    for name in (ALIASES.get(scheme), scheme):
        if name:
            section = dask.config.get(f"daskflow.staging.{name}", default=None) or {}
            if not isinstance(section, dict):
                raise TypeError(f"dask config daskflow.staging.{name} must be a mapping of "
                                f"storage options, got {type(section).__name__}")
            merged.update({k.replace("-", "_"): v for k, v in section.items()})
    return merged


@dataclass(slots=True, eq=False)
class Settings:
    """Everything the worker needs to stage one call: a picklable snapshot.

    ``schemes`` maps a scheme to its storage options (None: read the
    worker's config when needed); the rest are the ``daskflow.staging``
    settings of the moment the snapshot was taken.
    """

    schemes: dict[str, dict] = field(default_factory=dict)
    dir: str | None = None
    cache_enabled: bool = True
    cache_dir: str | None = None
    cache_max_bytes: int = 0
    cache_check_every: float = 0.0
    transfers: int = 4
    secede: bool = True
    retry_attempts: int = 3
    retry_backoff: float = 0.5
    retry_max_backoff: float = 10.0

    def __post_init__(self):
        self.schemes = self.schemes or {}

    def options(self, scheme: str) -> dict[str, Any]:
        found = self.schemes.get(scheme)
        return dict(found) if found is not None else staging_options(scheme)

    @property
    def root(self) -> str:
        """The node-local directory of staged files (tasks' copies and the cache)."""
        return self.dir or os.path.join(tempfile.gettempdir(), f"daskflow-staging-{os.getuid()}")

    __reduce__ = reduce_to_fields


def snapshot(schemes=()) -> Settings:
    """The current ``daskflow.staging`` settings, with options for ``schemes``."""
    cfg = dask.config.get
    transfers = int(cfg("daskflow.staging.transfers", default=4))
    if transfers < 1:
        raise ValueError(f"daskflow.staging.transfers must be >= 1, got {transfers}")
    return Settings(
        schemes={s: staging_options(s) for s in schemes},
        dir=cfg("daskflow.staging.dir", default=None),
        cache_enabled=bool(cfg("daskflow.staging.cache.enabled", default=True)),
        cache_dir=cfg("daskflow.staging.cache.dir", default=None),
        cache_max_bytes=int(dask.utils.parse_bytes(
            cfg("daskflow.staging.cache.max-bytes", default="10 GiB"))),
        cache_check_every=float(dask.utils.parse_timedelta(
            cfg("daskflow.staging.cache.check-every", default="60s"), default="s")),
        transfers=transfers,
        secede=bool(cfg("daskflow.staging.secede", default=True)),
        retry_attempts=max(1, int(cfg("daskflow.staging.retry.attempts", default=3))),
        retry_backoff=_seconds(cfg("daskflow.staging.retry.backoff", default="0.5s")),
        retry_max_backoff=_seconds(cfg("daskflow.staging.retry.max-backoff", default="10s")),
    )


def _seconds(value) -> float:
    return float(dask.utils.parse_timedelta(value, default="s"))
