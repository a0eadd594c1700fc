"""The tutorial notebook runs end to end in a real Jupyter kernel."""

from __future__ import annotations

import os
import re

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "notebooks", "tutorial.ipynb")


@pytest.mark.slow
def test_tutorial_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS", "127.0.0.1:0")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", store_widget_state=True,
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

    # 5. Watching a run: the Workflow page's link, progress bars, HTML views
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/workflow\n", outputs[6])
    mimes = [o.get("data", {}) for o in cells[6] if o.get("output_type") == "display_data"]
    assert any("application/vnd.jupyter.widget-view+json" in m for m in mimes)
    future_view = _html(cells[7])
    assert "<b>AppFuture</b> <code>simulate</code>" in future_view and "<code>0</code>" in future_view
    list_view = _html(cells[8])
    assert "<b>8 AppFutures</b>" in list_view and "<code>fails</code>" in list_view
    assert outputs[9].splitlines() == [
        "fails {'done': 0, 'failed': 2, 'cancelled': 0, 'total': 2}",
        "simulate {'done': 6, 'failed': 0, 'cancelled': 0, 'total': 6}"]
    # the widgets' last state, as the kernel sent it
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = {m["state"]["description"]: m["state"] for m in states.values()
            if m["model_name"] == "IntProgressModel"}
    assert (bars["simulate"]["value"], bars["simulate"]["max"]) == (6, 6)
    assert bars["fails"]["bar_style"] == "danger"


def _html(outputs) -> str:
    return "".join(o["data"]["text/html"] for o in outputs
                   if o.get("output_type") == "execute_result" and "text/html" in o.get("data", {}))


COLLECTIONS = os.path.join(os.path.dirname(__file__), "..", "notebooks", "dask-collections.ipynb")


@pytest.mark.slow
def test_dask_collections_notebook_executes(tmp_path):
    """A dask array feeds apps (tiles, a whole expression) and apps run
    inside a Dask graph (``app.delayed``), in a real Jupyter kernel; the
    printed figures are those of the same array computed here."""
    import dask
    import dask.array as da

    nb = nbformat.read(COLLECTIONS, as_version=4)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = ["".join(o.get("text", "") for o in cell.get("outputs", [])
                       if o.get("name") == "stdout")
               for cell in nb.cells if cell.cell_type == "code"]
    with dask.config.set(scheduler="threads"):
        image = da.random.RandomState(0).random_sample((400, 400), chunks=100)
        brightest, means, overall_mean, col_means = dask.compute(
            image.max(), [(image / image.max()).blocks[i, 0].mean() for i in range(4)],
            image.mean(), image.mean(axis=0))
    assert outputs[0] == "workers: 2\n"
    assert outputs[1].splitlines() == ["16 (100, 100)", str(round(float(brightest), 6))]
    assert outputs[2].strip() == str(int((col_means > overall_mean).sum()))
    assert outputs[3].strip() == str(round(sum(float(m) for m in means) / 4, 6))
