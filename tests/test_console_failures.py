"""Expected app failures are told once, briefly, on the driver's console:
one line per failed call naming the app, the task id and the error, no
worker tracebacks, no "Compute Failed", and never the call's arguments;
the tracebacks stay in provenance. A plain ``python script.py``."""

from __future__ import annotations

import json
import os
import sqlite3

from daskflow.failure_log import FailureLines

SIX_FAILURES = """\
import json, distributed, daskflow

@daskflow.python_app
def bad(i, password="hunter2-secret"):
    raise ValueError(f"bad {i}")

futures = [bad(i) for i in range(6)]
for f in futures:
    try:
        f.result()
    except ValueError:
        pass
client = distributed.default_client()
session = client._daskflow_session
run_dir = session.run_dir
keys = [f.key for f in futures]
client.close()
print("RESULT " + json.dumps({"run_dir": run_dir, "keys": keys}))
"""

FAILS_AT_CALL_TIME = """\
import threading, daskflow

@daskflow.python_app
def f(x):
    return 1

f(threading.Lock())  # cannot be pickled: raises here, in the driver
"""


def test_six_failures_six_short_lines_and_tracebacks_in_provenance(run_script):
    proc = run_script(SIX_FAILURES)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    lines = proc.stderr.splitlines()
    failed = [line for line in lines if "failed:" in line]
    assert sorted(failed) == sorted(
        [line for line in failed if "app 'bad' (tid " in line and "ValueError('bad " in line])
    assert len(failed) == 6, proc.stderr
    assert all(len(line) < 300 for line in failed)
    assert "Traceback" not in proc.stderr and "Compute Failed" not in proc.stderr
    assert "hunter2-secret" not in proc.stderr
    assert "Plugin call failed" not in proc.stderr
    with sqlite3.connect(os.path.join(out["run_dir"], "provenance.db")) as db:
        rows = db.execute("SELECT state, traceback FROM tasks").fetchall()
        status = db.execute("SELECT status FROM runs").fetchone()[0]
    assert len(rows) == 6 and all(state == "failed" for state, _ in rows)
    assert all("in bad" in traceback for _, traceback in rows)
    assert status == "failed"


def test_script_whose_only_call_fails_at_call_time_exits_cleanly(run_script):
    proc = run_script(FAILS_AT_CALL_TIME)
    assert proc.returncode == 1
    assert "UnpicklableArgument" in proc.stderr  # the user's error, as it should be
    assert "Plugin call failed" not in proc.stderr, proc.stderr[-3000:]
    assert "cannot schedule new futures" not in proc.stderr
    # the argument is named before distributed tries (and logs its own failure)
    assert "Failed to serialize" not in proc.stderr and proc.stderr.count("Traceback") == 1
    # nothing is logged at exit, after the user's error
    assert proc.stderr.rstrip().splitlines()[-1].startswith("daskflow.errors.UnpicklableArgument")


def test_console_lines_stop_after_the_limit_and_say_where_the_rest_are(caplog):
    """A pool that cannot start fails all its waiting calls at once: the
    console shows the first ones, then one line, not thousands."""
    lines = FailureLines(limit=3)
    with caplog.at_level("WARNING", logger="daskflow"):
        for i in range(10):
            lines((0.0, {"app": "a", "tid": str(i), "error": "RuntimeError('x\n  y')"}))
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:3] == [f"app 'a' (tid {i}) failed: RuntimeError('x y')" for i in range(3)]
    assert len(messages) == 4 and "daskflow tasks latest --state failed" in messages[3]
