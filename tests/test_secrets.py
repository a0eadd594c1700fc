"""A real run with secrets in URLs and arguments: none of them is stored or
shown in clear (provenance.db, the staging cache, the Workflow page,
``daskflow show``, a script's output), and run files are private."""

from __future__ import annotations

import glob
import os
import stat

from click.testing import CliRunner
import dask
import pytest

import daskflow
from daskflow import File, python_app
from daskflow.cli.main import main
from daskflow.dashboard.page import SchedulerRuns, WorkflowPage
from daskflow.provenance.store import ProvenanceStore, find_run

pytest_plugins = ("staging_servers",)  # http_files

PW, SIG, ARG = "PW-s3cr3t-1", "SIG-s3cr3t-2", "ARG-s3cr3t-3"
SECRETS = (PW.encode(), SIG.encode(), ARG.encode())


@python_app
def read_text(f):
    return open(f).read()


@python_app
def login(user, password=None):
    return user


@python_app
def leak(url):
    raise RuntimeError(f"cannot use {url}")


def _secret_free(path: str) -> list[str]:
    """Files under ``path`` (or ``path`` itself) whose bytes hold a secret."""
    found = []
    paths = [path] if os.path.isfile(path) else [
        os.path.join(d, n) for d, _, names in os.walk(path) for n in names]
    for p in paths:
        with open(p, "rb") as fh:
            data = fh.read()
        found += [f"{p}: {s!r}" for s in SECRETS if s in data]
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory, http_files_module):
    local, base = http_files_module
    with open(os.path.join(local, "in.txt"), "w") as fh:
        fh.write("hello")
    tmp = tmp_path_factory.mktemp("secrets")
    signed = base.replace("http://", f"http://alice:{PW}@")
    out: dict = {"tmp": tmp}
    with dask.config.set({"daskflow.run-dir": str(tmp / "runinfo"),
                          "daskflow.staging.dir": str(tmp / "staging"),
                          "daskflow.staging.retry.attempts": 1}):
        with daskflow.Client(n_workers=1, threads_per_worker=2, dashboard_address=":0") as c, \
                c.as_current():
            fs = [read_text(File(f"{signed}/in.txt?X-Amz-Signature={SIG}&v=1")),
                  read_text(File(f"{signed}/missing.txt?sig={SIG}")),
                  login("alice", password=ARG), login("alice", password=ARG),
                  login("bob", password="other"),
                  leak(f"https://bob:{PW}@example.org/x?token={SIG}")]
            for f in fs:
                f.exception()
            out["results"] = [f.exception() or f.result() for f in fs]
            session = daskflow.client.session.session_of(c)
            snap = c.sync(c.scheduler.daskflow_workflow, run_id=session.token, settle=True)
            out["snapshot"] = snap
            scheduler = c.cluster.scheduler

            async def draw():
                page = WorkflowPage(SchedulerRuns(scheduler))
                page.update()  # follows the newest live run: this one
                return page

            page = c.sync(draw)
            assert page.shown[0] == session.token
            out["page"] = repr(page.fail_source.data) + page.header.text + page.counts.text
            out["run_dir"] = run_dir = find_run(str(tmp / "runinfo"), "latest")
            db = os.path.join(run_dir, "provenance.db")
            out["modes"] = {name: stat.S_IMODE(os.stat(p).st_mode)
                            for name, p in (("base", str(tmp / "runinfo")), ("run", run_dir),
                                            ("db", db), ("wal", db + "-wal"),
                                            ("shm", db + "-shm"))
                            if os.path.exists(p)}
    return out


@pytest.fixture(scope="module")
def http_files_module():
    from staging_servers import HTTP, HTTP_PORT, _served_dir

    return _served_dir("http", HTTP_PORT, HTTP)


def test_the_run_worked_and_failed_where_it_should(run):
    results = run["results"]
    assert results[0] == "hello" and results[2] == "alice"
    assert "404" in str(results[1]) and "***" in str(results[1])
    # (the exception of leak() is the user's own, as raised: only records are redacted)
    assert all(PW not in str(r) and SIG not in str(r) for r in results[:5])


def test_no_secret_in_the_run_directory_or_the_staging_cache(run):
    assert _secret_free(run["run_dir"]) == []
    assert _secret_free(str(run["tmp"] / "staging")) == []
    records = glob.glob(str(run["tmp"] / "staging" / "cache" / "urls" / "*.json"))
    assert records and all("alice:***@" in open(r).read() for r in records)


def test_provenance_keeps_redacted_urls_and_argument_digests(run):
    with ProvenanceStore(os.path.join(run["run_dir"], "provenance.db"), readonly=True) as store:
        files = store.files()
        tasks = {t["tid"]: t for t in store.tasks()}
    assert any(f["url"].startswith("http://alice:***@127.0.0.1:")
               and f["url"].endswith("/in.txt?X-Amz-Signature=***&v=1") for f in files), files
    digests = [tasks[t]["args"] for t in ("2", "3", "4")]  # task ids count from 0
    assert all(d.startswith("hmac-sha256:") for d in digests)
    assert digests[0] == digests[1] != digests[2]  # identical calls can still be told
    assert "***" in tasks["1"]["exception"] and "***" in tasks["5"]["exception"]


def test_the_workflow_page_shows_no_secret(run):
    snap = repr(run["snapshot"])
    assert run["snapshot"]["n_failed"] == 2 and "***" in snap
    assert PW not in snap and SIG not in snap and ARG not in snap
    assert PW not in run["page"] and SIG not in run["page"] and "***" in run["page"]


def test_daskflow_show_shows_digests_and_no_secret(run):
    base = str(run["tmp"] / "runinfo")
    for command in (["show", "--dir", base], ["tasks", "--dir", base],
                    ["graph", "--dir", base, "--format", "json"],
                    ["graph", "--dir", base, "--format", "prov"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 0, result.output
        assert PW not in result.output and SIG not in result.output and ARG not in result.output
    shown = CliRunner().invoke(main, ["show", "--dir", base]).output
    assert "arguments: hmac-sha256:" in shown and "alice:***@" in shown


def test_run_files_are_private(run):
    modes = run["modes"]
    assert modes["base"] == 0o700 and modes["run"] == 0o700 and modes["db"] == 0o600
    assert all(modes[k] == 0o600 for k in ("wal", "shm") if k in modes), modes


def test_arguments_are_recorded_as_text_when_asked(tmp_path):
    with dask.config.set({"daskflow.run-dir": str(tmp_path / "runinfo"),
                          "daskflow.provenance.record-arguments": True}):
        with daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0") as c, \
                c.as_current():
            assert login("carol", password="visible").result() == "carol"
        run_dir = find_run(str(tmp_path / "runinfo"), "latest")
    with ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True) as store:
        (task,) = store.tasks()
    assert task["args"] == "(('carol',), {'password': 'visible'})"


def test_a_plain_script_prints_and_logs_no_secret(run_script, tmp_path, http_files):
    """Worker logs (a retry of a refused connection) and the traceback the
    script dies with name the URL redacted."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_script(f"""
import dask, daskflow
from daskflow import File, python_app
dask.config.set({{"daskflow.staging.dir": {str(tmp_path / 'staging')!r},
                  "daskflow.staging.retry.attempts": 2, "daskflow.staging.retry.backoff": 0.05}})

@python_app
def read_text(f):
    return open(f).read()

url = "http://alice:{PW}@127.0.0.1:{port}/x.csv?sig={SIG}"
print(read_text(File(url)).result())  # the traceback quotes this line, not the one above
""")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "StagingError" in output, output[-2000:]
    assert "ConnectionError" in output and "alice:***@127.0.0.1" in output
    assert "try 2 of 2" in output  # the retry was logged (redacted)
    assert PW not in output and SIG not in output, output[-2000:]
