"""The Globus mover: ``globus://ENDPOINT_UUID/path`` through globus-sdk's TransferClient.

A Globus transfer runs between two endpoints (collections), so the worker
node needs one of its own: ``local_endpoint`` (its UUID) exposes the node
directory ``local_path``, which the endpoint names ``endpoint_path`` (by
default the same). Stage-in transfers the object into a hidden directory
under ``local_path`` and moves it to the task's copy once the transfer
succeeded; stage-out transfers the app's file (copied under ``local_path``
first if it is not there) to the URL, with checksum verification.

Each transfer is one Globus task: submitted, waited for up to ``timeout``
seconds (polled every ``polling_interval``; cancelled at the timeout), and
any status but SUCCEEDED is raised with the task id and Globus' events.

Authentication, from the staging options (``daskflow.staging.globus.*``):

* ``client_id`` + ``client_secret``: a confidential client (client
  credentials grant), e.g. from a site profile;
* ``client_id`` alone: a native app whose tokens a login stored in
  ``token_file`` (default ``~/.config/daskflow/globus-tokens.json``, mode
  0600). Log in once with ``daskflow globus login``;
  refreshed tokens are written back to the same file.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import uuid
from urllib.parse import urlsplit

import globus_sdk
from dask.utils import parse_timedelta
from globus_sdk.scopes import TransferScopes
from globus_sdk.token_storage import JSONTokenStorage

from ..redaction import redact_text

DEFAULT_TIMEOUT = 3600.0
DEFAULT_POLLING = 15.0
STAGING_SUBDIR = ".daskflow-globus"


def default_token_file() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "daskflow", "globus-tokens.json")


def token_storage(path: str | None = None) -> JSONTokenStorage:
    """The token file, created user-only (directory 0700, file 0600)."""
    path = path or default_token_file()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    return JSONTokenStorage(path)


def store_tokens(storage: JSONTokenStorage, response) -> None:
    """Save a token response and make sure only the user can read the file."""
    storage.store_token_response(response)
    os.chmod(storage.filepath, 0o600)


def login(client_id: str, token_file: str | None = None, *, ask=None, say=None) -> str:
    """Native-app login: print the Globus authorization URL, read the code the
    user pastes, store the tokens (with a refresh token); returns the file."""
    ask, say = ask or input, say or print
    auth = globus_sdk.NativeAppAuthClient(client_id)
    auth.oauth2_start_flow(requested_scopes=TransferScopes.all, refresh_tokens=True)
    say(f"Log in to Globus at:\n\n  {auth.oauth2_get_authorize_url()}\n")
    code = ask("Paste the authorization code here: ").strip()
    tokens = auth.oauth2_exchange_code_for_tokens(code)
    storage = token_storage(token_file)
    store_tokens(storage, tokens)
    return storage.filepath


@contextlib.contextmanager
def reachable():
    """A Globus service that cannot be reached (globus-sdk's ``NetworkError``,
    after its own retries) raises ``ConnectionError``, as the other movers do,
    so that staging tries again (``retry.py``) and says the server is down."""
    try:
        yield
    except globus_sdk.NetworkError as exc:
        cause = getattr(exc, "underlying_exception", None) or exc
        raise ConnectionError("the server cannot be reached: " + redact_text(
            f"{type(cause).__name__}: {cause}")) from None


def split(url: str) -> tuple[str, str]:
    """``globus://ENDPOINT/path`` → (endpoint, /path)."""
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError(f"{url}: a Globus URL is globus://ENDPOINT_UUID/path")
    return parts.netloc, parts.path or "/"


class GlobusMover:
    """Stage ``globus://`` Files with Globus transfer tasks (see the module docstring)."""

    cacheable = False  # the copy must land under the endpoint's directory

    def __init__(self, scheme: str, options: dict):
        self.scheme = scheme
        self.options = options
        self.timeout = parse_timedelta(options.get("timeout") or DEFAULT_TIMEOUT, default="s")
        self.polling = parse_timedelta(options.get("polling_interval") or DEFAULT_POLLING,
                                       default="s")
        self._client: globus_sdk.TransferClient | None = None

    # ------------------------------------------------------------------ auth
    def authorizer(self):
        client_id = self.options.get("client_id")
        if not client_id:
            raise PermissionError("set daskflow.staging.globus.client-id (and client-secret "
                                  "for a confidential client) in the profile or dask config")
        secret = self.options.get("client_secret")
        if secret:
            confidential = globus_sdk.ConfidentialAppAuthClient(client_id, secret)
            return globus_sdk.ClientCredentialsAuthorizer(confidential, TransferScopes.all)
        storage = token_storage(self.options.get("token_file"))
        tokens = storage.get_token_data(TransferScopes.resource_server)
        if tokens is None:
            raise PermissionError(f"no Globus transfer tokens in {storage.filepath}; log in "
                                  "with: daskflow globus login")
        if tokens.refresh_token:
            return globus_sdk.RefreshTokenAuthorizer(
                tokens.refresh_token, globus_sdk.NativeAppAuthClient(client_id),
                access_token=tokens.access_token, expires_at=tokens.expires_at_seconds,
                on_refresh=lambda response: store_tokens(storage, response))
        return globus_sdk.AccessTokenAuthorizer(tokens.access_token)

    @property
    def client(self) -> globus_sdk.TransferClient:
        if self._client is None:
            self._client = globus_sdk.TransferClient(authorizer=self.authorizer())
        return self._client

    # ------------------------------------------------------------------ paths
    def _local(self) -> tuple[str, str, str]:
        endpoint = self.options.get("local_endpoint")
        local_path = self.options.get("local_path")
        if not endpoint or not local_path:
            raise ValueError("Globus staging needs daskflow.staging.globus.local-endpoint (the "
                             "UUID of this node's collection) and local-path (the directory "
                             "it exposes)")
        return endpoint, local_path, self.options.get("endpoint_path") or local_path

    def _scratch(self, name: str) -> tuple[str, str]:
        """A fresh hidden spot under the local endpoint: (local path, endpoint path)."""
        _, local_path, endpoint_path = self._local()
        rel = posixpath.join(STAGING_SUBDIR, uuid.uuid4().hex, name)
        return os.path.join(local_path, rel), posixpath.join(endpoint_path, rel)

    # ------------------------------------------------------------------ mover API
    def fingerprint(self, url: str) -> tuple:
        endpoint, path = split(url)
        try:
            with reachable():
                info = self.client.operation_stat(endpoint, path)
        except globus_sdk.TransferAPIError as exc:
            if exc.http_status == 404:
                raise FileNotFoundError(f"{url}: {exc.message}") from None
            raise
        if info.get("type") == "dir":
            raise IsADirectoryError(f"{url} is a directory; stage files one by one")
        return (info.get("size"), ("last_modified", str(info.get("last_modified"))))

    def fetch(self, url: str, dest: str) -> None:
        endpoint, path = split(url)
        local, at_endpoint = self._scratch(posixpath.basename(path) or "download")
        os.makedirs(os.path.dirname(local), exist_ok=True)
        try:
            self.transfer(endpoint, path, self._local()[0], at_endpoint)
            if not os.path.exists(local):
                raise FileNotFoundError(f"the Globus transfer reported success but {local} "
                                        "is not there: check local-path/endpoint-path")
            shutil.move(local, dest)
        finally:
            shutil.rmtree(os.path.dirname(local), ignore_errors=True)

    def push(self, src: str, url: str) -> None:
        endpoint, path = split(url)
        local_endpoint, local_path, endpoint_path = self._local()
        real_src, real_root = os.path.realpath(src), os.path.realpath(local_path)
        scratch = None
        if os.path.commonpath([real_src, real_root]) == real_root:
            at_endpoint = posixpath.join(endpoint_path, os.path.relpath(real_src, real_root))
        else:
            scratch, at_endpoint = self._scratch(os.path.basename(src))
            os.makedirs(os.path.dirname(scratch), exist_ok=True)
            shutil.copyfile(src, scratch)
        try:
            self.transfer(local_endpoint, at_endpoint, endpoint, path)
        finally:
            if scratch:
                shutil.rmtree(os.path.dirname(scratch), ignore_errors=True)

    def transfer(self, source: str, source_path: str, destination: str, dest_path: str) -> str:
        """One Globus transfer task, waited for; returns its id or raises naming it."""
        with reachable():
            return self._transfer(source, source_path, destination, dest_path)

    def _transfer(self, source: str, source_path: str, destination: str, dest_path: str) -> str:
        data = globus_sdk.TransferData(source, destination, label="daskflow staging",
                                       verify_checksum=True)
        data.add_item(source_path, dest_path)
        task_id = self.client.submit_transfer(data)["task_id"]
        timeout = max(1, int(self.timeout))
        done = self.client.task_wait(task_id, timeout=timeout,
                                     polling_interval=max(1, int(self.polling)))
        if not done:
            try:
                self.client.cancel_task(task_id)
            except globus_sdk.GlobusError:  # best effort: the timeout is the news
                pass
            raise TimeoutError(f"Globus transfer task {task_id} did not finish within "
                               f"{timeout} s and was cancelled")
        task = self.client.get_task(task_id)
        if task["status"] != "SUCCEEDED":
            events = [e.get("description") or e.get("code") for e in
                      self.client.task_event_list(task_id, limit=5) if e.get("is_error")]
            detail = "; ".join(str(e) for e in events) or task.get("nice_status") or "no details"
            raise OSError(f"Globus transfer task {task_id} ended {task['status']}: {detail}")
        return task_id
