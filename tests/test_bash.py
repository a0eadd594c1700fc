"""bash apps: the function runs on the worker and returns a command line that
runs under bash there, with redirection, exit codes, walltime and errors."""

from __future__ import annotations

import os
import time

import pytest
from waiting import until

from daskflow import AppTimeout, BashExitFailure, File, bash_app, python_app
from daskflow.errors import BadCommand


@bash_app
def echo_hello(stdout="echo-hello.stdout", stderr="echo-hello.stderr"):
    return 'echo "Hello World!"'


@bash_app
def run(command, stdout=None, stderr=None):
    return command


def test_echo_hello_writes_stdout(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # workers share the driver's working directory here
    out, err = tmp_path / "o.txt", tmp_path / "e.txt"
    f = echo_hello(stdout=str(out), stderr=str(err))
    assert f.result() == 0
    assert out.read_text() == "Hello World!\n"
    assert err.read_text() == ""
    assert f.stdout == str(out) and f.stderr == str(err)


def test_signature_defaults_are_the_redirect_targets(client, tmp_path):
    @bash_app
    def hello(stdout=str(tmp_path / "default.out")):
        return "echo from-default"

    assert hello().result() == 0
    assert (tmp_path / "default.out").read_text() == "from-default\n"


def test_append_is_the_default_and_w_truncates(client, tmp_path):
    out = str(tmp_path / "log.txt")
    run("echo one", stdout=out).result()
    run("echo two", stdout=out).result()
    assert open(out).read() == "one\ntwo\n"
    run("echo three", stdout=(out, "w")).result()
    assert open(out).read() == "three\n"


def test_redirect_to_a_file_object_and_nested_directories(client, tmp_path):
    out = File(str(tmp_path / "deep" / "dir" / "out.txt"))
    run("echo x >&2; echo y", stdout=out, stderr=str(tmp_path / "deep" / "err.txt")).result()
    assert open(out).read() == "y\n"
    assert (tmp_path / "deep" / "err.txt").read_text() == "x\n"


def test_function_runs_on_the_worker(client):
    @python_app
    def worker_pids():
        return os.getpid()

    @bash_app
    def record(path):
        return f"echo {os.getpid()} > {path}"  # the f-string is evaluated where the function runs

    import tempfile
    path = tempfile.mktemp()
    record(path).result()
    pid = int(open(path).read())
    os.unlink(path)
    assert pid != os.getpid()
    assert pid in set(client.run(os.getpid).values())


def test_nonzero_exit_raises_bash_exit_failure(client, tmp_path):
    err = str(tmp_path / "err.txt")
    f = run("echo oops >&2; exit 3", stderr=err)
    with pytest.raises(BashExitFailure) as info:
        f.result()
    e = info.value
    assert (e.app_name, e.tid, e.exitcode, e.stderr) == ("run", f.tid, 3, err)
    assert f"bash app 'run' (tid {f.tid}) exited with code 3; stderr: {err}" == str(e)


def test_failure_quotes_stderr_when_not_redirected(client):
    with pytest.raises(BashExitFailure, match="code 127.*no-such-command"):
        run("no-such-command-xyz").result()


def test_large_unredirected_stderr_is_quoted_by_its_tail(client):
    with pytest.raises(BashExitFailure) as info:
        run("for i in $(seq 1 20000); do echo line$i >&2; done; exit 1").result()
    assert info.value.stderr.startswith("...") and info.value.stderr.endswith("line20000")
    assert len(info.value.stderr) < 2100


def test_walltime_kills_the_whole_process_group(client, tmp_path):
    pidfile = tmp_path / "child.pid"
    start = time.time()
    f = run(f"sleep 60 & echo $! > {pidfile}; wait", walltime=1)  # walltime at call time
    with pytest.raises(AppTimeout) as info:
        f.result(timeout=30)
    assert time.time() - start < 15
    assert info.value.walltime == 1 and info.value.app_name == "run"
    child = int(pidfile.read_text())
    until(lambda: not _alive(child), "the background child outlived the walltime", timeout=5,
          interval=0.1)


def test_walltime_from_the_decorator(client):
    @bash_app(walltime=0.5)
    def slow():
        return "sleep 30"

    with pytest.raises(AppTimeout, match="walltime of 0.5 s"):
        slow().result(timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_non_string_return_is_a_clear_error(client):
    @bash_app
    def broken():
        return ["echo", "hi"]

    with pytest.raises(BadCommand, match=r"bash app 'broken' \(tid \d+\) must return the "
                                         r"command line as a str.*list"):
        broken().result()


def test_exception_in_the_function_itself(client):
    @bash_app
    def raises():
        raise RuntimeError("no command for you")

    with pytest.raises(RuntimeError, match="no command for you"):
        raises().result()


def test_environment_names_app_and_tid(client, tmp_path):
    out = str(tmp_path / "env.txt")
    f = run('echo "$DASKFLOW_APP $DASKFLOW_TID"', stdout=out)
    f.result()
    assert open(out).read() == f"run {f.tid}\n"
