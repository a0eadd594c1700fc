"""Globus staging, against globus-sdk's own testing fixtures.

Globus' cloud service (auth.globus.org, transfer.api.globus.org) cannot be
reached from here, so its HTTP API is mocked with ``responses`` loaded from
``globus_sdk.testing`` response sets (plus task-status documents in the
Transfer API's format where the SDK ships none). Everything on our side is
real: globus-sdk's clients, authorizers and token storage, the mover, the
task body's ``Staged`` and the files on disk. The submit callback plays the
part of the Globus endpoint: it writes the transferred file where the local
collection would.
"""

from __future__ import annotations

import json
import os
import stat
from urllib.parse import parse_qs, urlsplit

import pytest

responses = pytest.importorskip("responses")
globus_sdk = pytest.importorskip("globus_sdk")

from globus_sdk.testing import RegisteredResponse, get_response_set, load_response  # noqa: E402

from daskflow import File, StagingError  # noqa: E402
from daskflow.staging import stage_in  # noqa: E402
from daskflow.staging.globus import GlobusMover, login  # noqa: E402
from daskflow.staging.options import Settings  # noqa: E402

SOURCE = "8b9e2a6c-0000-4000-8000-000000000001"
LOCAL = "8b9e2a6c-0000-4000-8000-000000000002"
SUBMIT = get_response_set("transfer.submit_transfer").lookup("default")
TASK_ID = SUBMIT.json["task_id"]


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def endpoint(tmp_path, rsps):
    """The local collection's directory, client-credential auth, and a
    submit endpoint that "transfers" by writing files under that directory.
    Returns (options, submitted transfer documents)."""
    local_path = tmp_path / "collection"
    local_path.mkdir()
    options = {"client_id": "cid", "client_secret": "secret", "local_endpoint": LOCAL,
               "local_path": str(local_path), "endpoint_path": "/~/collection",
               "timeout": 5, "polling_interval": 1}
    load_response("auth.oauth2_client_credentials_tokens", requests_mock=rsps)
    load_response("transfer.get_submission_id", requests_mock=rsps)
    submitted = []

    def submit(request):
        doc = json.loads(request.body)
        submitted.append((doc, request.headers.get("Authorization")))
        for item in doc["DATA"]:
            if doc["destination_endpoint"] == LOCAL:
                rel = os.path.relpath(item["destination_path"], "/~/collection")
                target = os.path.join(local_path, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w") as fh:
                    fh.write(f"globus copy of {item['source_path']}")
        return 202, {}, json.dumps(SUBMIT.json)

    rsps.add_callback("POST", SUBMIT.full_url, callback=submit)

    def stat(request):  # what the source collection says about a path (operation_stat)
        path = parse_qs(urlsplit(request.url).query)["path"][0]
        return 200, {}, json.dumps({"DATA_TYPE": "file", "name": os.path.basename(path),
                                    "type": "file", "size": len(f"globus copy of {path}"),
                                    "last_modified": "2026-01-02 03:04:05+00:00"})

    rsps.add_callback("GET", f"https://transfer.api.globus.org/v0.10/operation/endpoint/"
                      f"{SOURCE}/stat", callback=stat)
    return options, submitted


def task_status(rsps, status: str, events=()):
    RegisteredResponse(service="transfer", path=f"/v0.10/task/{TASK_ID}",
                       json={"DATA_TYPE": "task", "task_id": TASK_ID, "status": status,
                             "nice_status": None if status == "SUCCEEDED" else "ERROR"},
                       ).add(requests_mock=rsps)
    RegisteredResponse(service="transfer", path=f"/v0.10/task/{TASK_ID}/event_list",
                       json={"DATA_TYPE": "event_list", "DATA": list(events), "limit": 5,
                             "offset": 0, "total": len(events)}).add(requests_mock=rsps)


def test_stage_in_is_a_transfer_task_to_the_local_collection(tmp_path, rsps, endpoint):
    options, submitted = endpoint
    task_status(rsps, "SUCCEEDED")
    dest = tmp_path / "copy.txt"
    GlobusMover("globus", options).fetch(f"globus://{SOURCE}/data/in.txt", str(dest))
    assert dest.read_text() == "globus copy of /data/in.txt"
    (doc, auth), = submitted
    assert (doc["source_endpoint"], doc["destination_endpoint"]) == (SOURCE, LOCAL)
    assert doc["verify_checksum"] is True
    (item,) = doc["DATA"]
    assert item["source_path"] == "/data/in.txt"
    assert item["destination_path"].startswith("/~/collection/.daskflow-globus/")
    assert auth == "Bearer DUMMY_TRANSFER_TOKEN_FROM_THE_INTERTUBES"  # client credentials
    assert os.listdir(tmp_path / "collection" / ".daskflow-globus") == []  # scratch removed


def test_a_failed_transfer_names_the_task_and_globus_events(tmp_path, rsps, endpoint):
    options, _ = endpoint
    task_status(rsps, "FAILED", events=[{"code": "PERMISSION_DENIED", "is_error": True,
                                         "description": "permission denied on /data/x"}])
    settings = Settings(schemes={"globus": options}, dir=str(tmp_path / "staging"))
    url = f"globus://{SOURCE}/data/x"
    with pytest.raises(StagingError) as info:
        stage_in("analyse", 3, (), {"inputs": [File(url)]}, (), settings)
    err = info.value
    assert (err.url, err.direction, err.app_name, err.tid) == (url, "in", "analyse", 3)
    assert f"Globus transfer task {TASK_ID} ended FAILED" in err.cause
    assert "permission denied on /data/x" in err.cause
    assert os.listdir(tmp_path / "staging" / "tasks") == []


def test_a_transfer_that_does_not_finish_is_cancelled(tmp_path, rsps, endpoint):
    options, _ = endpoint
    task_status(rsps, "ACTIVE")
    fixture = get_response_set("transfer.cancel_task").lookup("default")  # for its body
    cancel = RegisteredResponse(service="transfer", path=f"/v0.10/task/{TASK_ID}/cancel",
                                method="POST", json=fixture.json).add(requests_mock=rsps)
    mover = GlobusMover("globus", dict(options, timeout=1))
    with pytest.raises(TimeoutError, match=f"task {TASK_ID} did not finish within 1 s"):
        mover.fetch(f"globus://{SOURCE}/data/slow", str(tmp_path / "slow"))
    assert any(call.request.url == cancel.full_url for call in rsps.calls)
    assert not (tmp_path / "slow").exists()


def test_stage_out_sends_the_apps_file_from_the_local_collection(tmp_path, rsps, endpoint):
    options, submitted = endpoint
    task_status(rsps, "SUCCEEDED")
    result = tmp_path / "elsewhere" / "result.txt"
    result.parent.mkdir()
    result.write_text("42")
    GlobusMover("globus", options).push(str(result), f"globus://{SOURCE}/out/result.txt")
    (doc, _), = submitted
    assert (doc["source_endpoint"], doc["destination_endpoint"]) == (LOCAL, SOURCE)
    (item,) = doc["DATA"]
    assert item["destination_path"] == "/out/result.txt"
    assert item["source_path"].startswith("/~/collection/.daskflow-globus/")
    assert os.listdir(tmp_path / "collection" / ".daskflow-globus") == []


def test_fingerprint_and_missing_objects(rsps, endpoint):
    options, _ = endpoint
    stat_ok = load_response("transfer.operation_stat", requests_mock=rsps)
    ep = stat_ok.metadata["endpoint_id"]
    mover = GlobusMover("globus", options)
    assert mover.fingerprint(f"globus://{ep}/~/file1.txt") == (
        4, ("last_modified", "2023-12-18 16:52:50+00:00"))
    load_response("transfer.operation_stat", case="not_found", requests_mock=rsps).replace(
        requests_mock=rsps)
    with pytest.raises(FileNotFoundError, match=f"globus://{ep}/~/foo"):
        mover.fingerprint(f"globus://{ep}/~/foo")


def test_native_login_stores_tokens_for_the_user_only(tmp_path, rsps):
    load_response("auth.oauth2_exchange_code_for_tokens", requests_mock=rsps)
    said = []
    token_file = str(tmp_path / "config" / "daskflow" / "globus-tokens.json")
    path = login("a-native-client-id", token_file, ask=lambda prompt: " the-code \n",
                 say=said.append)
    assert path == token_file
    assert "client_id=a-native-client-id" in said[0] and "auth.globus.org" in said[0]
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(token_file)).st_mode) == 0o700
    (call,) = [c for c in rsps.calls if c.request.url.endswith("/v2/oauth2/token")]
    assert "code=the-code" in call.request.body
    mover = GlobusMover("globus", {"client_id": "a-native-client-id", "token_file": token_file})
    authorizer = mover.authorizer()
    assert isinstance(authorizer, globus_sdk.AccessTokenAuthorizer)
    assert authorizer.get_authorization_header() == "Bearer transfer_access_token"


def test_login_tokens_with_a_refresh_token_refresh_themselves(tmp_path, rsps):
    RegisteredResponse(service="auth", path="/v2/oauth2/token", method="POST", json={
        "access_token": "at", "refresh_token": "rt", "expires_in": 3600, "token_type": "Bearer",
        "scope": "urn:globus:auth:scope:transfer.api.globus.org:all",
        "resource_server": "transfer.api.globus.org", "other_tokens": []},
    ).add(requests_mock=rsps)
    token_file = str(tmp_path / "tokens.json")
    login("cid", token_file, ask=lambda prompt: "code", say=lambda text: None)
    authorizer = GlobusMover("globus", {"client_id": "cid", "token_file": token_file}).authorizer()
    assert isinstance(authorizer, globus_sdk.RefreshTokenAuthorizer)
    assert authorizer.get_authorization_header() == "Bearer at"


def test_missing_credentials_say_what_to_do(tmp_path):
    with pytest.raises(PermissionError, match="client-id"):
        GlobusMover("globus", {}).authorizer()
    token_file = str(tmp_path / "none.json")
    with pytest.raises(PermissionError, match="daskflow globus login"):
        GlobusMover("globus", {"client_id": "cid", "token_file": token_file}).authorizer()
    with pytest.raises(ValueError, match="local-endpoint"):
        GlobusMover("globus", {"client_id": "c", "client_secret": "s"}).fetch(
            f"globus://{SOURCE}/x", str(tmp_path / "x"))


def test_globus_urls_are_accepted_at_call_time():
    from daskflow.staging import check_call

    settings = check_call("app", (File(f"globus://{SOURCE}/data/x"),), {}, ())
    assert "globus" in settings.schemes


def test_login_command(tmp_path, rsps):
    from click.testing import CliRunner

    from daskflow.cli.main import main

    load_response("auth.oauth2_exchange_code_for_tokens", requests_mock=rsps)
    token_file = str(tmp_path / "t.json")
    result = CliRunner().invoke(main, ["globus", "login", "--client-id", "cid",
                                       "--token-file", token_file], input="pasted-code\n")
    assert result.exit_code == 0, result.output
    assert "auth.globus.org" in result.output
    assert f"Globus tokens stored in {token_file}" in result.output
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    (call,) = [c for c in rsps.calls if c.request.url.endswith("/v2/oauth2/token")]
    assert "code=pasted-code" in call.request.body


def test_login_command_needs_a_client_id():
    from click.testing import CliRunner

    from daskflow.cli.main import main

    result = CliRunner().invoke(main, ["globus", "login"])
    assert result.exit_code == 2 and "give --client-id" in result.output
