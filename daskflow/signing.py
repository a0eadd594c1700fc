"""The user's signing key: daskflow unpickles only what this user wrote.

Kept results (``recovery``) and checkpoint entries (``checkpoint_store``) are
pickles, and unpickling runs whatever code the pickle names. They live in
places others may be able to write (a shared scratch directory, a bucket),
so each carries an HMAC-SHA256 tag made with a key only this user holds, and
an entry whose tag does not verify is ignored, never unpickled. An unkeyed
digest would not do: anyone can compute one for a payload of their own.

The key is 32 random bytes in ``$XDG_CONFIG_HOME/daskflow/signing.key``
(else ``~/.config/daskflow/signing.key``; ``daskflow.signing.key-file``
overrides the path). It is made on first use: written under a temporary name
opened with ``O_EXCL`` and mode 0600, then hard-linked to its name, so a
reader never sees half a key and two processes making it at once agree on
the one linked first. A key file not owned by the user, or open to group or
others, is refused: someone else may know (or have chosen) that key.

Workers never read the key file: they may run where it is not (pods, hosts
without the user's home). The driver derives the keys a run needs with
:func:`derived_key` and ships them in the run's settings. A derived key is
``HMAC(user key, purpose)``: knowing one (a worker's memory, say) tells
nothing of the user key or of keys for other purposes. Kept results use a
key per run (``kept-results:TOKEN``); checkpoint entries one stable key
(``checkpoint``), as they must verify in later runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
import struct
import threading

import dask

from .errors import UnsafeKeyFile
from .private import create_file

logger = logging.getLogger("daskflow")

KEY_BYTES = 32
TAG_BYTES = 32  # HMAC-SHA256
CHECKPOINT = "checkpoint"  # purpose of the checkpoint entries' key (stable across runs)
_LENGTH = struct.Struct(">Q")


def key_file() -> str:
    """Where the user's key lives: ``daskflow.signing.key-file``, else the
    user's config directory (``$XDG_CONFIG_HOME/daskflow``, else
    ``~/.config/daskflow``, where daskflow keeps its other secrets)."""
    configured = dask.config.get("daskflow.signing.key-file", None)
    if configured:
        return os.path.abspath(os.path.expanduser(str(configured)))
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "daskflow", "signing.key")


def user_key(path: str | None = None) -> bytes:
    """The user's 32-byte key, read from :func:`key_file` (made there if absent).

    Raises
    ------
    UnsafeKeyFile
        If the file is not a regular file owned by this user with no
        permission for group or others, or does not hold 32 bytes.
    """
    path = path or key_file()
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        _create(path)
        fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)  # of the file opened, not of whatever the name points to later
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeKeyFile(path, "not a regular file", "remove it (daskflow makes a new "
                                "key) or set daskflow.signing.key-file")
        if st.st_uid != os.geteuid():
            raise UnsafeKeyFile(path, f"owned by uid {st.st_uid}, not by you (uid "
                                f"{os.geteuid()}), so someone else may know the key",
                                "remove it (daskflow makes a new key), or copy a key you "
                                "mean to share into a file of your own with: install -m 600 "
                                f"SHARED-KEY {path}")
        if st.st_mode & 0o077:
            raise UnsafeKeyFile(path, f"mode {stat.S_IMODE(st.st_mode):04o} lets group or "
                                "others use it, so someone else may know the key",
                                f"run: chmod 600 {path} (or remove it if others may have "
                                "read it: daskflow makes a new key)")
        data = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_BYTES:
        raise UnsafeKeyFile(path, f"holds {len(data)}{'+' if len(data) > KEY_BYTES else ''} "
                            f"bytes, not a {KEY_BYTES}-byte key",
                            "remove it (daskflow makes a new key)")
    return data


def _create(path: str) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    tmp = os.path.join(folder, f".signing-key.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = create_file(tmp)
    try:
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic, and fails if another process made it first
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: O_EXCL on the name itself
            with contextlib.suppress(FileExistsError):
                fd = create_file(path)
                try:
                    with open(tmp, "rb") as f:
                        os.write(fd, f.read())
                finally:
                    os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def derived_key(purpose: str, key: bytes | None = None) -> bytes:
    """``HMAC-SHA256(user key, purpose)``: a key for one purpose, the same
    every time for the same user key and purpose."""
    return hmac.new(key if key is not None else user_key(), purpose.encode(),
                    hashlib.sha256).digest()


def checkpoint_key() -> bytes:
    """The key of checkpoint entries (stable across runs)."""
    return derived_key(CHECKPOINT)


def results_key(token: str) -> bytes:
    """The key of a run's kept results (one per run, by the run's token)."""
    return derived_key(f"kept-results:{token}")


def sign(key: bytes, *parts: bytes | memoryview) -> bytes:
    """The 32-byte HMAC-SHA256 tag of *parts*, each length-prefixed so that
    moving bytes from one part to the next changes the tag."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(_LENGTH.pack(len(part) if isinstance(part, bytes) else part.nbytes))
        mac.update(part)
    return mac.digest()


def verify(key: bytes, tag: bytes | memoryview, *parts: bytes | memoryview) -> bool:
    """Whether *tag* is :func:`sign` of *parts* with *key* (in constant time)."""
    return hmac.compare_digest(sign(key, *parts), bytes(tag))


# ------------------------------------------------------------------ digests
_key_lock = threading.Lock()
_process_key: bytes | None = None
ARGUMENTS = "provenance-arguments"  # purpose of the digests' key 


def digest_key() -> bytes:
    """The key of argument digests: derived from the user's key
    (``derived_key``), so digests compare across runs; a random key of
    this process when the user's key cannot be used (the digests then compare
    within one run only; the reason is logged once)."""
    global _process_key
    with _key_lock:
        if _process_key is None:
            try:
                _process_key = derived_key(ARGUMENTS)
            except Exception as exc:  # provenance must not stop the run
                logger.warning("daskflow: argument digests use a key of this run only: %s", exc)
                _process_key = os.urandom(32)
        return _process_key


def arguments_digest(text: str) -> str:
    """``"hmac-sha256:<16 hex digits>"`` of ``text`` (a call's arguments, as text).

    Keyed, so that someone who reads the provenance database cannot test
    guesses of a password against it; equal arguments still give equal
    digests, so calls with the same arguments can be told apart from others.
    """
    mac = _digest_start().copy()  # the key's padding hashed once: a third of the cost
    mac.update(text.encode("utf-8", "surrogatepass"))
    return "hmac-sha256:" + mac.hexdigest()[:16]


_started = threading.local()


def _digest_start():
    """An HMAC of the digest key over no data yet, one per thread."""
    mac = getattr(_started, "mac", None)
    if mac is None:
        mac = _started.mac = hmac.new(digest_key(), digestmod=hashlib.sha256)
    return mac
