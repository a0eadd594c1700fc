"""``daskflow run``: live progress, the summary table, the run id, exit codes."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HEADER = (
    "import sys, time, dask\n"
    "dask.config.set({'daskflow.local.dashboard-address': ':0', 'daskflow.local.n-workers': 2})\n"
    "import daskflow\n"
    "from daskflow import python_app\n"
    "@python_app\n"
    "def square(x):\n"
    "    import time\n"
    "    time.sleep(0.05)\n"
    "    return x * x\n"
    "@python_app\n"
    "def fails(i):\n"
    "    raise ValueError(f'broken {i}')\n"
    "@python_app\n"
    "def nap(s):\n"
    "    import time\n"
    "    time.sleep(s)\n"
    "    return s\n"
)


def _script(body: str) -> str:
    """The header's apps, then ``body`` under the main guard (workers spawn)."""
    return HEADER + "if __name__ == '__main__':\n" + "".join(
        f"    {line}\n" for line in body.splitlines())


def _run(tmp_path, body: str, *args: str, timeout: float = 120):
    script = tmp_path / "wf.py"
    script.write_text(_script(body))
    env = dict(os.environ, PYTHONPATH=ROOT, COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "daskflow.cli", "run", *args, str(script)],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)


def _summary(stderr: str) -> dict[str, list[str]]:
    """The summary table's rows: app -> [tasks, done, failed, cached, unfinished, time]
    (piped: columns separated by blanks, no box)."""
    rows = {}
    for line in stderr.split("Summary of run", 1)[1].splitlines():
        cells = line.split()
        if len(cells) == 7 and cells[0] != "app":
            rows[cells[0]] = cells[1:]
    return rows


def _run_id(stderr: str) -> tuple[str, str]:
    match = re.search(r"details: daskflow show (\d+) --dir (\S+)", stderr)
    assert match, stderr
    return match.group(1), match.group(2)


def test_a_successful_run_prints_a_summary_and_its_run_id(tmp_path):
    proc = _run(tmp_path, "print('SUM', sum(daskflow.gather(square.map(range(12)))))\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "SUM 506\n"  # the script's stdout is its own
    rows = _summary(proc.stderr)
    assert rows["square"][:5] == ["12", "12", "0", "0", "0"]
    assert rows["all"][:5] == ["12", "12", "0", "0", "0"]
    assert re.fullmatch(r"\d+(\.\d+)?(ms|s)", rows["square"][5])
    run_id, base = _run_id(proc.stderr)
    shown = subprocess.run([sys.executable, "-m", "daskflow.cli", "show", run_id, "--dir", base],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=ROOT))
    assert shown.returncode == 0 and f"run {run_id}" in shown.stdout
    assert re.search(r"square\s+12\s+0\s+0\s+12", shown.stdout), shown.stdout


def test_a_failed_task_fails_the_run_even_when_the_script_catches_it(tmp_path):
    proc = _run(tmp_path,
                "fs = [fails(i) for i in range(2)]\n"
                "print('OK', square(3).result(), [type(f.exception()).__name__ for f in fs])\n")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "OK 9 ['ValueError', 'ValueError']\n"
    rows = _summary(proc.stderr)
    assert rows["fails"][:5] == ["2", "0", "2", "0", "0"] and rows["square"][:3] == ["1", "1", "0"]


def test_a_script_that_raises_exits_1_after_its_summary(tmp_path):
    proc = _run(tmp_path, "square(2).result()\nraise RuntimeError('workflow broke')\n")
    assert proc.returncode == 1
    assert "RuntimeError: workflow broke" in proc.stderr
    assert _summary(proc.stderr)["square"][:2] == ["1", "1"]


def test_the_script_exit_code_wins(tmp_path):
    proc = _run(tmp_path, "square(2).result()\nsys.exit(3)\n")
    assert proc.returncode == 3 and _summary(proc.stderr)["square"][:2] == ["1", "1"]


def test_tasks_left_unfinished_fail_the_run(tmp_path):
    proc = _run(tmp_path, "square(2).result()\nnap(30)\nprint('left')\n")
    assert proc.returncode == 1, proc.stderr
    assert _summary(proc.stderr)["nap"][:5] == ["1", "0", "0", "0", "1"]


def test_a_script_that_closes_its_own_cluster_is_summarised_from_its_record(tmp_path):
    proc = _run(tmp_path,
                "with daskflow.Client(n_workers=1, dashboard_address=':0') as c:\n"
                "    print(sum(daskflow.gather([square(i) for i in range(4)])))\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "14\n"
    assert _summary(proc.stderr)["square"][:5] == ["4", "4", "0", "0", "0"]


def test_a_script_without_apps(tmp_path):
    proc = _run(tmp_path, "print('nothing to do')\n")
    assert proc.returncode == 0 and proc.stdout == "nothing to do\n"
    assert "started no daskflow run" in proc.stderr


def _in_a_terminal(tmp_path, body: str, *args: str, timeout: float = 120) -> tuple[int, str]:
    """Run in a pseudo-terminal (rich draws live only there); the raw output."""
    import pty

    script = tmp_path / "wf.py"
    script.write_text(_script(body))
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "daskflow.cli", "run", *args, str(script)],
                            stdin=child, stdout=child, stderr=child, cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=ROOT, COLUMNS="120", LINES="40",
                                     TERM="xterm"))
    os.close(child)
    out = b""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))



@pytest.mark.slow
def test_live_progress_in_a_terminal(tmp_path):
    body = ("fs = [nap(0.3) for _ in range(12)]\n"
            "print('NAPS', len(daskflow.gather(fs)))\n")
    code, out = _in_a_terminal(tmp_path, body)
    assert code == 0, out
    frames = re.findall(r"nap\s+\S*\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out)
    done = [int(f[0]) for f in frames]
    assert any(0 < d < 12 for d in done), out  # seen part way through
    assert "daskflow run" in out and "NAPS 12" in out
    assert "Summary of run" in out
    code, out = _in_a_terminal(tmp_path, body, "--no-progress")
    assert code == 0
    assert not re.findall(r"nap\s+\S*━", out) and "Summary of run" in out
