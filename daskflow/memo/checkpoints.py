"""The checkpoint store: results of cached app calls, kept across sessions.

An entry lives at ``{root}/{app}/{key[:2]}/{key}.ckpt`` and is self-checking::

    magic    8 bytes   b"DFCKPT\\r\\n"
    version  uint16    2
    created  float64   epoch seconds of the put (also inside the payload)
    length   uint64    payload length in bytes
    tag      32 bytes  HMAC-SHA256 (user's checkpoint key) of the four fields
                       above, the app, the key and the payload
    payload  cloudpickle of {"value", "app", "key", "created", "meta"}

(all big-endian), so a truncated, torn or corrupted entry is detected before
anything is unpickled. Listing reads only the 58-byte headers; the age of an
entry is its ``created`` field, not the file's mtime.

Signed, not merely checked. A store may sit where others can write (a shared
directory, a bucket), and unpickling runs code: an unkeyed digest would let
anyone write an entry that passes. The tag is keyed with the user's
checkpoint key (``signing.checkpoint_key``; on workers, the key the driver
shipped in the run's settings), and covers the app and key, so a valid
entry moved to another name does not verify either. An entry that does not
verify (forged, written with another user's key, damaged, or of the
unsigned version 1) is never unpickled: it is a miss, with a warning.

Atomicity. On the local filesystem an entry is written to a hidden temporary
name in its own directory, flushed, fsync'ed and ``os.replace``'d onto its
name, so readers see the old entry or the new one, even if the writer is
killed mid-write; leftover temporaries (``.{key}.ckpt.*.tmp``) are never
listed, and are removed by ``prune`` and ``clear`` once ``STALE_TEMP`` (10
minutes) old, so that a writer at work is not disturbed. On other
fsspec filesystems an entry is one ``fs.pipe``: an object store's PUT (s3,
gcs, azure, ``memory://``) replaces the object atomically. Where a write is
not atomic (e.g. sftp), a torn entry still fails the length and digest
checks and reads as a miss.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import logging
import math
import os
import posixpath
import re
import stat
import struct
import time
from typing import Any, Iterable
import uuid

import cloudpickle
from dask.utils import parse_timedelta
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from .. import signing

logger = logging.getLogger("daskflow.checkpoint")

MAGIC = b"DFCKPT\r\n"
VERSION = 2  # 1: the same layout with an unkeyed sha256, never trusted now
_PREFIX = struct.Struct(">8sHdQ")  # magic, version, created, length
HEADER_SIZE = _PREFIX.size + signing.TAG_BYTES
_APP = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}\Z")
_TEMP = re.compile(r"\..+\.ckpt\..+\.tmp\Z")
STALE_TEMP = 600.0  # seconds after which prune() and clear() remove a leftover temporary


class _Corrupt(Exception):
    """An entry that fails its checks."""


@dataclass(frozen=True)
class Entry:
    """One stored result: its app, key, size in bytes, creation time and URL."""

    app: str
    key: str
    size: int
    created: float
    url: str


def parse_age(text: str) -> float:
    """Parse an age such as ``"90s"``, ``"15m"``, ``"12h"``, ``"7d"`` or ``"2w"`` into seconds.

    :func:`dask.utils.parse_timedelta` does the parsing (so ``"36 hours"`` or
    ``"1.5h"`` work too, as in dask's own config), with two differences that
    suit ``--older-than``: the unit is required (a bare ``"7"`` is more
    likely a forgotten ``d`` than seven seconds) and so is the number (dask
    reads ``"d"`` as one day); and a bad age raises one ``ValueError`` that
    names it, where dask raises ``KeyError``, ``IndexError`` or a float
    conversion error.

    Raises
    ------
    ValueError
        If *text* is not a non-negative number followed by a time unit.
    """
    seconds = None
    if isinstance(text, str) and re.match(r"\s*\.?\d", text):
        try:
            seconds = parse_timedelta("0" + text.strip() if text.strip()[0] == "." else text,
                                      default=False)
        except (ValueError, KeyError, TypeError, IndexError, OverflowError):
            pass
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid age {text!r}: expected a number with a unit "
                         "s, m, h, d or w (seconds, minutes, hours, days, weeks), e.g. '7d'")
    return float(seconds)


def _check(app: str, key: str | None = None) -> None:
    if not isinstance(app, str) or not _APP.match(app):
        raise ValueError(f"invalid checkpoint app name {app!r}: only letters, digits "
                         "and '_' are allowed, not starting with a digit")
    if key is not None and (not isinstance(key, str) or not _KEY.match(key)):
        raise ValueError(f"invalid checkpoint key {key!r}: 1-200 of letters, digits, "
                         "'_', '-' and '.', not starting with '.'")


class CheckpointStore:
    """Results of cached app calls, at a directory or any fsspec URL, written atomically.

    Parameters
    ----------
    url : str
        A directory path (made absolute) or an fsspec URL (``file://``,
        ``memory://``, ``s3://``...).
    storage_options : dict, optional
        Passed to the fsspec filesystem.
    readonly : bool
        A read-only store (e.g. an earlier run's checkpoints) never writes or
        deletes: ``put``, ``prune`` and ``clear`` raise ``PermissionError``,
        and bad entries are left in place.
    key : bytes, optional
        The key that signs and verifies entries; default
        ``signing.checkpoint_key()``, read from the user's key file when
        first needed (listing and removing entries need no key).
    """

    def __init__(self, url: str, storage_options: dict | None = None, readonly: bool = False,
                 key: bytes | None = None):
        url = os.fspath(url)
        if "://" not in url and "::" not in url:
            url = os.path.abspath(os.path.expanduser(url))
        self.url = url
        self.readonly = readonly
        self._key = key
        self.fs, self.root = url_to_fs(url, **(storage_options or {}))
        self.root = self.root.rstrip("/") or "/"
        self._local = isinstance(self.fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"CheckpointStore({self.url!r}{', readonly=True' if self.readonly else ''})"

    @property
    def key(self) -> bytes:
        """The signing key (the user's checkpoint key unless one was given)."""
        if self._key is None:
            self._key = signing.checkpoint_key()
        return self._key

    def _path(self, app: str, key: str) -> str:
        _check(app, key)
        return posixpath.join(self.root, app, key[:2], key + ".ckpt")

    def _url(self, path: str) -> str:
        return path if self._local else self.fs.unstrip_protocol(path)

    def _writable(self) -> None:
        if self.readonly:
            raise PermissionError(f"checkpoint store {self.url} is read-only")

    # -- reading ---------------------------------------------------------------

    def get(self, app: str, key: str) -> tuple[bool, Any]:
        """Look up the result stored for *app* and *key*.

        Returns
        -------
        (bool, object)
            ``(True, value)`` on a hit, ``(False, None)`` on a miss. An entry
            that is corrupt, torn, does not verify with the key or cannot be
            unpickled is logged (WARNING), removed unless the store is
            read-only, and counts as a miss (the call runs again and writes
            a signed entry); an I/O error while reading is logged and counts
            as a miss.
        """
        path = self._path(app, key)
        signing_key = self.key  # a refused key file is the user's error, not a bad entry
        try:
            data = self._read(path)
        except FileNotFoundError:
            return False, None
        except Exception as exc:  # unreadable: leave it, it may be transient
            logger.warning("checkpoint entry %s could not be read (%s: %s); treating it as a miss",
                           self._url(path), type(exc).__name__, exc)
            return False, None
        try:
            return True, self._decode(data, app, key, signing_key)["value"]
        except Exception as exc:
            cause = str(exc) if isinstance(exc, _Corrupt) else f"{type(exc).__name__}: {exc}"
            removed = False
            if not self.readonly:
                with contextlib.suppress(OSError):
                    self.fs.rm_file(path)
                    removed = True
            logger.warning("checkpoint entry %s is ignored (%s); treating it as a miss%s",
                           self._url(path), cause, " and removed it" if removed else "")
            return False, None

    def problem(self, app: str, key: str) -> str | None:
        """Why the entry of *app* and *key* would be ignored, or None if it
        verifies (its payload is never unpickled here)."""
        signing_key = self.key  # a refused key file raises, as in get
        try:
            self._verified(self._read(self._path(app, key)), app, key, signing_key)
        except _Corrupt as exc:
            return str(exc)
        except Exception as exc:
            return f"unreadable ({type(exc).__name__}: {exc})"
        return None

    def _read(self, path: str) -> bytes:
        """An entry's bytes. A local one is read only if it is a regular file
        (not through a symlink, never blocking on a FIFO), as a store may sit
        where others can create files."""
        if not self._local:
            return self.fs.cat_file(path)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _Corrupt("not a regular file")
            with open(fd, "rb", closefd=False) as f:
                return f.read()
        finally:
            os.close(fd)

    @staticmethod
    def _verified(data: bytes, app: str, key: str, signing_key: bytes) -> memoryview:
        """The payload of entry *data*, once its header and tag check out."""
        if len(data) < HEADER_SIZE:
            raise _Corrupt(f"truncated: {len(data)} bytes, shorter than the header")
        magic, version, _, length = _PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise _Corrupt("not a checkpoint entry (bad magic)")
        if version == 1:
            raise _Corrupt("unsigned entry of an older daskflow (format version 1)")
        if version != VERSION:
            raise _Corrupt(f"unsupported format version {version}")
        if len(data) != HEADER_SIZE + length:
            raise _Corrupt(f"truncated or torn: {len(data) - HEADER_SIZE} payload bytes, "
                           f"expected {length}")
        payload = memoryview(data)[HEADER_SIZE:]
        if not signing.verify(signing_key, memoryview(data)[_PREFIX.size:HEADER_SIZE],
                              memoryview(data)[:_PREFIX.size], app.encode(), key.encode(),
                              payload):
            raise _Corrupt("its signature does not verify with your key: written with "
                           "another key (another user's), forged, moved from another "
                           "name, or damaged")
        return payload

    def _decode(self, data: bytes, app: str, key: str, signing_key: bytes | None = None) -> dict:
        record = cloudpickle.loads(self._verified(data, app, key, signing_key or self.key))
        if not isinstance(record, dict) or (record.get("app"), record.get("key")) != (app, key):
            raise _Corrupt("entry belongs to another app or key")
        return record

    def entries(self, app: str | None = None, older_than: float | None = None) -> list[Entry]:
        """List the entries (of one *app*, and/or older than *older_than* seconds).

        Only the headers are read. An entry whose header is unreadable is
        listed with ``created=0.0`` (so any age-based prune removes it).
        """
        if app is not None:
            _check(app)
        top = self.root if app is None else posixpath.join(self.root, app)
        try:
            found = self.fs.find(top, detail=True)
        except FileNotFoundError:
            found = {}
        rows = []
        for path, info in sorted(found.items()):
            rel = posixpath.relpath(path, self.root).split("/")
            if len(rel) != 3 or not rel[2].endswith(".ckpt"):
                continue
            a, shard, k = rel[0], rel[1], rel[2][:-5]
            if _APP.match(a) and _KEY.match(k) and shard == k[:2]:
                rows.append((path, a, k, int(info.get("size") or 0)))
        if not rows:
            return []
        heads = self.fs.cat_ranges([r[0] for r in rows], [0] * len(rows),
                                   [HEADER_SIZE] * len(rows), on_error="return")
        now, out = time.time(), []
        for (path, a, k, size), head in zip(rows, heads):
            if isinstance(head, FileNotFoundError):
                continue  # removed since it was found
            created = 0.0
            if isinstance(head, bytes) and len(head) == HEADER_SIZE and head[:8] == MAGIC:
                created = _PREFIX.unpack_from(head)[2]
            if older_than is None or now - created > older_than:
                out.append(Entry(a, k, size, created, self._url(path)))
        return out

    # -- writing ---------------------------------------------------------------

    def put(self, app: str, key: str, value: Any, meta: dict | None = None) -> int:
        """Store *value* for *app* and *key*, atomically replacing any earlier entry.

        Returns
        -------
        int
            The number of bytes written (header and payload).
        """
        self._writable()
        path = self._path(app, key)
        created = time.time()
        payload = cloudpickle.dumps({"value": value, "app": app, "key": key,
                                     "created": created, "meta": meta})
        prefix = _PREFIX.pack(MAGIC, VERSION, created, len(payload))
        tag = signing.sign(self.key, prefix, app.encode(), key.encode(), payload)
        parts = (prefix, tag, payload)
        if self._local:
            self._write_local(path, parts)
        else:
            self.fs.pipe_file(path, b"".join(parts))
        return HEADER_SIZE + len(payload)

    @staticmethod
    def _write_local(path: str, parts: Iterable[bytes]) -> None:
        folder, name = os.path.split(path)
        tmp = os.path.join(folder, f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        os.makedirs(folder, exist_ok=True)
        try:
            f = open(tmp, "xb")
        except FileNotFoundError:  # a concurrent clear() removed the empty folder
            os.makedirs(folder, exist_ok=True)
            f = open(tmp, "xb")
        try:
            with f:
                for part in parts:
                    f.write(part)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename durable too
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def remove(self, entries: Iterable[Entry]) -> int:
        """Remove the given entries (from :meth:`entries`); returns how many were removed."""
        self._writable()
        count = 0
        for e in entries:
            try:
                self.fs.rm_file(self._path(e.app, e.key))
                count += 1
            except FileNotFoundError:
                pass
        return count

    def prune(self, app: str | None = None, older_than: float | None = None) -> int:
        """Remove the entries of *app* (default all) older than *older_than* seconds.

        With neither argument every entry is removed. Local temporaries left
        by killed writers are removed once ``STALE_TEMP`` old.

        Returns
        -------
        int
            The number of entries removed.
        """
        self._writable()
        count = self.remove(self.entries(app, older_than))
        self.sweep_temporaries(app)
        return count

    def clear(self) -> int:
        """Remove every entry, stale temporaries and empty directories; returns the count."""
        self._writable()
        count = self.remove(self.entries())
        self.sweep_temporaries()
        if self._local and os.path.isdir(self.root):
            for folder, _, _ in sorted(os.walk(self.root), reverse=True):
                if folder != self.root:
                    with contextlib.suppress(OSError):
                        os.rmdir(folder)  # only succeeds when empty
        return count

    def sweep_temporaries(self, app: str | None = None, min_age: float = STALE_TEMP) -> int:
        """Remove local temporaries left by killed writers, older than *min_age* seconds."""
        self._writable()
        if not self._local:
            return 0  # only the local writer uses temporaries
        if app is not None:
            _check(app)
        now, count = time.time(), 0
        for folder, _, names in os.walk(self.root if app is None else os.path.join(self.root, app)):
            for name in filter(_TEMP.match, names):
                with contextlib.suppress(OSError):
                    if now - os.stat(os.path.join(folder, name)).st_mtime >= min_age:
                        os.unlink(os.path.join(folder, name))
                        count += 1
        return count
