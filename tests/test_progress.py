"""Jupyter views of AppFutures and daskflow.progress (widgets and text)."""

from __future__ import annotations

import io

import distributed
import pytest
from waiting import until

import daskflow
from daskflow import File, bash_app, python_app
from daskflow.client.notebook import ProgressTracker, _list_html, future_html, futures_html


@python_app
def pr_square(x):
    return x * x


@python_app
def pr_fail(i):
    raise ValueError(f"progress failure {i}")


@python_app
def pr_wait(event_name):
    distributed.Event(event_name).wait(60)
    return "released"


@bash_app
def pr_write(outputs=(), stdout=None):
    return f"echo hi > {outputs[0]}"


def test_an_app_future_shows_its_status_and_what_the_client_knows(client, tmp_path):
    ok = pr_square(7)
    assert ok.result() == 49
    html = ok._repr_html_()
    assert "<b>AppFuture</b> <code>pr_square</code>" in html and "finished" in html
    assert "<code>49</code>" in html and ok.key in html

    bad = pr_fail(1)
    distributed.wait(bad)
    html = bad._repr_html_()
    assert "error" in html and "progress failure 1" in html

    out = tmp_path / "hi.txt"
    written = pr_write(outputs=[File(str(out))], stdout=str(tmp_path / "w.out"))
    written.result()
    html = future_html(written)
    assert out.name in html and "w.out" in html

    event = f"pr-{id(tmp_path)}"
    waiting = pr_wait(event)
    assert "pending" in waiting._repr_html_() and "result" not in waiting._repr_html_()
    distributed.Event(event).set()
    assert waiting.result() == "released"


def test_a_list_of_app_futures_is_a_table(client):
    futures = pr_square.map(range(30))
    daskflow.gather(futures)
    failing = [pr_fail(i) for i in range(2)]
    distributed.wait(failing)
    html = futures_html(futures + failing)
    assert "<b>32 AppFutures</b>" in html
    assert "<td style='text-align:left'><code>pr_fail</code></td><td>0</td><td>2</td><td>2</td>" \
        in html.replace(" style='color:#2ca02c;font-weight:bold'", "")
    assert "… and 12 more" in html
    assert daskflow.FutureList(futures)._repr_html_() == futures_html(futures)
    assert _list_html(futures) == futures_html(futures)
    assert _list_html([1, 2]) is None and _list_html([]) is None  # other lists: IPython's view


def test_progress_prints_text_outside_jupyter_and_returns_when_done(client):
    futures = [pr_square(i) for i in range(8)] + [pr_fail(i) for i in range(3)]
    out = io.StringIO()
    assert daskflow.progress(futures, file=out, interval=0.05) is None
    assert all(f.done() for f in futures)
    lines = out.getvalue().strip().splitlines()
    assert lines[-1] == ("[####################] 11/11 | pr_fail 3/3 (3 failed) | "
                         "pr_square 8/8")
    assert lines == sorted(set(lines), key=lines.index)  # a line only when the counts change


def test_progress_widgets_follow_the_futures(client):
    pytest.importorskip("ipywidgets")
    event = "pr-widget-gate"
    gate = distributed.Event(event)
    gate.clear()
    held = [pr_wait(event)]  # holds one of the two workers until the gate opens
    futures = {"squares": [pr_square(i) for i in range(5)], "bad": pr_fail(9), "held": held}
    widget = daskflow.progress(futures, notebook=True)
    distributed.wait(futures["squares"] + [futures["bad"]])
    _settle(widget.tracker, lambda s: s["pr_square"]["done"] == 5 and s["pr_fail"]["failed"] == 1)
    assert widget.bars["pr_square"].value == 5 and widget.bars["pr_square"].max == 5
    assert widget.bars["pr_square"].bar_style == "success"
    assert widget.bars["pr_fail"].bar_style == "danger"
    assert "1 failed" in widget.labels["pr_fail"].value
    assert widget.bars["pr_wait"].value == 0 and not widget.tracker.finished.is_set()
    gate.set()
    assert widget.tracker.finished.wait(30)
    assert widget.bars["pr_wait"].value == 1 and widget.labels["pr_wait"].value == "1/1 done"


def _settle(tracker: ProgressTracker, predicate, timeout: float = 10) -> None:
    """Done callbacks run in the client's callback thread, just after wait() returns."""
    until(lambda: predicate(tracker.snapshot()),
          lambda: f"the progress did not settle; it shows {tracker.snapshot()}",
          timeout=timeout, interval=0.02)
