"""What the client tells the provenance plugin of a call (``provenance.calls``):
the arguments' text, chunk membership, and the rows made of a description."""

from __future__ import annotations

from array import array
from collections import namedtuple

from distributed import Future

from daskflow.client.futures import AppFuture
from daskflow.provenance import calls
from daskflow.provenance.blocks import block_of
from daskflow.provenance.store import ProvenanceStore
from daskflow.provenance.writer import Writer
from daskflow.shipped import MemberRef, Packed
from daskflow.signing import arguments_digest
from daskflow.sites.routing import RELAY_PREFIX

Point = namedtuple("Point", "x y")


class Loud:
    def __repr__(self):
        raise RuntimeError("no repr here")


def _member(key: str, index: int) -> AppFuture:
    future = AppFuture(key)
    future.__dict__.update(index=index)
    return future


def test_plain_arguments_read_as_their_repr():
    args, kwargs = (1, "a", None, [2.5, b"x"]), {"k": {"n": (3,)}, "p": Packed(b"123", "m.T")}
    assert calls.arguments(args, kwargs) == (repr((args, kwargs)), ())
    assert "<m.T: 3 bytes>" in calls.arguments(args, kwargs)[0]


def test_futures_read_as_the_key_they_stand_for():
    """Whatever the future's class or state: equal calls give equal texts
    (and digests); a relay reads as the future it copies."""
    f = Future("add-0-tok")
    relay = Future(f"{RELAY_PREFIX}gpu-add-0-tok")
    text, members = calls.arguments((f, [relay, {f}], Point(f, 1)), {"y": {"k": f}, "z": "x"})
    assert text == ("((<future add-0-tok>, [<future add-0-tok>, {<future add-0-tok>}], "
                    "Point(x=<future add-0-tok>, y=1)), {'y': {'k': <future add-0-tok>}, "
                    "'z': 'x'})")
    assert members == (("add-0-tok", None),)  # the task it depends on, once


def test_chunked_calls_read_as_chunk_and_index_and_are_listed():
    marker = (MemberRef, "sq-4-tok", 2)  # as App.__call__ ships a chunked call's future
    text, members = calls.arguments((marker,), {"other": _member("sq-0-tok", 1)})
    assert text == "((<future sq-4-tok[2]>,), {'other': <future sq-0-tok[1]>})"
    assert members == (("sq-4-tok", 2), ("sq-0-tok", 1))


def test_an_argument_without_repr_is_named_not_fatal():
    text, _ = calls.arguments((Loud(),), {})
    assert text.startswith("<unrepresentable: RuntimeError('no repr here')")


class _Opts:
    stdout = ("/tmp/o.txt", "w")
    stderr = None


class _App:
    name, identity, kind = "sq", "m.sq:abc", "bash"


def test_rows_of_a_call():
    text, members = calls.arguments((_member("sq-4-tok", 2), "x" * 400), {})
    desc = calls.of_call(_App, 7, text, members, _Opts)
    deps = ["sq-4-tok", f"{RELAY_PREFIX}gpu-add-0-tok", "other-1-tok"]
    (row,) = calls.rows("sq-7-tok", 5.0, desc, deps)
    assert row == {"key": "sq-7-tok", "tid": "7", "app": "sq", "app_hash": "m.sq:abc",
                   "args": text[:300] + "...", "args_digest": arguments_digest(text),
                   "submitted": 5.0, "chunk_key": None, "index": None,
                   "deps": {"sq-4-tok[2]", "add-0-tok", "other-1-tok"},
                   "streams": {"stdout": "/tmp/o.txt"}, "bash": True}
    assert calls.call_of(desc) == ("sq", 7)


def test_rows_of_a_chunk_one_per_call():
    opts = type("Opts", (), {"stdout": None, "stderr": None})
    app = type("App", (), {"name": "sq", "identity": "h", "kind": "python"})
    desc = calls.of_chunk(app, opts, [(4, *calls.arguments((1,), {})),
                                      (5, *calls.arguments((_member("sq-0-tok", 1),), {}))])
    rows = calls.rows("sq-4-tok", 1.0, desc, ["sq-0-tok"])
    assert [(r["key"], r["tid"], r["args"], r["chunk_key"], r["index"], r["deps"], r["bash"])
            for r in rows] == [
        ("sq-4-tok[0]", "4", "((1,), {})", "sq-4-tok", 0, set(), False),
        ("sq-4-tok[1]", "5", "((<future sq-0-tok[1]>,), {})", "sq-4-tok", 1, {"sq-0-tok[1]"},
         False)]
    assert calls.call_of(desc) is None  # a chunk is not one call


def test_rows_of_an_output_file():
    from daskflow import File

    desc = calls.of_output(File("/data/out.txt"))
    (row,) = calls.rows("w-output-3.0-tok", 2.0, desc, ["w-3-tok"])
    assert row["tid"] == "3.0" and row["app"] == "output" and row["deps"] == {"w-3-tok"}
    assert row["args"] == repr((File("/data/out.txt"),)) and "args_digest" not in row


def test_the_annotation_hands_out_each_description_once():
    """The scheduler calls the annotation with each new task's key and keeps
    it afterwards (with its graph): emptied as it goes, it keeps nothing."""
    import pickle

    import dask

    with calls.described({"a-1-tok": {"app": "a"}}):
        annotation = pickle.loads(pickle.dumps(dask.get_annotations()[calls.ANNOTATION]))
    assert annotation("other-key") is None
    call, desc = annotation("a-1-tok")  # the description travels on pickled
    assert call is None and calls.opened(desc) == {"app": "a"}
    assert annotation("a-1-tok") is None and not annotation.by_key


class Strict(list):
    """A list of the user's that cannot be rebuilt from its items."""

    def __init__(self, first, *rest):
        super().__init__((first, *rest))


class Odd(namedtuple("Odd", "a b")):
    """A namedtuple of the user's that cannot be rebuilt from its fields."""

    def __new__(cls, both):
        return super().__new__(cls, *both)


def test_odd_containers_are_shown_as_they_travel():
    """A list subclass holding futures reaches the task as a plain list;
    a container that cannot be rebuilt is shown as it is."""
    f = Future("add-0-tok")
    assert calls.arguments((Strict(f, 1),), {})[0] == "(([<future add-0-tok>, 1],), {})"
    text, _ = calls.arguments((Odd((f, 1)),), {})
    assert text.startswith("((Odd(a=<Future") and "add-0-tok" in text


def test_a_chunk_of_plain_calls_is_a_block_others_are_rows():
    plain = {"app": "sq", "hash": "h", "calls": [(4, "((1,), {})", ()), (5, "((2,), {})", ())]}
    block = block_of("sq-4-t", 1.0, plain)
    assert (block.chunk_key, block.tids, block.args, block.submitted) == \
        ("sq-4-t", ["4", "5"], ["((1,), {})", "((2,), {})"], 1.0)
    linked = {**plain, "calls": [(4, "()", ()), (5, "(<future sq-4-t[0]>,)", (("sq-4-t", 0),))]}
    assert block_of("sq-4-t", 1.0, linked) is None  # a dependency: rows with their edges
    assert block_of("sq-4-t", 1.0, {**plain, "bash": True}) is None  # exit codes, streams
    assert block_of("sq-4-t", 1.0, {"app": "sq", "hash": "h", "tid": 4, "args": "()"}) is None


def test_a_block_outlives_the_hand_over_to_the_next_writer(tmp_path):
    """The chunk is new under the plugin's thread and reports under the
    writer process (``Writer.handover``): its calls end done, once each;
    a chunk forgotten before it reported leaves its calls pending."""
    run = {"run_id": "000", "start": 0.0}
    db = str(tmp_path / "p.db")
    with ProvenanceStore(db) as store:
        store.start_run(run)
    desc = {"app": "sq", "hash": "h", "calls": [(4, "((1,), {})", ()), (5, "((2,), {})", ())]}
    first = Writer(run, db, "t", record_arguments=False)
    later = {**desc, "calls": [(6, "((3,), {})", ()), (7, "((4,), {})", ())]}
    first.write([("new", "sq-4-t", 1.0, desc, ()), ("new", "sq-6-t", 1.0, later, ())])
    second = Writer(run, db, "t", record_arguments=False, resume=first.handover())
    msg = {"chunk": "sq-4-t", "calls": (), "exit_code": None,
           "times": array("d", [2.0, 3.0, 3.0, 4.5]).tobytes()}
    second.write([("times", msg, "tcp://h:1"),
                  ("transition", "sq-6-t", "processing", "forgotten", 5.0, {})])
    second.close()
    with ProvenanceStore(db, readonly=True) as store:
        rows = store.tasks()
    assert [(r["key"], r["state"], r["started"], r["host"]) for r in rows] == [
        ("sq-4-t[0]", "done", 2.0, "h"), ("sq-4-t[1]", "done", 3.0, "h"),
        ("sq-6-t[0]", "pending", None, None), ("sq-6-t[1]", "pending", None, None)]
    assert rows[0]["args"] == arguments_digest("((1,), {})")
    counts = second.state.snapshot()["apps"]["sq"]
    assert (counts["done"], counts["cancelled"], counts["total"]) == (2, 2, 4)
    assert second.blocks == {}
