"""A call whose worker died says so, truthfully: its future raises
``WorkerLost`` (a ``KilledWorker``) naming the app, the task id, the worker
and why it was lost, and provenance records the same; its dependents name
it. Real worker processes: one exits in the app (``os._exit(1)``), one is
stopped by its Nanny for using more than 95% of its 300 MB."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = """\
import json, os, time, dask, distributed, daskflow
from distributed.scheduler import KilledWorker
from daskflow import python_app

dask.config.set({"distributed.scheduler.allowed-failures": 0})  # one death fails a task

@python_app
def crash():
    os._exit(1)

@python_app
def hog():
    import numpy as np
    blocks = []
    while True:  # past 95% of the worker's limit, its Nanny stops it
        blocks.append(np.ones(10_000_000 // 8))
        time.sleep(0.01)

@python_app
def after(x):
    return x

client = daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0",
                         memory_limit="300MB")
out = {"run_dir": client._daskflow_session.run_dir if hasattr(client, "_daskflow_session")
       else None}
for name, app in (("crash", crash), ("hog", hog)):
    f = app()
    g = after(f)
    try:
        f.result(timeout=90)
    except KilledWorker as e:
        out[name] = {"type": type(e).__name__, "text": str(e), "key": f.key, "tid": f.tid,
                     "is_daskflow": isinstance(e, daskflow.WorkerLost)}
    try:
        g.result(timeout=90)
    except Exception as e:
        out[name + "_after"] = {"type": type(e).__name__, "text": str(e), "key": g.key}
out["run_dir"] = client._daskflow_session.run_dir
client.close()
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lost")
    script = tmp / "lost.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp, env=env, timeout=240)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the script did not finish:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    out = json.loads(lines[0][len("RESULT "):])
    with sqlite3.connect(os.path.join(out["run_dir"], "provenance.db")) as db:
        out["rows"] = {k: (s, e) for k, s, e in db.execute("SELECT key, state, exception "
                                                          "FROM tasks")}
        out["status"] = db.execute("SELECT status FROM runs").fetchone()[0]
    out["stderr"] = proc.stderr
    return out


def test_worker_that_exited_is_named_with_its_exit_status(outcome):
    crash = outcome["crash"]
    assert crash["type"] == "WorkerLost" and crash["is_daskflow"]
    assert f"app 'crash' (tid {crash['tid']})" in crash["text"]
    assert "was lost (process exited with status 1)" in crash["text"]
    state, exception = outcome["rows"][crash["key"]]
    assert state == "failed"
    assert exception.startswith("WorkerLost: worker tcp://")
    assert exception.endswith("was lost (process exited with status 1)")
    after = outcome["crash_after"]
    assert after["type"] == "DependencyError" and "'crash'" in after["text"]
    assert "process exited with status 1" in after["text"]
    assert outcome["rows"][after["key"]] == ("failed", f"dependency crash tid {crash['tid']} failed")


def test_worker_stopped_for_memory_says_so(outcome):
    hog = outcome["hog"]
    assert hog["type"] == "WorkerLost"
    assert f"app 'hog' (tid {hog['tid']})" in hog["text"]
    assert "killed by the nanny: memory use reached" in hog["text"]
    assert "limit" in hog["text"]
    state, exception = outcome["rows"][hog["key"]]
    assert state == "failed" and "killed by the nanny: memory use reached" in exception
    assert "% of its 286.10 MiB limit" in exception


def test_run_with_failed_calls_ends_failed_and_the_console_says_why(outcome):
    assert outcome["status"] == "failed"
    lines = [line for line in outcome["stderr"].splitlines() if "WARNING - app '" in line]
    assert any("app 'crash'" in line and "process exited with status 1" in line
               for line in lines), outcome["stderr"][-3000:]
    assert any("app 'hog'" in line and "memory use reached" in line for line in lines)


def test_a_cause_that_arrives_after_the_question_is_waited_for_once():
    """The race: the scheduler removes the worker before the Nanny's event
    arrives. The question waits for it; about a worker whose cause never
    comes, only the first question waits."""
    import asyncio
    import time
    from types import SimpleNamespace

    from daskflow.worker_fates import EXIT_TOPIC, MEMORY_TOPIC, WorkerFates

    async def scenario():
        fates = WorkerFates()
        scheduler = SimpleNamespace(handlers={}, workers={
            "tcp://w:1": SimpleNamespace(memory_limit=1000, nanny=None)})
        await fates.start(scheduler)
        learnt = []
        fates.listen(lambda worker, cause: learnt.append((worker, cause)))
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, fates.log_event, MEMORY_TOPIC, {"worker": "tcp://w:1", "rss": 960})
        loop.call_later(0.3, fates.log_event, EXIT_TOPIC, {"worker": "tcp://w:1",
                                                           "exitcode": -15})
        text = await scheduler.handlers["daskflow_worker_fate"](worker="tcp://w:1", wait=10)
        assert text == ("worker tcp://w:1 was lost (killed by the nanny: memory use reached "
                        "96% of its 0.98 kiB limit)")
        start = time.monotonic()
        first = await fates.fate("tcp://w:2", wait=0.3)
        second = await fates.fate("tcp://w:2", wait=5)
        assert time.monotonic() - start < 3
        assert first == second == "worker tcp://w:2 was lost (cause unknown: see the worker log)"
        fates.log_event(EXIT_TOPIC, {"worker": "tcp://w:2", "exitcode": 1})
        assert learnt[-1] == ("tcp://w:2", "process exited with status 1")
        assert await fates.fate("tcp://w:2") == \
            "worker tcp://w:2 was lost (process exited with status 1)"
        # w:1's exit event came after its memory event: the memory cause stays
        assert fates.known("tcp://w:1").startswith("killed by the nanny")

    asyncio.run(scenario())
