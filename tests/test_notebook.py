"""The tutorial notebook runs end to end in a real Jupyter kernel."""

from __future__ import annotations

import os

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "notebooks", "tutorial.ipynb")


@pytest.mark.slow
def test_tutorial_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS", "127.0.0.1:0")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = [cell.get("outputs", []) for cell in nb.cells if cell.cell_type == "code"]

    def stream(name):
        return ["".join(o.get("text", "") for o in outs if o.get("name") == name)
                for outs in cells]

    outputs = stream("stdout")
    assert "dashboard: http://127.0.0.1:" in stream("stderr")[1]
    assert outputs[1].split("\n")[:3] == ["45", "0", "Hello World!"]
    results, timing = outputs[2].rsplit("]", 1)
    assert results == "[0, 1, 4, 9, 16, 25, 36, 49"
    assert float(timing.split()[0]) < 4.0  # 4 s of sleeps ran in parallel
    assert outputs[3].strip() == str(sum(x * x for x in range(1000)))
    assert outputs[4].strip() == str(sum(sum(range(1, i + 1)) for i in range(1, 6)))
    assert outputs[5].startswith("21\n")
    assert "did not run: its dependency 'fails'" in outputs[5]
