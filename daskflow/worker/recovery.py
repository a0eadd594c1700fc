"""Results kept beside the run so that a finished call never runs twice.

Dask recomputes the result of a held future whose worker died, which would
run an app again (and repeat a bash app's side effects). The task body
therefore writes each small result (pickled size up to
``daskflow.recovery.max-bytes``) to the run's ``results/`` directory when
the call succeeds, and looks there before running: a recomputed task returns
the kept result instead. Larger results are recomputed as Dask would.

Private and signed. Results may hold anything the user computes, so the
directory is made 0700 and each entry 0600, whatever the umask. Unpickling
runs code, so an entry is only unpickled if it carries a valid HMAC-SHA256
tag made with the run's key (``RunSettings.results`` carries it, see
``signing.results_key``) over the call's ident and the pickle::

    magic    8 bytes   b"DFKEPT2\\n"
    tag      32 bytes  HMAC-SHA256(run key, ident, pickle)
    pickle   the result

An entry that is forged, from another run or another call (the ident is
signed: an entry cannot be renamed to another call's name), damaged, or of
the unsigned format of earlier versions is ignored with a warning, and the
call runs again (and overwrites it).

Entries are written to a temporary name and renamed (a reader never sees a
partial one) without fsync: they guard against lost workers, not against a
lost machine, which the checkpoint store is for. The task body pickles the
result at once but leaves the write to a thread of the worker process
(``remember_soon``): a chain of calls would otherwise wait for the file
system at every hop. A chunk of calls writes its one entry itself
(``remember``, about 50 µs, under half a microsecond per call): in the
thread, each of the write's system calls had to win the interpreter lock
back from the calls of the next chunk. An entry is written within moments of its call's end
(and at the process's exit); a worker killed in that moment loses it, and
the call runs again, as it would had the worker died during the call. The directory must be
reachable by the workers, like the run's provenance; if it is not, the
worker stops trying and logs it once.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import pickle
import secrets
import stat
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from .. import signing
from ..private import DIR_MODE, create_file, make_dir
from ..shipped import reduce_to_fields

logger = logging.getLogger("daskflow")

MAGIC = b"DFKEPT2\n"
_HEAD = len(MAGIC) + signing.TAG_BYTES

_unreachable: set[str] = set()


@dataclass(slots=True, frozen=True)
class KeptResults:
    """Where a run keeps its small results, and the run's key that signs
    them: what ``RunSettings.results`` holds. Its repr never shows the key."""

    directory: str
    key: bytes = field(repr=False)

    __reduce__ = reduce_to_fields


def keep_in(directory: str, key: bytes) -> KeptResults:
    """Make the run's results *directory*, private (0700 whatever the umask)."""
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    if not make_dir(directory):
        os.chmod(directory, DIR_MODE)
    return KeptResults(directory, key)


def _path(directory: str, ident: str) -> str:
    return os.path.join(directory, hashlib.sha1(ident.encode()).hexdigest())


def recall(kept: KeptResults, ident: str) -> tuple[bool, Any]:
    """``(True, value)`` if call ``ident`` of this run already succeeded.

    The entry is unpickled only once its tag verifies; any other entry is
    logged (WARNING) and counts as a miss.
    """
    path = _path(kept.directory, ident)
    try:
        # not through a symlink, and without blocking on a FIFO someone put there
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return False, None
    except OSError as exc:
        return _ignore(path, ident, f"unreadable ({exc})")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return _ignore(path, ident, "not a regular file")
        with open(fd, "rb", closefd=False) as f:
            data = f.read()
    except OSError as exc:
        return _ignore(path, ident, f"unreadable ({exc})")
    finally:
        os.close(fd)
    if len(data) < _HEAD or not data.startswith(MAGIC):
        return _ignore(path, ident, "not a signed kept result (an older daskflow's format, "
                       "or written by something else)")
    payload = memoryview(data)[_HEAD:]
    if not signing.verify(kept.key, data[len(MAGIC):_HEAD], ident.encode(), payload):
        return _ignore(path, ident, "its signature does not verify (written by someone "
                       "else or for another run, forged, or damaged)")
    try:
        return True, pickle.loads(payload)
    except Exception as exc:  # signed by us, but e.g. a class that no longer imports
        return _ignore(path, ident, f"cannot be unpickled ({type(exc).__name__}: {exc})")


def _ignore(path: str, ident: str, why: str) -> tuple[bool, None]:
    logger.warning("daskflow: ignoring kept result %s of call %s: %s; running the call again",
                   path, ident, why)
    return False, None


class _TooBig(Exception):
    pass


class _Bounded:
    """A pickler's file that holds at most *limit* bytes and raises beyond."""

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        self.size += n
        if self.size > self.limit:
            raise _TooBig
        self.parts.append(bytes(data))
        return n

    def buffer(self, buf: pickle.PickleBuffer) -> bool:
        if self.size + buf.raw().nbytes > self.limit:
            raise _TooBig  # a large array: given up without copying it
        return True  # small enough: pickled in-band (a true answer), counted as written


_SMALL = frozenset((int, float, bool, complex, type(None)))
_SIZED = frozenset((str, bytes))  # at most 4 pickle bytes per item


def pickled_within(value: Any, max_bytes: int) -> bytes | None:
    """The pickle of *value* if it is at most *max_bytes* long, else None.

    Pickling a large value fully only to find it too large would copy it on
    every call (100 MB for a 100 MB array). So the pickle (protocol 5) goes
    to a bounded file: a buffer a value hands out of band (numpy arrays,
    bytes-like objects) larger than what is left is refused before it is
    copied, and other pickling stops at the first frame (64 KiB) past the
    limit.
    """
    kind = type(value)
    if kind in _SMALL or (kind in _SIZED and len(value) <= max_bytes // 4):
        data = pickle.dumps(value, protocol=5)  # no pickler to build: most results
        return data if len(data) <= max_bytes else None
    out = _Bounded(max_bytes)
    try:
        cloudpickle.CloudPickler(out, protocol=5, buffer_callback=out.buffer).dump(value)
    except _TooBig:
        return None
    except Exception:
        return None  # Dask will fail on it too, and say why
    return b"".join(out.parts)


def remember(kept: KeptResults, ident: str, value: Any, max_bytes: int) -> None:
    """Keep *value*, the result of call *ident*, if its pickle fits *max_bytes*."""
    if kept.directory in _unreachable:
        return
    data = pickled_within(value, max_bytes)
    if data is not None:
        _write(kept, ident, data)


def remember_soon(kept: KeptResults, ident: str, value: Any, max_bytes: int) -> None:
    """``remember``, the write left to this process's writer thread (the
    value is pickled now: a later call may change it in place)."""
    if kept.directory in _unreachable:
        return
    data = pickled_within(value, max_bytes)
    if data is None:
        return
    with _lock:
        _due.append((kept, ident, data))
    _writer().set()


_lock = threading.Lock()
_due: deque = deque()  # (kept, ident, pickle) waiting for the writer thread
_wake: threading.Event | None = None


def _writer() -> threading.Event:
    """The event that wakes this process's writer thread (started on first use)."""
    global _wake
    if _wake is None:
        with _lock:
            if _wake is None:
                wake = threading.Event()
                threading.Thread(target=_write_loop, args=(wake,), daemon=True,
                                 name="daskflow-kept-results").start()
                atexit.register(flush)
                _wake = wake
    return _wake


def _write_loop(wake: threading.Event) -> None:
    while True:
        wake.wait()
        wake.clear()
        flush()


def flush() -> None:
    """Write every entry ``remember_soon`` left (the writer thread, and exit)."""
    while True:
        with _lock:
            if not _due:
                return
            kept, ident, data = _due.popleft()
        if kept.directory not in _unreachable:
            _write(kept, ident, data)


def _write(kept: KeptResults, ident: str, data: bytes) -> None:
    """Write one signed entry: one write to a new private file, then a rename."""
    tag = signing.sign(kept.key, ident.encode(), data)
    path = _path(kept.directory, ident)
    tmp = f"{path}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        fd = create_file(tmp)
        try:
            entry = memoryview(MAGIC + tag + data)
            while entry:
                entry = entry[os.write(fd, entry):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        _unreachable.add(kept.directory)
        logger.warning("daskflow: cannot keep results in %s (%s); results lost with a "
                       "worker will be computed again", kept.directory, exc)
