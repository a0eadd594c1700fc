"""Memoization and checkpointing: cached results within a session and across
sessions, keyed by the app's source and the argument values."""

from __future__ import annotations

import os

import dask
import pytest
from waiting import until

import daskflow
from daskflow import File, python_app
from daskflow.memo import id_for_memo
from daskflow.memo.checkpoints import CheckpointStore
from daskflow.memo.ids import with_ids
from daskflow.memo.keys import call_key


def _runs(path) -> int:
    return len(open(path).read()) if os.path.exists(path) else 0


def _mark(path) -> None:
    with open(path, "a") as f:
        f.write("x")


def test_equal_values_from_different_tasks_hit(client, tmp_path):
    runs = str(tmp_path / "runs")

    @python_app
    def five():
        return 5

    @python_app(cache=True)
    def square(x, log):
        _mark(log)
        return x * x

    assert square(five(), runs).result() == 25
    assert square(five(), runs).result() == 25  # another upstream task, the same value
    assert square(5, runs).result() == 25
    assert _runs(runs) == 1


def test_ignore_for_cache(client, tmp_path):
    runs = str(tmp_path / "runs")

    @python_app(cache=True, ignore_for_cache=["log", "note"])
    def double(x, log, note=""):
        _mark(log)
        return 2 * x

    assert double(4, runs, note="a").result() == 8
    assert double(4, runs, note="b").result() == 8
    assert double(5, runs, note="b").result() == 10
    assert _runs(runs) == 2


def test_files_by_path_or_by_content(client, tmp_path):
    runs_path, runs_content = str(tmp_path / "rp"), str(tmp_path / "rc")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same")
    b.write_text("same")

    @python_app(cache=True, ignore_for_cache=["log"])
    def by_path(f, log):
        _mark(log)
        return open(f).read()

    @python_app(cache="content", ignore_for_cache=["log"])
    def by_content(f, log):
        _mark(log)
        return open(f).read()

    for fn, log in ((by_path, runs_path), (by_content, runs_content)):
        fn(File(str(a)), log).result()
        fn(File(str(b)), log).result()
    assert _runs(runs_path) == 2      # two paths
    assert _runs(runs_content) == 1   # one content
    a.write_text("changed")
    assert by_content(File(str(a)), runs_content).result() == "changed"
    assert _runs(runs_content) == 2


SCRIPT = """
import sys, dask
dask.config.set({{"daskflow.local.n-workers": 1, "daskflow.local.dashboard-address": ":0",
                  "daskflow.checkpoint.dir": {ckpt!r}, "daskflow.run-dir": {runs!r}}})
from daskflow import python_app

@python_app(cache=True)
def slow_square(x, log):
    with open(log, "a") as f:
        f.write("x")
    return x * x {suffix}

if __name__ == "__main__":
    print(sum(f.result() for f in [slow_square(i, {log!r}) for i in range(5)]))
"""


def test_results_are_reused_across_sessions_until_the_source_changes(run_script, tmp_path):
    params = dict(ckpt=str(tmp_path / "ckpt"), runs=str(tmp_path / "runinfo"),
                  log=str(tmp_path / "log"), suffix="")
    for expected_runs in (5, 5):
        proc = run_script(SCRIPT.format(**params))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split()[-1] == "30"
        assert _runs(params["log"]) == expected_runs
    params["suffix"] = "+ 0  # edited"
    proc = run_script(SCRIPT.format(**params))
    assert proc.returncode == 0, proc.stderr
    assert _runs(params["log"]) == 10  # the edited app does not reuse old entries


def test_corrupt_entry_is_recomputed(client, tmp_path, caplog):
    store_dir = tmp_path / "store"
    runs = str(tmp_path / "runs")

    @python_app(cache=True, ignore_for_cache=["log"])
    def cube(x, log):
        _mark(log)
        return x ** 3

    with dask.config.set({"daskflow.checkpoint.dir": str(store_dir)}):
        with daskflow.Client(n_workers=1, dashboard_address=":0") as c, c.as_current():
            first = cube(3, runs)
            assert first.result() == 27
            key = first.key
            del first  # else the next identical call shares its task in this session
            until(lambda: key not in c.futures, "the dropped future's task was not released",
                  timeout=30, interval=0.01)
            for entry in CheckpointStore(str(store_dir)).entries("cube"):
                path = entry.url.split("://", 1)[-1]
                data = bytearray(open(path, "rb").read())
                data[-5] ^= 0xFF
                open(path, "wb").write(bytes(data))
            assert cube(3, runs).result() == 27
    assert _runs(runs) == 2
    assert len(CheckpointStore(str(store_dir)).entries("cube")) == 1  # rewritten whole


@pytest.mark.parametrize("mode", ["manual", "dag_exit", "periodic"])
def test_checkpoint_modes(tmp_path, mode):
    store_dir = str(tmp_path / "store")

    @python_app(cache=True)
    def inc(x):
        return x + 1

    settings = {"daskflow.checkpoint.dir": store_dir, "daskflow.checkpoint.mode": mode,
                "daskflow.checkpoint.period": "0.5s"}
    with dask.config.set(settings):
        with daskflow.Client(n_workers=1, dashboard_address=":0") as c, c.as_current():
            assert daskflow.gather(inc.map(range(4))) == [1, 2, 3, 4]
            written = len(CheckpointStore(store_dir).entries("inc"))
            if mode == "manual":
                assert written == 0
                assert daskflow.checkpoint() == 4
            elif mode == "periodic":  # written while the client runs, every 0.5 s
                until(lambda: len(CheckpointStore(store_dir).entries("inc")) == 4,
                      "the periodic checkpoint did not write the 4 results", timeout=30)
            else:
                assert written == 0
    assert len(CheckpointStore(store_dir).entries("inc")) == 4


def test_bad_checkpoint_mode_is_a_clear_error(tmp_path):
    with dask.config.set({"daskflow.checkpoint.mode": "sometimes"}):
        with daskflow.Client(n_workers=1, dashboard_address=":0") as c, c.as_current():
            with pytest.raises(ValueError, match="daskflow.checkpoint.mode is 'sometimes'"):
                python_app(lambda: 1)()


def test_reuse_an_earlier_store_read_only(tmp_path):
    old_store, new_store = str(tmp_path / "old"), str(tmp_path / "new")
    runs = str(tmp_path / "runs")

    @python_app(cache=True, ignore_for_cache=["log"])
    def neg(x, log):
        _mark(log)
        return -x

    with dask.config.set({"daskflow.checkpoint.dir": old_store}):
        with daskflow.Client(n_workers=1, dashboard_address=":0") as c, c.as_current():
            assert neg(1, runs).result() == -1
    with dask.config.set({"daskflow.checkpoint.dir": new_store,
                          "daskflow.checkpoint.reuse": [old_store]}):
        with daskflow.Client(n_workers=1, dashboard_address=":0") as c, c.as_current():
            assert neg(1, runs).result() == -1
            assert neg(2, runs).result() == -2
    assert _runs(runs) == 2
    assert len(CheckpointStore(old_store).entries()) == 1  # never written by the 2nd run
    assert len(CheckpointStore(new_store).entries()) == 1


def test_a_registered_id_decides_which_values_are_the_same(client, tmp_path):
    """The type and its id are defined here, so they travel by value: the
    workers know the id only from the run's memo rule, which ships it."""
    runs = str(tmp_path / "runs")

    class Sample:
        def __init__(self, accession, loaded_at):
            self.accession, self.loaded_at = accession, loaded_at

    @id_for_memo.register(Sample)
    def _(sample, output_ref=False):
        return sample.accession.encode()

    @python_app(cache=True)
    def align(sample, log):
        _mark(log)
        return sample.accession.lower()

    assert align(Sample("SRR1", 1.0), runs).result() == "srr1"
    assert align(Sample("SRR1", 2.0), runs).result() == "srr1"  # the same id: a hit
    assert _runs(runs) == 1
    assert align(Sample("SRR2", 1.0), runs).result() == "srr2"  # another id
    assert _runs(runs) == 2


def test_a_failing_id_fails_its_call_only(client, tmp_path):
    class Opaque:
        pass

    class OpaqueIdError(ValueError):
        pass

    @id_for_memo.register(Opaque)
    def _(value, output_ref=False):
        raise OpaqueIdError("no id for this one")

    @python_app(cache=True)
    def use(x):
        return "ran"

    @python_app
    def upstream():
        return 1

    failed = use(Opaque())  # the submit itself does not raise
    with pytest.raises(OpaqueIdError, match="no id for this one"):
        failed.result()
    with pytest.raises(OpaqueIdError):  # also once a dependency resolved
        use([Opaque(), upstream()]).result()
    assert use(1).result() == "ran"


def test_unregistered_values_keep_their_dask_tokens():
    """Keys of values without a registered id are those of earlier releases,
    so existing checkpoints stay valid."""
    from dask.base import tokenize

    class Plain:
        def __init__(self, n):
            self.n = n

    @python_app(cache=True)
    def f(a, b=None, *rest, **extra):
        return a

    definition = f.definition
    args, kwargs = (1, [2.5, "x"], Plain(3)), {"k": {"z": (1, 2)}}
    expected = tokenize(definition.identity, {"a": 1, "b": [2.5, "x"], "rest": (Plain(3),),
                                              "extra": {"k": {"z": (1, 2)}}})
    assert call_key(definition, args, kwargs) == expected


def test_parsls_rule_needs_an_id_for_every_value():
    @python_app(cache=True)
    def g(x, outputs=()):
        return x

    seen = []

    class Out:
        pass

    @id_for_memo.register(Out)
    def _(value, output_ref=False):
        seen.append(output_ref)
        return b"out"

    definition = g.definition
    strict = call_key(definition, ({"b": 1, "a": [None, 2.0]},), {}, strict=True)
    assert strict == call_key(definition, ({"a": [None, 2.0], "b": 1},), {}, strict=True)
    call_key(definition, (1,), {"outputs": [Out()]}, strict=True)
    assert seen == [True]  # outputs count as output references

    class Unknown:
        pass

    with pytest.raises(ValueError, match="unknown type for memoization: .*Unknown.*"
                                         "@id_for_memo.register.Unknown."):
        call_key(definition, (Unknown(),), {}, strict=True)
    with pytest.raises(ValueError, match="subclass of list"):
        call_key(definition, (type("MyList", (list,), {})(),), {}, strict=True)
    call_key(definition, (Unknown(),), {})  # daskflow's own rule: Dask tokenizes it


def test_an_id_that_is_not_bytes_is_a_clear_error():
    class Wrong:
        pass

    @id_for_memo.register(Wrong)
    def _(value, output_ref=False):
        return "not bytes"

    with pytest.raises(TypeError, match="id_for_memo for .*Wrong returned str, not bytes"):
        with_ids([Wrong()])
