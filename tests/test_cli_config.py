"""The daskflow command, and the config defaults against their schema."""

from __future__ import annotations

import os
import subprocess
import sys

import dask
import yaml

import daskflow

PKG = os.path.dirname(daskflow.__file__)


def _keys(tree: dict, prefix="") -> set[str]:
    out = set()
    for k, v in tree.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _keys(v, prefix + k + ".")
    return out


def _schema_keys(node: dict, prefix="") -> set[str]:
    out = set()
    for k, v in node.get("properties", {}).items():
        out.add(prefix + k)
        out |= _schema_keys(v, prefix + k + ".")
    return out


def test_schema_is_complete():
    with open(os.path.join(PKG, "daskflow.yaml")) as f:
        defaults = yaml.safe_load(f)
    with open(os.path.join(PKG, "daskflow-schema.yaml")) as f:
        schema = yaml.safe_load(f)
    assert _keys(defaults) == _schema_keys(schema)
    for key in _schema_keys(schema):
        node = schema
        for part in key.split("."):
            node = node["properties"][part]
        assert node.get("description"), f"{key} has no description"


def test_defaults_are_registered():
    assert dask.config.get("daskflow.local.host") == "127.0.0.1"
    assert dask.config.get("daskflow.result-prefetch") == 256


def _daskflow(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "daskflow.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_version():
    proc = _daskflow("--version")
    assert proc.returncode == 0 and daskflow.__version__ in proc.stdout


def test_run_a_workflow_script(tmp_path):
    script = tmp_path / "wf.py"
    script.write_text(
        "import sys, dask\n"
        "dask.config.set({'daskflow.local.dashboard-address': ':0', 'daskflow.local.n-workers': 1})\n"
        "from daskflow import python_app\n"
        "@python_app\n"
        "def double(x):\n"
        "    return 2 * x\n"
        "if __name__ == '__main__':\n"
        "    print('ARGS', sys.argv[1:], double(int(sys.argv[1])).result())\n"
    )
    proc = _daskflow("run", str(script), "21", "--flag", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ARGS ['21', '--flag'] 42" in proc.stdout


def test_run_fails_when_the_script_raises(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("raise RuntimeError('workflow broke')\n")
    proc = _daskflow("run", str(script))
    assert proc.returncode == 1
    assert "RuntimeError: workflow broke" in proc.stderr


def test_run_missing_script_is_a_usage_error(tmp_path):
    proc = _daskflow("run", str(tmp_path / "nope.py"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
