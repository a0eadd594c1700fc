"""Files inside a zip archive: ``zip:/data/run.zip/inside/a.txt``.

The URL (Parsl's ``zip:`` scheme) names an archive on a file system the
workers see (up to the first ``.zip/``) and a member inside it (the rest).
An input member is extracted to the task's staging directory; an output is
written there by the app and added to the archive after it succeeded, so
many tasks can gather their results in one archive.

The archive is locked while read or written (``fcntl.flock`` on
``<archive>.lock``, the lock file Parsl's ``ZipFileStaging`` uses, so both
can share an archive), and an upload writes a new archive beside the old
one and renames it over it: a reader sees the archive before or after a
member was added, never half of it. That costs a copy of the archive per
upload; a member written again replaces the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
import zipfile
from urllib.parse import urlsplit

from ..errors import UnstageableFile
from ..files import File
from ..redaction import redact_url

__all__ = ["ZipAuthorityError", "ZipMover", "split"]

SUFFIX = ".zip/"


class ZipAuthorityError(UnstageableFile):
    """A ``zip:`` URL with a host part (``zip://host/...``): the archive is a
    path on the worker's file system, so a host would be silently ignored."""


def split(path: str) -> tuple[str, str]:
    """A ``zip:`` URL's path as (archive path, member name), at the first
    ``.zip/``; the member is ``""`` when the path names no member."""
    index = path.find(SUFFIX)
    if index < 0:
        return path, ""
    return path[:index + len(SUFFIX) - 1], path[index + len(SUFFIX):]


@contextlib.contextmanager
def _locked(archive: str, exclusive: bool):
    fd = os.open(archive + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _member(archive: str, member: str) -> zipfile.ZipInfo:
    with zipfile.ZipFile(archive) as z:
        try:
            return z.getinfo(member)
        except KeyError:
            raise FileNotFoundError(f"{archive} has no member {member!r}") from None


class ZipMover:
    """The mover of ``zip:`` URLs (see ``registry`` for the contract)."""

    cacheable = False  # the archive is on a file system the node reads already

    def __init__(self, scheme: str, options: dict):
        self.scheme, self.options = scheme, options

    @staticmethod
    def check(app_name: str, f: File) -> None:
        """Refuse, at call time, a URL that names no member or has a host part."""
        if f.netloc:
            raise ZipAuthorityError(
                app_name, redact_url(f.url),
                f"a zip: URL has no host part, got {redact_url('x://' + f.netloc)[4:]!r}; "
                "write zip:/path/to/archive.zip/member (one slash after 'zip:')")
        if not split(f.path)[1]:
            raise UnstageableFile(app_name, redact_url(f.url),
                                  "it names no member of an archive; write "
                                  "zip:/path/to/archive.zip/member")

    @staticmethod
    def _parts(url: str) -> tuple[str, str]:
        return split(urlsplit(url).path)

    def fingerprint(self, url: str) -> tuple:
        archive, member = self._parts(url)
        if not os.path.exists(archive):
            raise FileNotFoundError(f"no archive {archive}")
        with _locked(archive, exclusive=False):
            info = _member(archive, member)
        return (info.file_size, info.CRC, info.date_time)

    def fetch(self, url: str, dest: str) -> None:
        archive, member = self._parts(url)
        if not os.path.exists(archive):
            raise FileNotFoundError(f"no archive {archive}")
        with _locked(archive, exclusive=False), zipfile.ZipFile(archive) as z:
            try:
                source = z.open(member)
            except KeyError:
                raise FileNotFoundError(f"{archive} has no member {member!r}") from None
            with source, open(dest, "wb") as out:
                shutil.copyfileobj(source, out)

    def push(self, src: str, url: str) -> None:
        archive, member = self._parts(url)
        os.makedirs(os.path.dirname(archive) or ".", exist_ok=True)
        part = f"{archive}.part-{uuid.uuid4().hex[:8]}"
        with _locked(archive, exclusive=True):
            try:
                _copy_without(archive, part, member)
                with zipfile.ZipFile(part, "a", compression=zipfile.ZIP_DEFLATED) as z:
                    z.write(src, arcname=member)
                os.replace(part, archive)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(part)


def _copy_without(archive: str, dest: str, member: str) -> None:
    """``archive`` copied to ``dest`` without ``member`` (an empty archive
    if there is none yet)."""
    if not os.path.exists(archive):
        zipfile.ZipFile(dest, "w").close()
        return
    with zipfile.ZipFile(archive) as old:
        if member not in old.namelist():
            shutil.copy(archive, dest)  # with its mode
            return
        with zipfile.ZipFile(dest, "w") as new:
            for info in old.infolist():
                if info.filename != member:
                    new.writestr(info, old.read(info), compress_type=info.compress_type)
    shutil.copymode(archive, dest)
