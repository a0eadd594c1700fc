"""The listing tables of the CLI (daskflow.cli.tables): alignment, missing
values, long values kept whole, plain when piped, the same in chunks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from daskflow.cli import tables as cli_tables
from daskflow.cli.tables import listing, listing_lines
from daskflow.provenance.store import DB_NAME, ProvenanceStore, new_run_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = ["app", "key", "size", "n"]
ROWS = [["fib", "k1", "1.5 KiB", 3], ["simulate", None, "10 B", None], ["x", "k[bold]2[/]", "", 12]]


def test_alignment_and_missing_values():
    lines = listing(COLUMNS, ROWS, right=["size"]).splitlines()
    assert lines == ["app       key             size   n",
                     "fib       k1           1.5 KiB   3",
                     "simulate  -               10 B   -",
                     "x         k[bold]2[/]           12"]  # no markup, no trailing blanks


def test_a_long_value_is_neither_cut_nor_folded():
    url = "s3://bucket/" + "/".join(["a-long-directory-name"] * 10) + "/result.pickle"
    text = listing(["app", "url", "size"], [["fib", url, 1], ["sim", "line\nbreak", 22]])
    lines = text.splitlines()
    assert len(lines) == 3 and lines[1].split() == ["fib", url, "1"]
    assert lines[2].split() == ["sim", "line", "break", "22"]  # one line per row


def test_total_title_and_chunks(monkeypatch):
    rows = [[f"app{i}", i, f"{i}.0s"] for i in range(7)]
    kw = dict(right=["time"], total=["all", 21, "21.0s"], title="Summary of run 003")
    whole = listing(["app", "tasks", "time"], rows, **kw).splitlines()
    assert whole[0] == "Summary of run 003" and whole[1].split() == ["app", "tasks", "time"]
    assert whole[-1].split() == ["all", "21", "21.0s"] and len(whole) == 2 + 7 + 1
    monkeypatch.setattr(cli_tables, "CHUNK", 3)
    assert listing(["app", "tasks", "time"], rows, **kw).splitlines() == whole
    assert listing(["app", "tasks", "time"], [], right=["time"]) == "app  tasks  time"


def test_terminal_style():
    lines = list(listing_lines(COLUMNS, ROWS, right=["size"], terminal=True))
    assert "\x1b[1m" in lines[0] and set(lines[1]) == {"─"}  # bold header, then a rule
    assert lines[2].split() == ["fib", "k1", "1.5", "KiB", "3"]


def test_bad_calls_name_the_problem():
    with pytest.raises(ValueError, match=r"right=\['sise'\] names no column"):
        listing(COLUMNS, ROWS, right=["sise"])
    with pytest.raises(ValueError, match="a row has not the 4 values"):
        listing(COLUMNS, [["fib", "k1"]])


def test_piped_listing_is_wider_than_the_terminal(tmp_path):
    """``daskflow tasks`` through a pipe, with COLUMNS=40: long values stay whole."""
    base = str(tmp_path / "runinfo")
    run_id, path = new_run_dir(base)
    worker = "tcp://" + "a-very-long-worker-host-name." * 5 + "example.org:40123"
    with ProvenanceStore(os.path.join(path, DB_NAME)) as store:
        store.start_run({"run_id": run_id, "script": "wf.py", "user": "u", "host": "h", "start": 1.0})
        store.record({"tasks": [{"key": f"fetch-{i}-tok", "tid": str(i), "app": "fetch",
                                 "submitted": 1.0} for i in range(2)],
                      "updates": [{"key": f"fetch-{i}-tok", "state": "done", "started": 2.0,
                                   "finished": 3.5, "worker": worker} for i in range(2)]})
        store.end_run(run_id, 4.0, "completed")
    proc = subprocess.run([sys.executable, "-m", "daskflow.cli", "tasks", "--dir", base],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=ROOT, COLUMNS="40", TERM="xterm"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "\x1b" not in proc.stdout and "─" not in proc.stdout
    assert lines[0].split() == ["tid", "app", "state", "duration", "cpu_user", "cpu_sys",
                                "peak_mem", "read", "written", "tries", "worker", "exception"]
    unmeasured = ["-"] * 5
    assert [line.split() for line in lines[1:]] == [
        ["0", "fetch", "done", "1.50s", *unmeasured, "-", worker],
        ["1", "fetch", "done", "1.50s", *unmeasured, "-", worker]]
