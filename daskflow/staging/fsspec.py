"""The mover for every scheme fsspec knows (http(s), ftp, s3, gs, az, sftp…).

A thin layer over ``fsspec.core.url_to_fs``: the URL gives host, port or
bucket, the staging options (``daskflow.staging.<scheme>``) give the rest.
"""

from __future__ import annotations

import posixpath
import uuid

from fsspec.core import url_to_fs

# Backends whose upload replaces the object in one request: no temporary name.
ATOMIC_PUT = frozenset(("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "memory",
                        "http", "https"))
# Fields of fs.info() that change when the object does (besides its size).
VERSION_FIELDS = ("ETag", "etag", "VersionId", "md5Hash", "Content-MD5", "crc32c", "generation",
                  "Digest", "checksum", "LastModified", "Last-Modified", "last_modified",
                  "mtime", "modify", "updated", "modified")


def fingerprint_of(info: dict) -> tuple:
    """``(size, (field, value)…)`` from an ``fs.info`` result."""
    fields = tuple((k, str(info[k])) for k in VERSION_FIELDS if info.get(k) is not None)
    return (info.get("size"), *fields)


class FsspecMover:
    """Fetch and push through the fsspec filesystem of the URL's scheme."""

    cacheable = True

    def __init__(self, scheme: str, options: dict):
        self.scheme = scheme
        self.options = options

    def _fs(self, url: str):
        return url_to_fs(url, **self.options)

    def fingerprint(self, url: str) -> tuple:
        fs, path = self._fs(url)
        info = fs.info(path)
        if info.get("type") == "directory":
            raise IsADirectoryError(f"{url} is a directory; stage files one by one")
        return fingerprint_of(info)

    def fetch(self, url: str, dest: str) -> None:
        fs, path = self._fs(url)
        fs.get_file(path, dest)

    def push(self, src: str, url: str) -> None:
        fs, path = self._fs(url)
        if self.scheme in ATOMIC_PUT:
            fs.put_file(src, path)
            return
        # elsewhere (ftp, sftp, smb…): upload beside the target, then rename,
        # so a reader never sees a half-written object under its name
        parent, name = posixpath.split(path)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        part = posixpath.join(parent, f".{name}.part-{uuid.uuid4().hex[:8]}")
        try:
            fs.put_file(src, part)
            fs.mv(part, path)
        except BaseException:
            try:
                fs.rm_file(part)
            except Exception:
                pass
            raise
