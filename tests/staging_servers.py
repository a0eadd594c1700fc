"""The loopback file servers of the staging tests (started by ``scripts/test``
through ``scripts/start-fileservers.sh``): where they are, and fixtures that
skip, saying why, only when a server is not running."""

from __future__ import annotations

import os
import re
import socket
import uuid

import dask
import pytest

ROOT = os.environ.get("FS_ROOT", "/tmp/daskflow-fileservers")
HTTP_PORT = int(os.environ.get("HTTP_PORT", "18080"))
FTP_PORT = int(os.environ.get("FTP_PORT", "2121"))
S3_PORT = int(os.environ.get("S3_PORT", "5555"))
HTTP = f"http://127.0.0.1:{HTTP_PORT}"
FTP = f"ftp://127.0.0.1:{FTP_PORT}"
S3_OPTIONS = {"key": "testing", "secret": "testing",
              "endpoint_url": f"http://127.0.0.1:{S3_PORT}"}
FTP_OPTIONS = {"username": "ci", "password": "ci"}


def _up(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _need(name: str, port: int) -> None:
    if not _up(port):
        pytest.skip(f"the {name} test server is not running on 127.0.0.1:{port}; "
                    "scripts/test starts it (or run scripts/start-fileservers.sh .venv)")


@pytest.fixture
def staging_config(tmp_path):
    """Staging settings of one test: its own staging directory (so its own
    node cache) and the test servers' options, in the driver's dask config."""
    settings = {"daskflow.staging.dir": str(tmp_path / "staging"),
                "daskflow.staging.s3": S3_OPTIONS,
                "daskflow.staging.ftp": FTP_OPTIONS}
    with dask.config.set(settings):
        yield tmp_path / "staging"


def _served_dir(kind: str, port: int, base_url: str) -> tuple[str, str]:
    """A fresh directory under the ``kind`` server's root: (local dir, its URL)."""
    _need(kind.upper(), port)
    name = f"t-{uuid.uuid4().hex[:10]}"
    path = os.path.join(ROOT, kind, name)
    os.makedirs(path)
    return path, f"{base_url}/{name}"


@pytest.fixture
def http_files():
    """A fresh directory served over HTTP: (local dir, its URL)."""
    return _served_dir("http", HTTP_PORT, HTTP)


@pytest.fixture
def ftp_files():
    """A fresh directory served over FTP: (local dir, its URL)."""
    return _served_dir("ftp", FTP_PORT, FTP)


@pytest.fixture
def s3_bucket():
    """A fresh bucket on the S3 server: (s3fs filesystem, bucket name)."""
    _need("S3", S3_PORT)
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **S3_OPTIONS)
    bucket = f"t-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    return fs, bucket


@pytest.fixture
def http_requests():
    """``count(path)``: how many requests of each method the HTTP server logged for it."""
    return count_http_requests


def count_http_requests(path: str) -> dict[str, int]:
    """How many requests of each method the HTTP server logged for ``path``."""
    counts: dict[str, int] = {}
    pattern = re.compile(r'"(GET|HEAD|POST|PUT) (\S+) HTTP')
    with open(os.path.join(ROOT, "http.log")) as fh:
        for line in fh:
            m = pattern.search(line)
            if m and m.group(2) == path:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts
