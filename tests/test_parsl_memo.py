"""Parsl's memoization and checkpoints on daskflow: ``id_for_memo``,
``BasicMemoizer`` and ``Config(app_cache=...)``, the checkpoint modes and
``parsl.utils.get_all_checkpoints``/``get_last_checkpoint``.

Checks of the settings need no cluster; the runs go in fresh interpreters,
so that the process-wide loaded kernel is theirs."""

from __future__ import annotations

import os

import pytest

from daskflow.memo import id_for_memo
from daskflow.parsl import Config
from daskflow.parsl.dataflow import memoization
from daskflow.parsl.dataflow.memoization import BasicMemoizer, memoizer_of
from daskflow.parsl.errors import ConfigurationError
from daskflow.parsl.translate import translate
from daskflow.parsl.utils import get_all_checkpoints, get_last_checkpoint


def test_parsl_id_for_memo_is_daskflows_registry():
    assert memoization.id_for_memo is id_for_memo


def test_memoizer_settings_are_checked_as_in_parsl():
    with pytest.raises(ConfigurationError, match="checkpoint_mode='sometimes'"):
        BasicMemoizer(checkpoint_mode="sometimes")
    with pytest.raises(ConfigurationError, match="Checkpoint period must be specified"):
        memoizer_of(Config(memoizer=BasicMemoizer(checkpoint_mode="periodic")))
    with pytest.raises(ConfigurationError, match="invalid checkpoint_period provided: 5s "
                                                 "expected HH:MM:SS"):
        memoizer_of(Config(memoizer=BasicMemoizer(checkpoint_mode="periodic",
                                                  checkpoint_period="5s")))
    with pytest.raises(TypeError, match="list of checkpoint directories"):
        BasicMemoizer(checkpoint_files="runinfo/000/checkpoint")
    assert BasicMemoizer(checkpoint_mode="periodic",
                         checkpoint_period="01:02:03").period_seconds() == 3723


def test_a_memoizer_with_its_own_look_up_is_refused_naming_it():
    class DontReuseSeven(BasicMemoizer):
        def check_memo(self, task_record):
            return None

    with pytest.raises(ConfigurationError, match="DontReuseSeven overrides check_memo: "
                                                 "daskflow looks results up .* on the workers"):
        memoizer_of(Config(memoizer=DontReuseSeven()))
    with pytest.raises(ConfigurationError, match="takes a BasicMemoizer"):
        memoizer_of(Config(memoizer=memoization.Memoizer()))


def test_older_parsl_checkpoint_keywords_make_the_memoizer():
    memoizer = memoizer_of(Config(checkpoint_mode="periodic", checkpoint_period="00:00:05",
                                  checkpoint_files=["a"]))
    assert (memoizer.checkpoint_mode, memoizer.period_seconds(), memoizer.checkpoint_files) \
        == ("periodic", 5.0, ["a"])
    with pytest.raises(ConfigurationError, match="memoizer=.*checkpoint_mode=.*both given"):
        memoizer_of(Config(memoizer=BasicMemoizer(), checkpoint_mode="manual"))
    # translated keywords: no "unused" warning for them
    plan = translate(Config(app_cache=False, memoizer=BasicMemoizer(checkpoint_mode="manual")))
    assert plan.unused == []


def test_memoizer_settings_become_the_runs():
    memoizer = BasicMemoizer(checkpoint_mode="dfk_exit", checkpoint_files=["old/ckpt"])
    memoizer.start(run_dir="runs/004", config_run_dir="runs")
    settings = memoizer.settings()
    assert settings["checkpoint"] == os.path.abspath("runs/004/checkpoint")
    assert settings["checkpoint_mode"] == "dag_exit"
    assert settings["reuse"] == (os.path.abspath("old/ckpt"),)
    assert settings["memo"] == "parsl"
    off = memoizer.settings(app_cache=False)
    assert off["memo"] == "off" and off["checkpoint"] is None
    plain = BasicMemoizer()  # no mode: this run's results only, not a checkpoint
    plain.start(run_dir="runs/004", config_run_dir="runs")
    assert plain.settings()["checkpoint"] == os.path.abspath("runs/004/memo")
    assert plain.settings()["reuse"] == ()


def test_checkpoint_helpers_list_numbered_runs_with_a_checkpoint(tmp_path):
    assert get_all_checkpoints(str(tmp_path / "missing")) == []
    assert get_last_checkpoint(str(tmp_path / "missing")) == []
    for run in ("000", "001", "999", "1000"):
        (tmp_path / run).mkdir()
    for run in ("000", "999", "1000"):
        (tmp_path / run / "checkpoint").mkdir()
    (tmp_path / "X").write_text("")  # not a run
    (tmp_path / "monitoring.db").write_text("")
    expected = [str(tmp_path / r / "checkpoint") for r in ("000", "999", "1000")]
    assert get_all_checkpoints(str(tmp_path)) == expected
    assert get_last_checkpoint(str(tmp_path)) == [expected[-1]]  # by number, not by name
    (tmp_path / "1001").mkdir()  # the last run made no checkpoint
    assert get_last_checkpoint(str(tmp_path)) == [expected[-1]]


SCRIPT = r'''
import os, sys, time
import daskflow.parsl
daskflow.parsl.install()
import parsl
from parsl import python_app
from parsl.config import Config
from parsl.dataflow.memoization import BasicMemoizer, id_for_memo
from parsl.utils import get_all_checkpoints, get_last_checkpoint


class Unmemoizable:
    pass


class Sample:  # defined and registered in the script: the workers learn of it
    def __init__(self, name, note):
        self.name, self.note = name, note


class Broken:
    pass


class BrokenIdError(ValueError):
    pass


@id_for_memo.register(Sample)
def _(sample, output_ref=False):
    return sample.name.encode()


@id_for_memo.register(Broken)
def _(value, output_ref=False):
    raise BrokenIdError("deliberate")


@python_app(cache=True)
def uuid_app(x=None, inputs=()):
    import uuid
    return str(uuid.uuid4())


@python_app
def one():
    return 1


def load(**memo):
    return parsl.load(Config(run_dir="runs", memoizer=BasicMemoizer(**memo)))


def failure(future):
    exc = future.exception()
    return f"{type(exc).__name__}: {exc}"


with load():
    print("UNMEMOIZABLE", failure(uuid_app(Unmemoizable())))
    print("UNMEMOIZABLE-AFTER-DEP", failure(uuid_app(Unmemoizable(), inputs=[one()])))
    print("BROKEN", failure(uuid_app(Broken(), inputs=[one()])))
    a = uuid_app(Sample("s1", "first")).result()
    print("SAME-ID", a == uuid_app(Sample("s1", "second")).result(),
          a == uuid_app(Sample("s2", "first")).result())
    print("IN-RUN", uuid_app(7).result() == uuid_app(7).result())
    print("NO-CHECKPOINT", get_all_checkpoints("runs"))

with load(memoize=False):
    print("MEMOIZE-FALSE", uuid_app(7).result() == uuid_app(7).result())
with parsl.load(Config(run_dir="runs", app_cache=False)):
    print("APP-CACHE-FALSE", uuid_app(7).result() == uuid_app(7).result())

with load(checkpoint_mode="task_exit", checkpoint_files=[]):
    first = uuid_app(1).result()
    other = uuid_app(2).result()
with load(checkpoint_mode="task_exit", checkpoint_files=get_last_checkpoint("runs")):
    second = uuid_app(1).result()  # from the previous run: carried on in this run's
with load(checkpoint_mode="task_exit", checkpoint_files=get_last_checkpoint("runs")):
    third = uuid_app(1).result()
    print("OTHER-NOT-CARRIED", uuid_app(2).result() != other)
print("ROUNDTRIP", first == second == third)

with load(checkpoint_mode="manual", checkpoint_files=[]) as dfk:
    manual = uuid_app(3).result()
    before = os.path.isdir(os.path.join(dfk.run_dir, "checkpoint"))
    where = dfk.checkpoint()
    print("MANUAL", before, where == os.path.join(dfk.run_dir, "checkpoint"),
          os.path.isdir(where), dfk.memoizer.checkpointed_tasks)

with load(checkpoint_mode="dfk_exit", checkpoint_files=[]) as dfk:
    at_exit = uuid_app(4).result()
    exit_dir = os.path.join(dfk.run_dir, "checkpoint")
    print("DFK-EXIT-BEFORE", os.path.isdir(exit_dir))
print("DFK-EXIT-AFTER", os.path.isdir(exit_dir))

with load(checkpoint_mode="periodic", checkpoint_period="00:00:01", checkpoint_files=[]) as dfk:
    periodic = uuid_app(5).result()
    deadline = time.time() + 60
    while not os.path.isdir(os.path.join(dfk.run_dir, "checkpoint")) and time.time() < deadline:
        time.sleep(0.2)
    print("PERIODIC", os.path.isdir(os.path.join(dfk.run_dir, "checkpoint")))

with load(checkpoint_mode="task_exit") as dfk:  # default: every earlier checkpoint
    print("ALL", [uuid_app(n).result() for n in (3, 4, 5)] == [manual, at_exit, periodic])
'''


def test_parsl_memo_and_checkpoints_in_a_script(run_script, tmp_path):
    proc = run_script(SCRIPT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert out["UNMEMOIZABLE"].startswith("ValueError: unknown type for memoization: "
                                          "<class '__main__.Unmemoizable'>")
    assert out["UNMEMOIZABLE-AFTER-DEP"].startswith("ValueError: unknown type")
    assert out["BROKEN"] == "BrokenIdError: deliberate"
    assert out["SAME-ID"] == "True False"
    assert out["IN-RUN"] == "True"
    assert out["NO-CHECKPOINT"] == "[]"
    assert out["MEMOIZE-FALSE"] == "False"
    assert out["APP-CACHE-FALSE"] == "False"
    assert out["OTHER-NOT-CARRIED"] == "True"
    assert out["ROUNDTRIP"] == "True"
    assert out["MANUAL"] == "False True True 1"
    assert out["DFK-EXIT-BEFORE"] == "False"
    assert out["DFK-EXIT-AFTER"] == "True"
    assert out["PERIODIC"] == "True"
    assert out["ALL"] == "True"


def test_time_limited_open_waits_for_a_file_written_later(tmp_path):
    import threading

    from daskflow.parsl.utils import time_limited_open, wait_for_file

    path = tmp_path / "late.txt"

    def write():  # whole at once: the reader never sees it half-written
        (tmp_path / "late.tmp").write_text("done")
        os.replace(tmp_path / "late.tmp", path)

    writer = threading.Timer(0.3, write)
    writer.start()
    try:
        with time_limited_open(str(path), "r", seconds=30) as f:
            assert f.read() == "done"
    finally:
        writer.join()
    with pytest.raises(FileNotFoundError):
        with time_limited_open(str(tmp_path / "never"), "r", seconds=0.2):
            pass
    with wait_for_file(str(tmp_path / "never"), seconds=0.1):  # not an error
        pass


def test_without_provenance_the_checkpoint_still_gets_its_run_directory(run_script):
    proc = run_script(r'''
import os, dask
dask.config.set({"daskflow.provenance.enabled": False})
import daskflow.parsl as parsl
from daskflow.parsl import Config, python_app
from daskflow.parsl.dataflow.memoization import BasicMemoizer
from daskflow.parsl.utils import get_last_checkpoint

@python_app(cache=True)
def uuid_app(x):
    import uuid
    return str(uuid.uuid4())

with parsl.load(Config(run_dir="runs")) as dfk:  # no store: shared while held
    held = uuid_app(1)
    print("PLAIN", dfk.run_dir, held.result() == uuid_app(1).result())
with parsl.load(Config(run_dir="runs", memoizer=BasicMemoizer(checkpoint_mode="task_exit"))):
    first = uuid_app(2).result()
print("LAST", [os.path.relpath(p) for p in get_last_checkpoint("runs")])
with parsl.load(Config(run_dir="runs",
                       memoizer=BasicMemoizer(checkpoint_files=get_last_checkpoint("runs")))):
    print("REUSED", uuid_app(2).result() == first)
''', timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["PLAIN None True", "LAST ['runs/000/checkpoint']",
                                        "REUSED True"]
