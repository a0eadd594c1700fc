"""What the task body tells the provenance plugin about each call.

Most of a task's story reaches the scheduler anyway (its transitions, worker,
times, exception). The body adds what only it knows: every failed try, memo
hits, the files it read and wrote, and the calls inside a chunk. It sends
them as one Dask event (``Worker.log_event``, topic ``"daskflow"``) per task,
and not at all for a plain call that succeeded at the first try.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
import hashlib
import os
import threading
from typing import Any, Iterable

from ..dask_internals import tell_when_finished

TOPIC = "daskflow"
USAGE = "daskflow-usage"  # a plain call's usage, with its task's finished message
#: what a call used (``worker.usage``): seconds, seconds, bytes, bytes, bytes
USAGE_FIELDS = ("cpu_user", "cpu_system", "peak_memory", "read_bytes", "write_bytes")
NO_USAGE = (-1.0, 0.0, 0.0, 0.0, 0.0)  # a call not measured, in a chunk's usage array


class CallRecord:
    """One call's facts, gathered while the task body runs it."""

    __slots__ = ("tid", "ident", "start", "end", "tries", "memo", "error", "files", "skipped",
                 "exit_code", "usage")

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
        self.usage: tuple | None = None  # (cpu_user, cpu_system, peak_memory, read, written)

    def notable(self) -> bool:
        return bool(self.tries or self.memo or self.files or self.exit_code)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def send(run, records: list[CallRecord]) -> None:
    """Send the records to the scheduler as an event (no-op without
    provenance or a worker)."""
    if not run.report:
        return
    worker = _worker()
    if worker is not None:
        worker.log_event(TOPIC, {"token": run.token, "worker": worker.address,
                                 "calls": [r.as_dict() for r in records]})


def send_finished(run, record: CallRecord) -> None:
    """Send a plain call's record as it succeeds: its usage alone with the
    task's finished message (``tell_when_finished``, no message of its
    own), unless it has more to tell (``send``)."""
    if not run.report:
        return
    if record.notable():
        send(run, [record])
    elif record.usage is not None:
        tell_when_finished(USAGE, record.usage)


def send_chunk(run, chunk: str, records: list[CallRecord], exit_code: int | None) -> None:
    """Send the records of a chunk's calls (``chunk[i]``: ``records[i]``)
    with the chunk task's finished message (``tell_when_finished``): no
    message of its own. Call it from the chunk's task, which must then
    return (a task that raises sends no metadata).

    The calls that succeeded at the first try with nothing else to tell
    (all of them, most often) go as their start and end times only, packed
    in one ``bytes`` (``times``, with ``index`` when not every call is
    one), each ended with ``exit_code``; the others as ``calls``. A chunk of
    128 records as dicts cost the worker about 30 µs per call to check and
    send, and the scheduler as much to read.
    """
    if not run.report:
        return
    worker = _worker()
    if worker is None:
        return
    times = array("d")
    usage = []
    index = array("I")
    calls = []
    for i, record in enumerate(records):
        if record.notable() or record.error or record.skipped or record.start is None \
                or record.exit_code not in (None, exit_code):
            calls.append(record.as_dict())
        else:
            times.append(record.start)
            times.append(record.end)
            usage.append(record.usage)
            index.append(i)
    msg = {"token": run.token, "worker": worker.address, "calls": calls, "chunk": chunk,
           "times": times.tobytes(), "exit_code": exit_code}
    if any(usage):  # calls too short to be measured have none (``worker.usage``)
        msg["usage"] = array("d", [x for u in usage for x in (u or NO_USAGE)]).tobytes()
    if len(index) != len(records):
        msg["index"] = index.tobytes()
    if not tell_when_finished(TOPIC, msg):  # not the task's own thread: as an event
        worker.log_event(TOPIC, msg)


def chunk_spans(msg: dict) -> tuple:
    """``(index, times)`` of a ``send_chunk`` message: its plain calls'
    indexes in the chunk, and their start and end times, two per call."""
    times = array("d")
    times.frombytes(msg["times"])
    if "index" in msg:
        index = array("I")
        index.frombytes(msg["index"])
    else:
        index = range(len(times) // 2)
    return index, times


def chunk_usage(msg: dict) -> list[tuple | None]:
    """The usage of the plain calls of a ``send_chunk`` message, one per
    call as ``chunk_spans`` lists them (None: not measured)."""
    usage = array("d")
    usage.frombytes(msg.get("usage") or b"")
    n = len(USAGE_FIELDS)
    found = [tuple(usage[k:k + n]) for k in range(0, len(usage), n)]
    return [None if u[0] < 0 else (u[0], u[1], int(u[2]), int(u[3]), int(u[4])) for u in found]


def chunk_times(msg: dict) -> list[tuple[str, float, float, tuple | None]]:
    """``(ident, start, end, usage)`` of the plain calls of a ``send_chunk`` message."""
    index, times = chunk_spans(msg)
    usage = chunk_usage(msg)
    usage += [None] * (len(index) - len(usage))
    chunk = msg["chunk"]
    return [(f"{chunk}[{i}]", times[2 * n], times[2 * n + 1], usage[n])
            for n, i in enumerate(index)]


def _worker():
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


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
