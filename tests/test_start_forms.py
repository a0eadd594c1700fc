"""One workflow, every way a user starts Python: the embedded default's
workers never import the driver's ``__main__``, so a script without a
``__main__`` guard (as Parsl users write them) works like one with it.

Each form runs in a fresh interpreter with real worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKFLOW = """\
import os
from daskflow import bash_app, python_app

@python_app
def square(x):
    return x * x

@python_app
def total(xs):
    return sum(xs)

@bash_app
def shout(word, stdout=None):
    return f"echo {word}"

squares = [square(i) for i in range(5)]
code = shout("hello", stdout=os.path.join(os.getcwd(), "shout.out")).result()
print("RESULT", total(squares).result(), code, open("shout.out").read().strip())
"""
EXPECTED = "RESULT 30 0 hello"
NOISE = ("Traceback", "bootstrapping phase", "Error", "leaked")


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=ROOT, DASK_DASKFLOW__LOCAL__N_WORKERS="2",
                DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0")


def _run(args, tmp_path, stdin: str | None = None, timeout: float = 120):
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, cwd=tmp_path,
                          env=_env(), timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    assert EXPECTED in proc.stdout.splitlines(), (proc.stdout, proc.stderr)
    for word in NOISE:
        assert word not in proc.stderr, proc.stderr
    return proc


def test_a_script_without_a_main_guard(tmp_path):
    (tmp_path / "wf.py").write_text(WORKFLOW)
    _run([sys.executable, "wf.py"], tmp_path)


@pytest.mark.slow
def test_a_script_with_a_main_guard(tmp_path):
    guarded = "def main():\n" + "".join(f"    {line}\n" for line in WORKFLOW.splitlines())
    (tmp_path / "wf.py").write_text(guarded + "\nif __name__ == '__main__':\n    main()\n")
    _run([sys.executable, "wf.py"], tmp_path)


@pytest.mark.slow
def test_python_dash_c(tmp_path):
    _run([sys.executable, "-c", WORKFLOW], tmp_path)


@pytest.mark.slow
def test_python_reading_the_script_on_stdin(tmp_path):
    _run([sys.executable, "-"], tmp_path, stdin=WORKFLOW)


@pytest.mark.slow
def test_python_dash_m_package_module(tmp_path):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "wf.py").write_text(WORKFLOW)
    _run([sys.executable, "-m", "mypkg.wf"], tmp_path)


@pytest.mark.slow
def test_daskflow_run(tmp_path):
    (tmp_path / "wf.py").write_text(WORKFLOW)
    daskflow = os.path.join(os.path.dirname(sys.executable), "daskflow")
    _run([daskflow, "run", "wf.py"], tmp_path)


@pytest.mark.slow
def test_ipython(tmp_path):
    pytest.importorskip("IPython")
    _run([sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=NoColor",
          "-c", WORKFLOW], tmp_path)


@pytest.mark.slow
def test_a_jupyter_kernel(tmp_path):
    """The workflow in notebook cells, run by a real kernel through nbclient."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    head, calls = WORKFLOW.split("squares =")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(head),
                                         nbformat.v4.new_code_cell("squares =" + calls)])
    env = _env()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = nb.cells[1].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream"
                   and o.name == "stdout")
    assert EXPECTED in text.splitlines(), json.dumps(outputs, indent=1)
    assert not [o for o in outputs if o.output_type == "error"], outputs
