"""Which mover handles which URL scheme: one table, lazy imports.

As ``fsspec/registry.py``: a scheme maps to a dotted class path, imported
only when a File of that scheme is staged. ``globus`` and ``zip`` (members of
a zip archive, Parsl's ``zip:`` URLs) have their own movers;
every scheme fsspec knows (``http(s)``, ``ftp``, ``s3``, ``gs``, ``az``,
``sftp``…) goes through ``FsspecMover``; other packages add movers through
the ``daskflow.staging`` entry-point group (name: the scheme, value:
``package.module:Class``).

A mover is constructed as ``Mover(scheme, options)`` (options: a dict of
storage options, see ``options.staging_options``) and provides:

``fingerprint(url) -> tuple``
    What identifies the current version of the object (size, ETag, mtime…);
    equal tuples mean equal content as far as the source tells. Raises
    ``FileNotFoundError`` if there is no such object.
``fetch(url, dest) -> None``
    Write the object to the local path ``dest`` (a temporary name: the
    caller renames it once complete).
``push(src, url) -> None``
    Upload the local file ``src`` to ``url``; where the backend allows, the
    object appears complete or not at all.
``cacheable`` (class attribute)
    Whether fetched copies may be kept in the node's staging cache.
``check(app_name, file) -> None`` (optional static method)
    Raise ``UnstageableFile`` (or a subclass) if this File's URL cannot be
    staged; called on the driver when the app is called, without I/O.
"""

from __future__ import annotations

import functools
from importlib import import_module
from importlib.metadata import entry_points

LOCAL_SCHEMES = ("file", "local")
ENTRY_POINT_GROUP = "daskflow.staging"
FSSPEC_MOVER = "daskflow.staging.fsspec.FsspecMover"
MOVERS = {  # scheme: (dotted class path, what to install if its import fails)
    "globus": ("daskflow.staging.globus.GlobusMover", "pip install globus-sdk"),
    "zip": ("daskflow.staging.zipfiles.ZipMover", "it is part of daskflow: reinstall daskflow"),
}


@functools.lru_cache(maxsize=1)
def _plugins() -> dict[str, str]:
    return {ep.name: ep.value.replace(":", ".") for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _import(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


def problem(scheme: str) -> str | None:
    """Why Files of ``scheme`` cannot be staged here, or None if they can.

    Imports the mover (and the fsspec implementation), so a missing package
    is reported at call time rather than on a worker.
    """
    if scheme in MOVERS or scheme in _plugins():
        try:
            mover_class(scheme)
        except ImportError as exc:
            hint = MOVERS.get(scheme, ("", "install the package that provides it"))[1]
            return f"its mover cannot be imported ({exc}); {hint}"
        return None
    from fsspec.registry import get_filesystem_class, known_implementations, registry

    if scheme not in known_implementations and scheme not in registry:
        return (f"no mover knows the scheme '{scheme}' (not an fsspec protocol, not "
                f"globus or zip, no '{ENTRY_POINT_GROUP}' entry point)")
    try:
        get_filesystem_class(scheme)
    except ImportError as exc:
        return f"fsspec cannot load the '{scheme}' filesystem: {exc}"
    return None


@functools.lru_cache(maxsize=64)
def mover_class(scheme: str) -> type:
    """The mover class of ``scheme`` (imported on first use)."""
    if scheme in MOVERS:
        return _import(MOVERS[scheme][0])
    if scheme in _plugins():
        return _import(_plugins()[scheme])
    return _import(FSSPEC_MOVER)


def get_mover(scheme: str, options: dict):
    return mover_class(scheme)(scheme, options)
