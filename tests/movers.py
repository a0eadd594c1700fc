"""The movers of the contract suite (tests/test_mover_contract.py): for each
scheme, where its remote objects live and how the test puts and reads them
behind daskflow's back, which client runs its apps, and the documented
behaviours that do not apply to it (with the reason, for the skip).

http, ftp and s3 use the loopback servers of ``staging_servers`` and the
session's cluster of worker processes. ``file://`` Files are not moved at
all. Globus' cloud service cannot run here: its stand-in is the one mock of
the suite (see ``GlobusStandIn``), and its apps run on an in-process cluster
so that the mock, which patches ``requests`` in this process, answers them.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import shutil
import socket
import uuid
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest
from staging_servers import FTP, FTP_PORT, HTTP, HTTP_PORT, S3_OPTIONS, _served_dir

NAMES = ("http", "ftp", "s3", "file", "globus", "zip")

NO_SERVER = "file:// Files are not moved (docs/staging.md: the worker must see them): no server"
NOT_MOVED = "file:// Files are not moved (docs/staging.md): the app uses the file where it is"
NO_URL_CREDENTIALS = ("its URLs carry no credentials: they come from the "
                      "daskflow.staging.{scheme} settings (docs/staging.md, Per scheme)")


def free_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mover:
    """One scheme as the contract sees it. ``skips`` maps a contract
    behaviour to the reason it does not apply to this scheme."""

    name = ""
    skips: dict[str, str] = {}
    missing_says = "FileNotFoundError"  # what the cause of a missing object names
    down_says = "refused"  # the transport's reason when the server is down

    def __init__(self, client):
        self.client = client

    def skip_unless(self, behaviour: str) -> None:
        if behaviour in self.skips:
            pytest.skip(f"{self.name}: {self.skips[behaviour]}")

    def url(self, name: str) -> str:
        """The URL of object ``name`` (which may not exist yet)."""
        raise NotImplementedError

    def put(self, name: str, data: bytes) -> None:
        """Create object ``name`` at the source, behind daskflow's back."""
        raise NotImplementedError

    def get(self, name: str) -> bytes:
        """Object ``name`` as the source has it."""
        raise NotImplementedError

    def remove(self, name: str) -> None:
        raise NotImplementedError

    def settings(self) -> dict:
        """dask config of this scheme, for the test's calls."""
        return {}

    def with_credentials(self, url: str) -> tuple[str, list[str]]:
        """``url`` carrying credentials, and the strings that must never be shown."""
        raise NotImplementedError

    def down(self) -> tuple[str, dict]:
        """A URL of this scheme whose server is down, and the settings to use."""
        raise NotImplementedError


class _Directory(Mover):
    """A scheme whose server serves a local directory."""

    def __init__(self, client, directory: str, base_url: str):
        super().__init__(client)
        self.directory, self.base_url = directory, base_url

    def url(self, name):
        return f"{self.base_url}/{name}"

    def _path(self, name):
        return os.path.join(self.directory, *name.split("/"))

    def put(self, name, data):
        os.makedirs(os.path.dirname(self._path(name)), exist_ok=True)
        with open(self._path(name), "wb") as fh:
            fh.write(data)

    def get(self, name):
        with open(self._path(name), "rb") as fh:
            return fh.read()

    def remove(self, name):
        os.unlink(self._path(name))


def _userinfo(url: str, userinfo: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{userinfo}@{rest}"


class Http(_Directory):
    name = "http"
    skips = {"stage-out": "HTTP is read-only (docs/staging.md: 'HTTP and HTTPS (read-only)'; "
                          "the loopback http.server takes GET and HEAD only)"}
    missing_says = "HTTP 404"
    down_says = "Connect call failed"

    def with_credentials(self, url):
        password, signature = f"PW-{uuid.uuid4().hex}", f"SIG-{uuid.uuid4().hex}"
        return f"{_userinfo(url, 'alice:' + password)}?sig={signature}", [password, signature]

    def down(self):
        return f"http://127.0.0.1:{free_port()}/data/x.csv", {}


class Ftp(_Directory):
    name = "ftp"

    def with_credentials(self, url):
        # the loopback server knows one account, ci/ci: its password is the
        # secret, so "ci:ci@" must never be shown (only "ci:***@")
        return _userinfo(url, "ci:ci"), ["ci:ci@"]

    def down(self):
        return f"ftp://127.0.0.1:{free_port()}/data/x.csv", {}


class S3(Mover):
    name = "s3"
    skips = {"credentials": NO_URL_CREDENTIALS.format(scheme="s3")}
    down_says = "Could not connect to the endpoint URL"

    def __init__(self, client, fs, bucket):
        super().__init__(client)
        self.fs, self.bucket = fs, bucket

    def url(self, name):
        return f"s3://{self.bucket}/{name}"

    def put(self, name, data):
        self.fs.pipe(f"{self.bucket}/{name}", data)

    def get(self, name):
        return self.fs.cat(f"{self.bucket}/{name}")

    def remove(self, name):
        self.fs.rm(f"{self.bucket}/{name}")

    def down(self):
        # botocore would retry on its own for seconds: one try each, so that
        # what the test sees is daskflow's retry.attempts
        options = dict(S3_OPTIONS, endpoint_url=f"http://127.0.0.1:{free_port()}",
                       config_kwargs={"retries": {"max_attempts": 1}})
        return f"s3://{self.bucket}/x.csv", {"daskflow.staging.s3": options}


class LocalFiles(_Directory):
    name = "file"
    skips = {"missing": NOT_MOVED + ", so a missing one is the app's own open() failing",
             "down": NO_SERVER, "credentials": "file:// URLs name no server and carry no "
             "credentials", "private": NOT_MOVED + ": there is no staged copy",
             "cache": NOT_MOVED + ": there is nothing to cache"}

    def __init__(self, client, directory):
        super().__init__(client, directory, f"file://{directory}")


class ZipMembers(Mover):
    """Members of one zip archive on the workers' file system (``zip:`` URLs)."""

    name = "zip"
    skips = {"down": "a zip archive is on the worker's file system: there is no server",
             "credentials": "zip: URLs name a path and carry no credentials",
             "cache": "zip members do not go through the node cache: the archive is on a "
                      "file system the node reads (docs/staging.md, Zip archives)"}

    def __init__(self, client, archive):
        super().__init__(client)
        self.archive = archive

    def url(self, name):
        return f"zip:{self.archive}/{name}"

    def _members(self) -> dict:
        if not os.path.exists(self.archive):
            return {}
        with zipfile.ZipFile(self.archive) as z:
            return {n: z.read(n) for n in z.namelist()}

    def _write(self, members: dict) -> None:
        with zipfile.ZipFile(self.archive, "w") as z:
            for n, data in members.items():
                z.writestr(n, data)

    def put(self, name, data):
        self._write({**self._members(), name: data})

    def get(self, name):
        return self._members()[name]

    def remove(self, name):
        members = self._members()
        del members[name]
        self._write(members)


# ------------------------------------------------------------------ Globus
class GlobusStandIn(Mover):
    """Globus' cloud (auth.globus.org, transfer.api.globus.org), played by
    ``responses`` with globus-sdk's own response fixtures (globus_sdk.testing):
    the one mock of the contract suite, as Globus' service cannot run here.

    Everything on daskflow's side is real: the app call, the worker, the
    mover with globus-sdk's clients. A "remote" collection is the directory
    ``remote``; the node's collection is ``local_path``. A submitted
    transfer is carried out at once by copying between the two; ``stat``
    answers from the remote directory (404 when the file is not there); a
    down service refuses connections."""

    name = "globus"
    skips = {"credentials": NO_URL_CREDENTIALS.format(scheme="globus"),
             "cache": "Globus inputs do not go through the node cache (docs/staging.md, Globus)"}
    REMOTE = "8b9e2a6c-0000-4000-8000-0000000000a1"
    LOCAL = "8b9e2a6c-0000-4000-8000-0000000000a2"
    AT_ENDPOINT = "/~/collection"

    def __init__(self, client, rsps, tmp_path):
        super().__init__(client)
        from globus_sdk.testing import get_response_set, load_response

        self.rsps = rsps
        self.remote = tmp_path / "globus-remote"
        self.local_path = tmp_path / "globus-local"
        self.remote.mkdir()
        self.local_path.mkdir()
        self.submit = get_response_set("transfer.submit_transfer").lookup("default")
        self.task_id = self.submit.json["task_id"]
        self.not_found = get_response_set("transfer.operation_stat").lookup("not_found")
        load_response("auth.oauth2_client_credentials_tokens", requests_mock=rsps)
        load_response("transfer.get_submission_id", requests_mock=rsps)
        rsps.add_callback("POST", self.submit.full_url, callback=self._submit)
        rsps.add_callback("GET", self._stat_url(self.REMOTE), callback=self._stat)
        rsps.add("GET", f"https://transfer.api.globus.org/v0.10/task/{self.task_id}",
                 json={"DATA_TYPE": "task", "task_id": self.task_id, "status": "SUCCEEDED"})

    @staticmethod
    def _stat_url(endpoint: str) -> str:
        return f"https://transfer.api.globus.org/v0.10/operation/endpoint/{endpoint}/stat"

    def _where(self, endpoint: str, path: str) -> str:
        if endpoint == self.LOCAL:
            return os.path.join(self.local_path, os.path.relpath(path, self.AT_ENDPOINT))
        return os.path.join(self.remote, path.lstrip("/"))

    def _submit(self, request):
        doc = json.loads(request.body)
        for item in doc["DATA"]:
            target = self._where(doc["destination_endpoint"], item["destination_path"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(self._where(doc["source_endpoint"], item["source_path"]), target)
        return 202, {}, json.dumps(self.submit.json)

    def _stat(self, request):
        path = parse_qs(urlsplit(request.url).query)["path"][0]
        where = self._where(self.REMOTE, path)
        if not os.path.isfile(where):
            return self.not_found.status, {}, json.dumps(self.not_found.json)
        return 200, {}, json.dumps({"DATA_TYPE": "file", "name": os.path.basename(path),
                                    "type": "file", "size": os.path.getsize(where),
                                    "last_modified": "2026-01-02 03:04:05+00:00"})

    def settings(self):
        return {"daskflow.staging.globus": {
            "client_id": "cid", "client_secret": "secret", "local_endpoint": self.LOCAL,
            "local_path": str(self.local_path), "endpoint_path": self.AT_ENDPOINT,
            "timeout": 5, "polling_interval": 1}}

    def url(self, name):
        return f"globus://{self.REMOTE}/{name}"

    def put(self, name, data):
        path = self._where(self.REMOTE, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)

    def get(self, name):
        with open(self._where(self.REMOTE, name), "rb") as fh:
            return fh.read()

    def remove(self, name):
        os.unlink(self._where(self.REMOTE, name))

    def down(self):
        import requests

        unreachable = "8b9e2a6c-0000-4000-8000-0000000000a3"
        self.rsps.add("GET", self._stat_url(unreachable), body=requests.exceptions.ConnectionError(
            "Failed to establish a new connection: [Errno 111] Connection refused"))
        return f"globus://{unreachable}/data/x.csv", {}


@pytest.fixture(scope="module")
def in_process_client(run_records):
    """A cluster whose worker runs in this process (for the Globus stand-in)."""
    import daskflow

    with daskflow.Client(processes=False, n_workers=1, threads_per_worker=2,
                         dashboard_address=":0", set_as_default=False) as c:
        yield c


@pytest.fixture(params=NAMES)
def mover(request, tmp_path, staging_config):
    """Each mover in turn (a contract test runs once per scheme)."""
    name = request.param
    if name == "http":
        directory, url = _served_dir("http", HTTP_PORT, HTTP)
        return Http(request.getfixturevalue("client"), directory, url)
    if name == "ftp":
        directory, url = _served_dir("ftp", FTP_PORT, FTP)
        return Ftp(request.getfixturevalue("client"), directory, url)
    if name == "s3":
        fs, bucket = request.getfixturevalue("s3_bucket")
        return S3(request.getfixturevalue("client"), fs, bucket)
    if name == "file":
        directory = tmp_path / "local-files"
        directory.mkdir()
        return LocalFiles(request.getfixturevalue("client"), str(directory))
    if name == "zip":
        return ZipMembers(request.getfixturevalue("client"), str(tmp_path / "objects.zip"))
    pytest.importorskip("globus_sdk")
    responses = pytest.importorskip("responses")
    client = request.getfixturevalue("in_process_client")
    rsps = responses.RequestsMock(assert_all_requests_are_fired=False)
    rsps.start()
    request.addfinalizer(lambda: (rsps.stop(), rsps.reset()))
    return GlobusStandIn(client, rsps, tmp_path)


# ------------------------------------------------------------------ worker logs
CAPTURE = "contract-capture"


def _install_capture():
    logger = logging.getLogger("daskflow.staging")
    for h in logger.handlers:
        if h.get_name() == CAPTURE:
            h.buffer.clear()
            return
    handler = logging.handlers.BufferingHandler(capacity=100_000)
    handler.set_name(CAPTURE)
    logger.addHandler(handler)


def _captured():
    handler = next(h for h in logging.getLogger("daskflow.staging").handlers
                   if h.get_name() == CAPTURE)
    return [r.getMessage() for r in handler.buffer]


@pytest.fixture
def worker_logs(mover):
    """``read()``: the "daskflow.staging" log messages of the mover's workers
    since the test began (the retry messages)."""
    mover.client.run(_install_capture)

    class Logs:
        @staticmethod
        def read() -> list[str]:
            return [m for ms in mover.client.run(_captured).values() for m in ms]

    return Logs
