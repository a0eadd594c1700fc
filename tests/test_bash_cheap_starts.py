"""What a bash call's cheap start keeps (daskflow.worker.bash): a failure
quotes only its own stderr, even when a process of an earlier call left its
session and writes later; stdin is /dev/null; no descriptor leaks; a
walltime (waited for on a pidfd) does not change exit codes."""

from __future__ import annotations

import os

import pytest
from waiting import until

from daskflow import bash_app
from daskflow.errors import AppTimeout, BashExitFailure
from daskflow.worker.bash import run_command


@bash_app
def run(command):
    return command


def _failure(command: str, walltime=None) -> BashExitFailure:
    with pytest.raises(BashExitFailure) as info:
        run_command(command, "run", 1, None, None, walltime)
    return info.value


def test_each_failure_quotes_its_own_stderr_only(client):
    noisy = run.map([f"echo noise-{i} >&2; seq 1 500 >&2" for i in range(12)])
    assert client.gather(noisy) == [0] * 12
    failing = [run(f"echo mine-{i} >&2; exit 1") for i in range(6)]
    for i, f in enumerate(failing):
        with pytest.raises(BashExitFailure) as info:
            f.result()
        assert info.value.stderr == f"mine-{i}"


def test_a_process_that_left_the_session_writes_into_no_later_call(tmp_path):
    mark = {name: tmp_path / name for name in ("ready", "released", "wrote", "go", "done")}
    wait = "until [ -e {} ]; do sleep 0.01; done".format
    stray = (f"touch {mark['ready']}; {wait(mark['released'])}; echo STRAY1 >&2; "
             f"touch {mark['wrote']}; {wait(mark['go'])}; echo STRAY2 >&2; touch {mark['done']}")
    # the call ends once its straying process is in a session of its own
    run_command(f"setsid bash -c '{stray}' & {wait(mark['ready'])}", "run", 1, None, None, None)
    mark["released"].touch()
    until(mark["wrote"].exists, "the process in its own session never wrote", timeout=10)
    # it writes again while the next call runs: into the old file, not the call's
    later = f"touch {mark['go']}; {wait(mark['done'])}; echo mine >&2; exit 2"
    assert _failure(later).stderr == "mine"


def test_stdin_is_empty_and_no_descriptor_leaks():
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        run_command("if read -r line; then exit 9; fi", "run", 1, None, None, None)
        assert _failure("echo x >&2; exit 3").exitcode == 3
        assert _failure("exit 4", walltime=30).stderr == "(empty)"
    assert len(os.listdir("/proc/self/fd")) - before <= 1  # the /dev/null kept open


def test_a_walltime_keeps_exit_codes_and_stops_at_its_time():
    assert run_command("exit 0", "run", 1, None, None, 30) == 0
    assert _failure("exit 5", walltime=30).exitcode == 5
    with pytest.raises(AppTimeout):
        run_command("sleep 30", "run", 1, None, None, 0.2)
