"""What the task body tells the provenance plugin about each call.

Most of a task's story reaches the scheduler anyway (its transitions, worker,
times, exception). The body adds what only it knows: every failed try, memo
hits, the files it read and wrote, and the calls inside a chunk. It sends
them as one Dask event (``Worker.log_event``, topic ``"daskflow"``) per task,
and not at all for a plain call that succeeded at the first try.
"""

from __future__ import annotations

from collections import OrderedDict
import hashlib
import os
import threading
from typing import Any, Iterable

TOPIC = "daskflow"


class CallRecord:
    """One call's facts, gathered while the task body runs it."""

    __slots__ = ("tid", "ident", "start", "end", "tries", "memo", "error", "files", "skipped",
                 "exit_code")

    def __init__(self, tid, ident: str):
        self.tid = tid
        self.ident = ident
        self.start = self.end = None
        self.tries: list[tuple] = []  # (try number, start, end, error) of failed tries
        self.memo: str | None = None  # "hit" | "miss" | None (not cached)
        self.error: str | None = None
        self.files: list[tuple] = []  # (direction, url, size, sha256 or None)
        self.skipped = False  # a chunked call whose upstream call failed
        self.exit_code: int | None = None  # bash apps

    def notable(self) -> bool:
        return bool(self.tries or self.memo or self.files or self.exit_code)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def send(run, records: list[CallRecord], only_if_notable: bool = False) -> None:
    """Send the records to the scheduler (no-op without provenance or a worker)."""
    if not run.report or (only_if_notable and not any(r.notable() for r in records)):
        return
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return
    worker.log_event(TOPIC, {"token": run.token, "worker": worker.address,
                             "calls": [r.as_dict() for r in records]})


def note_shared(client, token: str, app, tid, key: str) -> None:
    """Tell the plugin that call ``tid`` is answered by the identical call
    ``key`` of this session (so that every call has its provenance row)."""
    client.log_event(TOPIC, {"token": token, "shared": [
        {"key": f"{key}#{tid}", "tid": str(tid), "app": app.name, "app_hash": app.identity,
         "shares": key}]})


def file_facts(inputs: Iterable, outputs: Iterable, checksum_limit: int) -> list[tuple]:
    """``(direction, url, size, sha256)`` of local Files read and written
    (staged Files count by URL, measured on their local copy)."""
    from ..files import File

    facts = []
    for direction, files in (("in", inputs), ("out", outputs)):
        for f in files:
            if not isinstance(f, File) or not (f.is_local or f.local_path is not None):
                continue
            try:
                size = os.path.getsize(f.filepath)
            except OSError:
                continue
            digest = sha256_file(f.filepath) if size <= checksum_limit else None
            facts.append((direction, f.url, size, digest))
    return facts


_DIGESTS: OrderedDict[tuple, str] = OrderedDict()  # (dev, inode, size, mtime) -> sha256
_DIGESTS_KEPT = 4096
_digests_lock = threading.Lock()


def sha256_file(path: str) -> str | None:
    """The file's sha256; remembered per process by inode, size and mtime, so
    that many tasks reading one file (or links to one cached copy) hash it once."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _digests_lock:
        known = _DIGESTS.get(key)
        if known is not None:
            _DIGESTS.move_to_end(key)
            return known
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    hexdigest = digest.hexdigest()
    with _digests_lock:
        _DIGESTS[key] = hexdigest
        while len(_DIGESTS) > _DIGESTS_KEPT:
            _DIGESTS.popitem(last=False)
    return hexdigest
