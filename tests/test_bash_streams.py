"""Bash apps' streams and failures as Parsl defines them: ``AUTO_LOGNAME``
(a log file named per call), streams that cannot be used (``BadStdStream``,
Parsl's ``BadStdStreamFile``), and, through ``parsl.load``, the
configuration's ``std_autopath``, ``retries`` and ``retry_handler``, and the
future's ``task_record``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import bash_app
from daskflow.client.session import session_of
from daskflow.errors import BadStdStream
from daskflow.parsl.app.errors import BadStdStreamFile
from daskflow.worker.bash import AUTO_LOGNAME

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@bash_app
def greet(who, stdout=AUTO_LOGNAME, stderr=None, label=None):
    return f"echo hello {who}; echo to-err >&2"


def test_auto_logname_names_a_log_file_per_call_in_the_run_directory(client):
    run_dir = session_of(client).run_dir
    f = greet("you", label="lab")
    g = greet("me", stderr=AUTO_LOGNAME)
    assert f.result() == 0 and g.result() == 0
    assert f.stdout == os.path.join(run_dir, "task_logs", "0000",
                                    f"task_{str(f.tid).zfill(4)}_greet_lab.stdout")
    assert Path(f.stdout).read_text() == "hello you\n"
    assert re.fullmatch(r".*/task_logs/0000/task_\d{4,}_greet\.stdout", g.stdout)
    assert g.stderr == g.stdout[:-len("stdout")] + "stderr"
    assert (Path(g.stdout).read_text(), Path(g.stderr).read_text()) == ("hello me\n",
                                                                        "to-err\n")


def test_auto_logname_in_map_names_each_call(client):
    futures = greet.map(["a", "b", "c"], chunksize=2)
    assert [f.result() for f in futures] == [0, 0, 0]
    assert len({f.stdout for f in futures}) == 3
    assert [Path(f.stdout).read_text() for f in futures] == ["hello a\n", "hello b\n",
                                                             "hello c\n"]


def test_a_generated_name_is_not_part_of_the_cache_key():
    @bash_app(cache=True)
    def cached(x, stdout=AUTO_LOGNAME):
        return "true"

    assert cached.ignore_for_cache == ["stdout"]
    assert cached.definition.ignore_for_cache == ("stdout",)


def test_a_stream_that_cannot_be_opened_fails_the_call_naming_it(client, tmp_path):
    @bash_app
    def run(stdout=None, stderr=None):
        return "echo never"

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = str(blocker / "out.txt")  # a directory that is a file: even root cannot
    f = run(stderr=bad)
    with pytest.raises(BadStdStreamFile) as info:  # Parsl's name for daskflow's error
        f.result()
    e = info.value
    assert isinstance(e, BadStdStream)
    assert (e.app_name, e.tid, e.stream, e.target) == ("run", f.tid, "stderr", repr(bad))
    assert str(e).startswith(f"bash app 'run' (tid {f.tid}): stderr={bad!r} cannot be used: "
                             "FileExistsError: ")
    with pytest.raises(BadStdStream, match="stdout="):
        run(stdout=(bad, "w")).result()


def test_daskflow_apps_still_refuse_malformed_streams_at_the_call(client):
    with pytest.raises(ValueError, match=r"\(path, mode\)"):
        greet("x", stdout=("x.txt", "badmode"))
    with pytest.raises(TypeError, match="must be a path"):
        greet("x", stdout=(42, "w"))


PARSL_SCRIPT = r'''
import os
from functools import partial

import daskflow.parsl
daskflow.parsl.install()
import parsl
from parsl import AUTO_LOGNAME, Config, bash_app, python_app
from parsl.app.errors import BadStdStreamFile, BashExitFailure


@bash_app
def foo(x, stdout=None, label=None):
    return f"echo {x}"


@bash_app
def auto(stdout=AUTO_LOGNAME):
    return "echo hello"


@bash_app
def succeed_on_retry(filename, success_on=1, stdout="succeed.out"):
    return f"""tries=$(cat {filename} 2>/dev/null | wc -l); echo $tries >> {filename}
    [[ $tries -eq {success_on} ]] || exit 5"""


@python_app
def always_fails():
    raise ValueError("the app's own error")


def const(path, task_record, stream):
    return path


def half(exc, task_record):
    return 0.5


def raises(exc, task_record):
    raise RuntimeError(f"handler: {task_record['func_name']} failed {task_record['fail_count']}")


def refuses(task_record, stream):
    raise LookupError(f"no name for {task_record['func_name']} {stream}")


here = os.getcwd()
with parsl.load(Config(retries=2, retry_handler=half, run_dir="runs")) as dfk:
    f = foo(7, stdout=AUTO_LOGNAME, label="lab")
    assert f.result() == 0
    print("AUTO", os.path.relpath(f.stdout), open(f.stdout).read().strip())
    record = f.task_record
    print("RECORD", record["id"] == f.tid, record["func_name"], record["func"].__name__)
    for spec in (("t8.out", "badmode"), ["t3.out", "w"], ("t7.out",)):
        bad = foo(1, stdout=spec)  # Parsl: the call returns; its future fails
        try:
            bad.result()
        except BadStdStreamFile as e:
            print("BAD", e.stream, type(e).__name__)
    succeed_on_retry(os.path.join(here, "four"), success_on=4).result()  # 4 failures: 2.0
    five = succeed_on_retry(os.path.join(here, "five"), success_on=5)
    try:
        five.result()
    except BashExitFailure as e:
        print("RETRIES", e.exitcode, len(open("five").readlines()))

with parsl.load(Config(std_autopath=partial(const, os.path.join(here, "CONST")),
                       retry_handler=raises)):
    g = auto()
    print("CONST", g.stdout == os.path.join(here, "CONST"), g.result(), open("CONST").read())
    h = always_fails()
    e = h.exception()
    print("HANDLER", type(e).__name__, e.args[0], "|", repr(e.__cause__))

with parsl.load(Config(std_autopath=refuses)):
    try:
        auto()
    except LookupError as e:
        print("AT CALL", e)
'''


def test_a_parsl_configuration_names_streams_and_prices_failures(tmp_path):
    """One Parsl script (a fresh interpreter: parsl.load is process-wide)."""
    (tmp_path / "script.py").write_text(PARSL_SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "AUTO runs/000/task_logs/0000/task_0000_foo_lab.stdout 7" in lines
    assert "RECORD True foo foo" in lines
    assert [line for line in lines if line.startswith("BAD")] == ["BAD stdout BadStdStream"] * 3
    assert "RETRIES 5 5" in lines  # five tries: the 5th failure costs 2.5 > retries=2
    assert "CONST True 0 hello" in lines
    assert ("HANDLER RuntimeError handler: always_fails failed 1 | "
            "ValueError(\"the app's own error\")") in lines
    assert lines[-1] == "AT CALL no name for auto stdout", lines
