"""The worker node's staging cache: an input fetched once per node is reused.

All worker processes of a node share one directory (node-local disk, not a
shared file system: the locks are ``flock``)::

    ROOT/objects/KK/KEY/FILENAME   a fetched copy, read-only; KEY = sha256(URL, fingerprint)
    ROOT/urls/UKEY.json            the URL's last known fingerprint and when it was checked
    ROOT/locks/NNN.lock            4096 lock stripes, by URL
    ROOT/tmp/                      downloads in progress (renamed into objects/ when complete)

The fingerprint is what the source says about the object (size, ETag,
mtime). A URL checked less than ``check_every`` seconds ago is not asked
again, so a million tasks reading one file cost one request per node and
interval, and one download per version. Once the cache holds more than
``max_bytes``, the least recently used entries are removed (the one just
fetched stays). Tasks get hard links to entries, so removing an entry never
pulls a file from under a running app.

The cache is private to its user (``private.py``): its root must be ours
and closed to other writers, its directories are 0700, records and copies
0600 (copies then 0400: read-only). A URL record keeps the URL with its
secrets redacted; the file names are digests of the full URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from typing import Callable

from ..redaction import redact_url
from . import private

STRIPES = 4096


def _sha(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class NodeCache:
    """One node's cache directory; safe for concurrent processes and threads."""

    def __init__(self, root: str, max_bytes: int, check_every: float = 0.0):
        self.root = root
        self.max_bytes = max_bytes
        self.check_every = check_every
        private.private_root(root)
        for sub in ("objects", "urls", "locks", "tmp"):
            private.makedirs(os.path.join(root, sub))

    @contextlib.contextmanager
    def _lock(self, name: str, blocking: bool = True):
        path = os.path.join(self.root, "locks", f"{name}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def _entry(self, key: str, filename: str) -> str:
        return os.path.join(self.root, "objects", key[:2], key, filename)

    def get(self, url: str, filename: str, fingerprint: Callable[[], tuple],
            fetch: Callable[[str], None]) -> tuple[str, bool]:
        """The path of a cached copy of ``url`` and whether it was already there.

        ``fingerprint()`` asks the source about the object; ``fetch(tmp)``
        downloads it to ``tmp``. Both run at most once per node at a time
        for a given URL; other callers wait and then find the entry.
        """
        ukey = _sha(url)
        with self._lock(str(int(ukey[:3], 16) % STRIPES)):
            record = _read_json(self._record(ukey))
            if record and time.time() - record.get("checked", 0) < self.check_every:
                fp, checked = record["fingerprint"], record["checked"]  # trusted for now
            else:
                fp, checked = list(map(_plain, fingerprint())), time.time()
            size = fp[0] if fp and isinstance(fp[0], int) else None
            path = self._entry(_sha(url, json.dumps(fp)), filename)
            hit = _complete(path, size)
            if not hit:
                self._download(path, size, fetch)
            _touch(path)
            self._write_record(ukey, url, fp, checked)
        if not hit:
            self.evict(keep=os.path.dirname(path))
        return path, hit

    def remember(self, url: str, fingerprint: tuple) -> None:
        """Note what the source just said about ``url`` (asked by someone else,
        e.g. a memo look-up), so the next ``get`` uses it."""
        ukey = _sha(url)
        with self._lock(str(int(ukey[:3], 16) % STRIPES)):
            self._write_record(ukey, url, list(map(_plain, fingerprint)), time.time())

    def _record(self, ukey: str) -> str:
        return os.path.join(self.root, "urls", f"{ukey}.json")

    def _write_record(self, ukey: str, url: str, fp: list, checked: float) -> None:
        _write_json(self._record(ukey), {"url": redact_url(url), "fingerprint": fp,
                                         "checked": checked})

    def _download(self, path: str, size: int | None, fetch: Callable[[str], None]) -> None:
        tmp = os.path.join(self.root, "tmp", f"{uuid.uuid4().hex}.part")
        try:
            private.touch_file(tmp)  # 0600 from the start: the download keeps the mode
            fetch(tmp)
            check_size(tmp, size)
            os.chmod(tmp, 0o400)  # entries are shared by the node's tasks: they must not change
            private.makedirs(os.path.dirname(path))
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def entries(self) -> list[tuple[float, int, str]]:
        """``(last use, bytes, entry directory)`` of every entry."""
        out = []
        objects = os.path.join(self.root, "objects")
        for shard in os.scandir(objects):
            if not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                try:
                    size = sum(f.stat().st_size for f in os.scandir(entry.path))
                    out.append((entry.stat().st_mtime, size, entry.path))
                except FileNotFoundError:  # removed meanwhile by another process
                    continue
        return out

    def evict(self, keep: str | None = None) -> int:
        """Remove least recently used entries above ``max_bytes``; returns how many.

        One process evicts at a time; others skip (the next fetch tries again).
        """
        with self._lock("evict", blocking=False) as mine:
            if not mine:
                return 0
            entries = sorted(self.entries())
            total = sum(e[1] for e in entries)
            removed = 0
            for _, size, path in entries:
                if total <= self.max_bytes:
                    break
                if path == keep:
                    continue
                shutil.rmtree(path, ignore_errors=True)
                total -= size
                removed += 1
            return removed


def check_size(path: str, size: int | None) -> None:
    """Refuse a download whose size differs from what the source announced."""
    if size is not None:
        got = os.path.getsize(path)
        if got != size:
            raise OSError(f"incomplete download: got {got} bytes, the source announced {size}")


def _complete(path: str, size: int | None) -> bool:
    try:
        got = os.path.getsize(path)
    except OSError:
        return False
    return size is None or got == size


def _touch(path: str) -> None:
    with contextlib.suppress(OSError):
        os.utime(os.path.dirname(path))  # the entry directory's mtime is its last use


def _plain(value):
    return value if isinstance(value, (int, str, type(None))) else str(value)


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with os.fdopen(private.create_file(tmp), "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
