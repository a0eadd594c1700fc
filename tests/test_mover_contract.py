"""The promises of docs/staging.md that every mover keeps, checked once per
scheme (http, ftp, s3, file, globus, zip) through real app calls, as fsspec's and
dask-jobqueue's shared test suites do for their implementations.

Each test is one promise; ``tests/movers.py`` says, per scheme, where its
objects live and which promises do not apply to it (skipped with the
reason). http, ftp and s3 run against the loopback servers on the session's
worker processes; Globus' cloud cannot run here, so its case uses the
stand-in of ``movers.GlobusStandIn`` (``responses`` with globus-sdk's own
fixtures: the one mock of this suite) on an in-process cluster.
"""

from __future__ import annotations

import os
import stat

import dask
import pytest
from waiting import until

from daskflow import File, StagingError, python_app
from daskflow.redaction import redact_url

pytest_plugins = ("staging_servers", "movers")  # staging_config, s3_bucket; mover, worker_logs

TIMEOUT = 30
FAST_RETRY = {"daskflow.staging.retry.attempts": 2, "daskflow.staging.retry.backoff": 0.05,
              "daskflow.staging.retry.max-backoff": 0.1}


@python_app
def read_bytes(f):
    """The bytes of a File argument, and where the app saw it."""
    with open(f, "rb") as fh:
        return fh.read(), f.filepath


@python_app
def read_inputs(inputs=()):
    with open(inputs[0], "rb") as fh:
        return fh.read(), inputs[0].filepath


@python_app
def write_bytes(data, outputs=()):
    with open(outputs[0], "wb") as fh:
        fh.write(data)


@python_app
def modes(f, root):
    """(path, mode, owner) of the staged copy and each directory up to ``root``."""
    found, path = [], f.filepath
    while True:
        st = os.stat(path)
        found.append((path, stat.S_IMODE(st.st_mode), st.st_uid))
        if os.path.samefile(path, root):
            return found
        path = os.path.dirname(path)
        assert path != "/", f"{f.filepath} is not under {root}"


def _call(mover, app, *args, **kwargs):
    with mover.client.as_current(), dask.config.set(mover.settings()):
        return app(*args, **kwargs)


def _payload() -> bytes:
    return os.urandom(3000) + b"\x00\r\n\xff end"


def test_stage_in_gives_the_app_the_same_bytes(mover, staging_config):
    data = _payload()
    mover.put("in/data.bin", data)
    got, seen = _call(mover, read_inputs, inputs=[File(mover.url("in/data.bin"))]).result(TIMEOUT)
    assert got == data
    assert seen.endswith("/data.bin")
    if mover.name != "file":  # a local File is read where it is
        assert seen.startswith(str(staging_config))
        assert not os.path.exists(seen)  # the task's copies are removed when it ends


def test_stage_out_arrives_with_the_same_bytes(mover, staging_config):
    mover.skip_unless("stage-out")
    data = _payload()
    future = _call(mover, write_bytes, data, outputs=[File(mover.url("result.bin"))])
    assert future.outputs[0].result(TIMEOUT).url == mover.url("result.bin")
    assert mover.get("result.bin") == data  # there once the DataFuture completed


def test_a_missing_object_fails_naming_the_redacted_url(mover, staging_config):
    mover.skip_unless("missing")
    url = mover.url("absent/nothing.bin")
    if "credentials" not in mover.skips:
        url, _ = mover.with_credentials(url)
    future = _call(mover, read_bytes, File(url))
    with pytest.raises(StagingError) as info:
        future.result(TIMEOUT)
    err = info.value
    shown = redact_url(url)
    assert (err.url, err.direction, err.app_name, err.tid) == (shown, "in", "read_bytes",
                                                             future.tid)
    assert err.cause.startswith("FileNotFoundError"), err.cause
    assert mover.missing_says in err.cause, err.cause
    assert f"could not stage in {shown}: FileNotFoundError" in str(err)


@pytest.mark.parametrize("mover", ["http", "ftp", "s3", "file", pytest.param(
    "globus", marks=pytest.mark.slow)], indirect=True)  # globus-sdk retries on its own (~8 s)
def test_a_server_that_is_down_fails_after_the_retries(mover, staging_config, worker_logs):
    mover.skip_unless("down")
    _down_fails_after_the_retries(mover, worker_logs)


def _down_fails_after_the_retries(mover, worker_logs):
    url, settings = mover.down()
    with dask.config.set({**FAST_RETRY, **settings}):
        future = _call(mover, read_bytes, File(url))
    with pytest.raises(StagingError) as info:
        future.result(90 if mover.name == "globus" else TIMEOUT)
    err = info.value
    assert (err.url, err.direction) == (url, "in")
    assert err.cause.startswith("ConnectionError: the server cannot be reached"), err.cause
    assert mover.down_says in err.cause, err.cause  # the transport's reason
    assert "FileNotFoundError" not in str(err)
    retried = [m for m in worker_logs.read() if url in m]
    assert len(retried) == 1 and "try 2 of 2" in retried[0], retried  # 2 tries, 1 retry


def test_credentials_in_the_url_are_never_shown(mover, staging_config, worker_logs, logs):
    """Not in the error, the workers' retry messages, the driver's log, nor
    the run's provenance (a fetched, a missing and an unreachable File)."""
    from daskflow.client.session import session_of
    from daskflow.provenance.store import ProvenanceStore

    mover.skip_unless("credentials")
    mover.put("in/ok.bin", b"fine")
    ok, secrets = mover.with_credentials(mover.url("in/ok.bin"))
    missing, _ = mover.with_credentials(mover.url("in/absent.bin"))
    down, settings = mover.down()
    down, _ = mover.with_credentials(down)
    with dask.config.set({**FAST_RETRY, **settings}):
        futures = [_call(mover, read_bytes, File(u)) for u in (ok, missing, down)]
    assert futures[0].result(TIMEOUT)[0] == b"fine"
    errors = [str(f.exception(TIMEOUT)) for f in futures[1:]]
    assert all(isinstance(f.exception(), StagingError) for f in futures[1:]), errors
    assert redact_url(missing) in errors[0] and redact_url(down) in errors[1]
    retried = [m for m in worker_logs.read() if redact_url(down) in m]
    assert retried, "the unreachable File's retry was not logged"

    store_path = os.path.join(session_of(mover.client).run_dir, "provenance.db")

    def recorded():
        with ProvenanceStore(store_path, readonly=True) as store:
            files = [r["url"] for r in store.files(futures[0].key)]
            failed = [t for t in store.tasks() if t["key"] == futures[2].key and t["exception"]]
        return redact_url(ok) in files and failed

    until(recorded, "the calls were not recorded in provenance", timeout=10, interval=0.2)
    shown = errors + retried + [r.getMessage() for r in logs.records]
    for secret in secrets:
        assert not [s for s in shown if secret in s], secret
        for d, _, names in os.walk(os.path.dirname(store_path)):
            for name in names:
                with open(os.path.join(d, name), "rb") as fh:
                    assert secret.encode() not in fh.read(), os.path.join(d, name)


def test_the_staged_copy_is_private(mover, staging_config):
    mover.skip_unless("private")
    mover.put("in/private.bin", b"mine")
    found = _call(mover, modes, File(mover.url("in/private.bin")),
                  str(staging_config)).result(TIMEOUT)
    (path, mode, uid), dirs = found[0], found[1:]
    assert uid == os.getuid()
    # a task's own download is 0600; a link to the node cache's entry is read-only, 0400
    assert mode in (0o600, 0o400), (path, oct(mode))
    assert [(p, oct(m)) for p, m, u in dirs if m != 0o700 or u != os.getuid()] == []


def test_a_second_call_reuses_the_node_cache(mover, staging_config):
    """Within cache.check-every the node trusts what it fetched: the second
    call is served from the cache even though the source lost the object."""
    mover.skip_unless("cache")
    mover.put("in/cached.bin", b"first")
    f = File(mover.url("in/cached.bin"))
    with dask.config.set({"daskflow.staging.cache.check-every": "60s"}):
        assert _call(mover, read_bytes, f).result(TIMEOUT)[0] == b"first"
        mover.remove("in/cached.bin")
        assert _call(mover, read_bytes, f).result(TIMEOUT)[0] == b"first"
