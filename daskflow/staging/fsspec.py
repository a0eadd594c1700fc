"""The mover for every scheme fsspec knows (http(s), ftp, s3, gs, az, sftp…).

A thin layer over ``fsspec.core.url_to_fs``: the URL gives host, port or
bucket, the staging options (``daskflow.staging.<scheme>``) give the rest.

Backend failures become built-ins whose messages carry no secrets: a server
that cannot be reached (refused, unknown host, timeout, HTTP 5xx/429) is a
``ConnectionError`` (fsspec's HTTP file system reports it as a missing file),
HTTP 404/410 a ``FileNotFoundError``, 401/403 a ``PermissionError``.

Credentials: an HTTP URL's own ``user:password@`` wins over an
``Authorization`` header (or ``client_kwargs.auth``) of the http settings,
which then is not sent to that URL: the URL's credentials are specific to
it, the settings' are general.
"""

from __future__ import annotations

import contextlib
import posixpath
import socket
import uuid
from urllib.parse import urlsplit

from fsspec.core import url_to_fs

from ..redaction import redact_text, redact_url

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
        options = self.options
        if self.scheme in ("http", "https") and "@" in urlsplit(url).netloc:
            options = url_credentials_win(options)
        return url_to_fs(url, **options)

    def fingerprint(self, url: str) -> tuple:
        with plain_errors(url):
            fs, path = self._fs(url)
            info = fs.info(path)
        if info.get("type") == "directory":
            raise IsADirectoryError(f"{redact_url(url)} is a directory; stage files one by one")
        return fingerprint_of(info)

    def fetch(self, url: str, dest: str) -> None:
        with plain_errors(url):
            fs, path = self._fs(url)
            fs.get_file(path, dest)

    def push(self, src: str, url: str) -> None:
        with plain_errors(url):
            self._push(src, url)

    def _push(self, src: str, url: str) -> None:
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


def url_credentials_win(options: dict) -> dict:
    """The http options for a URL with its own credentials: without an
    ``Authorization`` header or an ``auth`` client argument (aiohttp refuses
    to combine them with credentials in the URL)."""
    headers = options.get("headers") or {}
    client = options.get("client_kwargs") or {}
    if not any(k.lower() == "authorization" for k in headers) and "auth" not in client:
        return options
    options = dict(options)
    if headers:
        options["headers"] = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    if "auth" in client:
        options["client_kwargs"] = {k: v for k, v in client.items() if k != "auth"}
    return options


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


UNREACHABLE_NAMES = frozenset(("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                               "ConnectionClosedError", "ProxyConnectionError"))


def plain_error(url: str, exc: BaseException) -> BaseException | None:
    """The built-in error that says what went wrong with ``url``, if the
    chain of ``exc`` tells (None: keep ``exc``)."""
    for e in _chain(exc):
        status = getattr(e, "status", None)
        if isinstance(status, int) and type(e).__module__.startswith("aiohttp"):
            reason = f"HTTP {status}" + (f" ({e.message})" if getattr(e, "message", "") else "")
            if status in (404, 410):
                return FileNotFoundError(f"{redact_url(url)}: {reason}")
            if status in (401, 403):
                return PermissionError(f"{redact_url(url)}: the server refused access: {reason}")
            if status in (408, 429) or status >= 500:
                return ConnectionError(f"the server answered {reason}")
            return None
        if isinstance(e, (ConnectionError, TimeoutError, socket.gaierror, socket.herror)) \
                or type(e).__name__ in UNREACHABLE_NAMES or _aiohttp_connection(e):
            detail = redact_text(f"{type(e).__name__}: {e}")
            return ConnectionError(f"the server cannot be reached: {detail}")
    return None


def _aiohttp_connection(e: BaseException) -> bool:
    if not type(e).__module__.startswith("aiohttp"):
        return False
    import aiohttp

    return isinstance(e, (aiohttp.ClientConnectionError, aiohttp.ServerTimeoutError))


@contextlib.contextmanager
def plain_errors(url: str):
    """Turn a backend's failure for ``url`` into a built-in (see :func:`plain_error`)."""
    try:
        yield
    except Exception as exc:
        plain = plain_error(url, exc)
        if plain is None and isinstance(exc, OSError) and len(exc.args) == 1:
            text = redact_text(str(exc))  # e.g. FileNotFoundError(url) of a backend
            if text != str(exc):
                plain = type(exc)(text)
        if plain is None:
            raise
        raise plain from None
