"""Staging remote Files in and out, on the real cluster and real loopback
servers (HTTP: python http.server, FTP: pyftpdlib, S3: moto's server through
s3fs with endpoint_url), all started by scripts/test."""

from __future__ import annotations

import http.server
import importlib.util
import os
import pickle
import threading
from urllib.parse import urlsplit
import uuid

import dask
import pytest
from waiting import until

from daskflow import (BashExitFailure, DependencyError, File, MissingOutputs, StagingError,
                      UnstageableFile, bash_app, python_app)
from daskflow.staging import staging_options
from daskflow.staging.options import Settings, snapshot

pytest_plugins = ("staging_servers",)  # its fixtures: staging_config, http_files, ftp_files, s3_bucket


@python_app
def read(f):
    """The text of a File argument, and where the app saw it."""
    with open(f) as fh:
        return fh.read(), f.filepath


@python_app
def read_all(inputs=()):
    return [open(f).read() for f in inputs]


@python_app
def write(text, outputs=()):
    with open(outputs[0], "w") as fh:
        fh.write(text)


@python_app
def size_of(f):
    return os.path.getsize(f)


# ------------------------------------------------------------------ settings
def test_staging_options_come_from_dask_config():
    with dask.config.set({"daskflow.staging.s3": {"endpoint-url": "http://x:1", "anon": True},
                          "daskflow.staging.http": {"headers": {"A": "b"}},
                          "daskflow.staging.https": {"block_size": 0}}):
        assert staging_options("s3") == {"endpoint_url": "http://x:1", "anon": True}
        assert staging_options("s3a") == {"endpoint_url": "http://x:1", "anon": True}
        assert staging_options("https") == {"headers": {"A": "b"}, "block_size": 0}
        settings = snapshot(["s3"])
    assert settings.options("s3")["endpoint_url"] == "http://x:1"
    again = pickle.loads(pickle.dumps(settings))
    assert (again.schemes, again.transfers, again.cache_max_bytes) == (
        settings.schemes, 4, 10 * 2**30)
    with pytest.raises(ValueError, match="staging setting"):
        staging_options("cache")


def test_settings_reach_the_worker_from_the_driver_config():
    """The snapshot carries the driver's options; absent schemes read the
    worker's own config."""
    settings = Settings(schemes={"s3": {"anon": True}})
    assert settings.options("s3") == {"anon": True}
    with dask.config.set({"daskflow.staging.ftp.port": 21}):
        assert settings.options("ftp") == {"port": 21}


# ------------------------------------------------------------------ call time
def test_unknown_scheme_fails_at_call_time(client):
    with pytest.raises(UnstageableFile) as info:
        read_all(inputs=[File("nosuch://host/data.txt")])
    assert isinstance(info.value, ValueError)
    assert "nosuch://host/data.txt" in str(info.value)
    assert "no mover knows the scheme 'nosuch'" in str(info.value)
    with pytest.raises(UnstageableFile, match="'read'.*nosuch"):
        read(File("nosuch://host/x"))  # a positional File too


def test_scheme_whose_package_is_missing_fails_at_call_time(client):
    if importlib.util.find_spec("adlfs") is not None:
        pytest.skip("adlfs is installed here, so abfs:// can be staged")
    with pytest.raises(UnstageableFile, match="fsspec cannot load the 'abfs' filesystem"):
        read(File("abfs://container/x"))


@pytest.mark.parametrize("url", ["s3://bucket/out/../../etc/passwd", "ftp://h/a/%2e%2e/b",
                                 "http://h/a/../b"])
def test_dotdot_escapes_are_refused_at_call_time(client, url):
    with pytest.raises(UnstageableFile, match=r"'\.\.' component"):
        write("x", outputs=[File(url)])
    with pytest.raises(UnstageableFile, match=r"'\.\.' component"):
        read_all(inputs=[File(url)])


def test_output_must_name_a_file(client):
    with pytest.raises(UnstageableFile, match="names a directory"):
        write("x", outputs=[File("s3://bucket/dir/")])


# ------------------------------------------------------------------ stage in
def test_a_failed_stage_in_is_a_dependency_error_downstream(client, staging_config,
                                                            http_files):
    _, url = http_files
    first = read(File(f"{url}/absent.txt"))
    with pytest.raises(DependencyError, match="'read'") as info:
        read_all(inputs=[first]).result(timeout=60)
    assert isinstance(info.value.cause, StagingError)


def test_dotdot_in_a_file_made_on_a_worker_is_refused_there(client, staging_config):
    @python_app
    def make():
        return File("http://127.0.0.1:1/a/../b.txt")

    made = make()
    with pytest.raises(StagingError, match=r"could not stage in .*'\.\.' component"):
        read(made).result(timeout=60)
    assert made.result().url == "http://127.0.0.1:1/a/../b.txt"


# ------------------------------------------------------------------ partial downloads
class _Truncating(http.server.BaseHTTPRequestHandler):
    """Announces 1,000 bytes and sends 100, then hangs up."""

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()

    def do_GET(self):
        self.do_HEAD()
        self.wfile.write(b"x" * 100)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def truncating_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Truncating)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("cache", [True, False])
def test_partial_download_leaves_no_complete_looking_file(client, staging_config,
                                                          truncating_server, cache):
    url = f"{truncating_server}/big.bin"
    with dask.config.set({"daskflow.staging.cache.enabled": cache}):
        future = size_of(File(url))
    with pytest.raises(StagingError, match=f"could not stage in {url}"):
        future.result(timeout=60)
    left = [os.path.join(d, n) for d, _, names in os.walk(staging_config) for n in names
            if not n.endswith(".lock")]
    assert left == []  # no big.bin, no .part, no cache entry


# ------------------------------------------------------------------ stage out
def test_an_ftp_upload_creates_directories_and_leaves_no_temporary_name(client, staging_config,
                                                                          ftp_files):
    """(That an upload arrives, for every scheme: test_mover_contract.)"""
    directory, url = ftp_files
    to_ftp = write("to ftp", outputs=[File(f"{url}/deep/er/b.txt")])
    to_ftp.outputs[0].result(timeout=60)
    with open(os.path.join(directory, "deep", "er", "b.txt")) as fh:
        assert fh.read() == "to ftp"
    assert os.listdir(os.path.join(directory, "deep", "er")) == ["b.txt"]  # no .part left
    again = write("replaced", outputs=[File(f"{url}/deep/er/b.txt")])
    again.outputs[0].result(timeout=60)
    with open(os.path.join(directory, "deep", "er", "b.txt")) as fh:
        assert fh.read() == "replaced"


def test_a_failed_app_stages_nothing_out(client, staging_config, s3_bucket):
    fs, bucket = s3_bucket

    @bash_app
    def fails(outputs=()):
        return f"echo partial > {outputs[0]}; exit 3"

    @bash_app
    def forgets(outputs=()):
        return "true"

    f = fails(outputs=[File(f"s3://{bucket}/never.txt")])
    with pytest.raises(BashExitFailure):
        f.outputs[0].result(timeout=60)
    g = forgets(outputs=[File(f"s3://{bucket}/forgotten.txt")])
    with pytest.raises(MissingOutputs, match=f"s3://{bucket}/forgotten.txt"):
        g.result(timeout=60)
    assert fs.ls(bucket, refresh=True) == []


def test_upload_failure_names_the_output(client, staging_config):
    url = "s3://no-such-bucket-here/x.txt"
    with pytest.raises(StagingError) as info:
        write("x", outputs=[File(url)]).outputs[0].result(timeout=60)
    assert (info.value.url, info.value.direction) == (url, "out")
    assert "could not stage out s3://no-such-bucket-here/x.txt" in str(info.value)


# ------------------------------------------------------------------ the node cache
def test_a_file_read_by_many_tasks_is_fetched_once_per_node(client, staging_config,
                                                            http_files, http_requests):
    directory, url = http_files
    with open(os.path.join(directory, "shared.bin"), "wb") as fh:
        fh.write(os.urandom(200_000))
    futures = [size_of(File(f"{url}/shared.bin")) for _ in range(16)]
    assert client.gather(futures) == [200_000] * 16
    counts = http_requests(urlsplit(url).path + "/shared.bin")
    assert counts.get("GET") == 1, counts  # both worker processes share the node cache
    assert counts.get("HEAD", 0) <= 1, counts  # and trust its fingerprint for check-every


def test_a_changed_source_is_fetched_again(client, staging_config, http_files,
                                           http_requests):
    directory, url = http_files
    target = os.path.join(directory, "v.txt")
    with open(target, "w") as fh:
        fh.write("version 1")
    with dask.config.set({"daskflow.staging.cache.check-every": 0}):
        assert read(File(f"{url}/v.txt")).result(timeout=60)[0] == "version 1"
        assert read(File(f"{url}/v.txt")).result(timeout=60)[0] == "version 1"
        with open(target, "w") as fh:
            fh.write("version two")  # another size: another fingerprint
        assert read(File(f"{url}/v.txt")).result(timeout=60)[0] == "version two"
    counts = http_requests(urlsplit(url).path + "/v.txt")
    assert counts.get("GET") == 2 and counts.get("HEAD") == 3, counts


# ------------------------------------------------------------------ memo and provenance
def test_content_memo_uses_the_remote_fingerprint(client, staging_config, http_files):
    directory, url = http_files
    target = os.path.join(directory, "m.txt")
    with open(target, "w") as fh:
        fh.write("one")

    @python_app(cache="content")
    def stamp(f):
        return open(f).read(), uuid.uuid4().hex

    first = stamp(File(f"{url}/m.txt")).result(timeout=60)
    assert stamp(File(f"{url}/m.txt")).result(timeout=60) == first  # a memo hit
    with open(target, "w") as fh:
        fh.write("three")
    third = stamp(File(f"{url}/m.txt")).result(timeout=60)
    assert third[0] == "three" and third[1] != first[1]


def test_provenance_records_staged_files_by_url(client, staging_config, http_files,
                                                s3_bucket):
    from daskflow.client.session import session_of
    from daskflow.provenance.store import ProvenanceStore

    directory, url = http_files
    with open(os.path.join(directory, "p.txt"), "w") as fh:
        fh.write("12345")
    fs, bucket = s3_bucket

    @bash_app
    def copy(inputs=(), outputs=()):
        return f"cp {inputs[0]} {outputs[0]}"

    future = copy(inputs=[File(f"{url}/p.txt")], outputs=[File(f"s3://{bucket}/p.txt")])
    future.outputs[0].result(timeout=60)
    run_dir = session_of(client).run_dir
    rows = []

    def both_recorded():
        with ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True) as store:
            rows[:] = store.files(future.key)
        return len(rows) >= 2

    until(both_recorded, lambda: f"the staged files were not both recorded: {rows}", timeout=10,
          interval=0.3)
    facts = {(r["direction"], r["url"], r["size"]) for r in rows}
    assert facts == {("in", f"{url}/p.txt", 5), ("out", f"s3://{bucket}/p.txt", 5)}
