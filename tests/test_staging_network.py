"""Staging against servers that are down, unknown, failing or asking for
credentials: clear errors, spaced tries, the URL's credentials winning."""

from __future__ import annotations

import base64
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from daskflow import File
from daskflow.errors import StagingError
from daskflow.staging import stage_in
from daskflow.staging.options import Settings

pytest_plugins = ("staging_servers",)  # http_files, http_requests

PW = "hunter2-pw"


class Recording(ThreadingHTTPServer):
    """A loopback HTTP server of the test: answers ``status`` (or checks
    credentials) and records each request's (time, method, path, Authorization)."""

    daemon_threads = True

    def __init__(self, status: int = 503, body: bytes = b"hello"):
        self.status, self.body, self.requests = status, body, []
        self.accept: set[str] = set()  # Authorization values let through (status otherwise)
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    def _answer(self, send_body: bool) -> None:
        auth = self.headers.get("Authorization")
        self.server.requests.append((time.monotonic(), self.command, self.path, auth))
        ok = auth in self.server.accept
        self.send_response(200 if ok else self.server.status)
        self.send_header("Content-Length", str(len(self.server.body) if ok else 0))
        self.end_headers()
        if ok and send_body:
            self.wfile.write(self.server.body)

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    s = Recording()
    yield s
    s.close()


def _settings(tmp_path, attempts=1, backoff=0.0, max_backoff=1.0, http=None) -> Settings:
    return Settings(schemes={"http": http or {}}, dir=str(tmp_path / "staging"),
                    cache_enabled=False, secede=False, retry_attempts=attempts,
                    retry_backoff=backoff, retry_max_backoff=max_backoff)


def _stage(tmp_path, url, **kw):
    staged = stage_in("fetch", 7, (File(url),), {}, (), _settings(tmp_path, **kw))
    try:
        with open(staged.args[0].filepath, "rb") as fh:
            return fh.read()
    finally:
        staged.close()


def test_an_unknown_host_is_a_connection_error(tmp_path):
    with pytest.raises(StagingError) as info:
        _stage(tmp_path, "http://nonexistent.invalid/x.csv")
    cause = info.value.cause
    assert cause.startswith("ConnectionError: the server cannot be reached"), cause
    assert "nonexistent.invalid" in cause and "FileNotFoundError" not in cause


def test_a_failing_server_is_tried_again_later_each_time(tmp_path, server):
    with pytest.raises(StagingError) as info:
        _stage(tmp_path, f"{server.url}/x.csv", attempts=4, backoff=0.2, max_backoff=0.5)
    assert "HTTP 503" in info.value.cause and info.value.cause.startswith("ConnectionError")
    heads = [t for t, method, _, _ in server.requests if method == "HEAD"]
    assert len(heads) == 4  # one look-up per try
    gaps = [b - a for a, b in zip(heads, heads[1:])]
    # waits of 0.2, 0.4, then 0.8 capped at 0.5 s, each times a jitter in [0.5, 1]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.25, gaps
    assert all(g < 0.5 + 2.0 for g in gaps), gaps  # bounded (plus generous slack)
    assert sum(gaps) > 0.55


def test_a_later_try_of_the_same_host_waits_too(tmp_path, server):
    """The app's own retries (a second stage_in) back off as well."""
    for _ in range(2):
        with pytest.raises(StagingError):
            _stage(tmp_path, f"{server.url}/y.csv", attempts=1, backoff=0.4, max_backoff=1.0)
    heads = [t for t, method, _, _ in server.requests if method == "HEAD"]
    assert len(heads) == 2 and heads[1] - heads[0] >= 0.2


def test_a_success_forgets_the_failures(tmp_path, server):
    server.accept.add(None)  # everyone is let through now
    assert _stage(tmp_path, f"{server.url}/z.csv", attempts=2, backoff=5.0) == b"hello"
    from daskflow.staging.retry import _hosts

    assert server.url not in _hosts


def test_the_urls_credentials_win_over_an_authorization_header(tmp_path, server):
    basic = "Basic " + base64.b64encode(f"alice:{PW}".encode()).decode()
    server.status = 401
    server.accept = {basic, "Bearer general"}
    http = {"headers": {"Authorization": "Bearer general"}}
    url = server.url.replace("http://", f"http://alice:{PW}@") + "/private.csv"
    assert _stage(tmp_path, url, http=http) == b"hello"
    sent = {auth for _, _, path, auth in server.requests if path == "/private.csv"}
    assert sent == {basic}  # the config's header did not go to this URL
    # a URL without credentials gets the config's header
    assert _stage(tmp_path, f"{server.url}/public.csv", http=http) == b"hello"
    assert {auth for _, _, path, auth in server.requests if path == "/public.csv"} == {
        "Bearer general"}


def test_header_and_url_credentials_reach_the_loopback_server(tmp_path, http_files,
                                                              http_requests):
    local, base = http_files
    with open(os.path.join(local, "in.txt"), "w") as fh:
        fh.write("data")
    url = base.replace("http://", f"http://alice:{PW}@") + "/in.txt"
    http = {"headers": {"Authorization": "Bearer general"}}
    assert _stage(tmp_path, url, http=http) == b"data"
    assert http_requests(f"/{os.path.basename(local)}/in.txt").get("GET", 0) >= 1
