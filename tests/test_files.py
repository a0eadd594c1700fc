"""File, outputs= and DataFutures."""

from __future__ import annotations

import os
import pickle

import pytest

from daskflow import (DataFuture, DependencyError, File, MissingInputs, MissingOutputs, bash_app,
                      python_app)


def test_file_from_path_and_file_url():
    f = File("file:///tmp/data/a.txt")
    assert (f.url, f.scheme, f.filepath, f.filename) == (
        "file:///tmp/data/a.txt", "file", "/tmp/data/a.txt", "a.txt")
    g = File("data/b.txt")
    assert (g.scheme, g.filepath, os.fspath(g), f"{g}") == ("file",) + ("data/b.txt",) * 3
    assert File(g) == g and File(os.path.join("data", "b.txt")) == g


def test_file_pickles_hashes_and_tokenizes():
    from dask.base import tokenize

    f = File("/tmp/x.txt")
    assert pickle.loads(pickle.dumps(f)) == f
    assert hash(File("/tmp/x.txt")) == hash(f)
    assert tokenize(File("/tmp/x.txt")) == tokenize(f)
    assert tokenize(File("/tmp/y.txt")) != tokenize(f)


def test_file_is_immutable_and_validated():
    f = File("/tmp/x")
    with pytest.raises(AttributeError):
        f.url = "/tmp/y"
    with pytest.raises(TypeError, match="non-empty path or URL"):
        File("")
    with pytest.raises(TypeError):
        File(3)


def test_remote_file_has_no_local_path_until_staged():
    f = File("https://example.org/data/x.csv")
    assert (f.scheme, f.netloc, f.path, f.filename) == ("https", "example.org",
                                                        "/data/x.csv", "x.csv")
    with pytest.raises(ValueError, match="has not been staged"):
        f.filepath
    assert str(f) == "https://example.org/data/x.csv"


@bash_app
def write(text, outputs=()):
    return f"echo {text} > {outputs[0]}"


@python_app
def read(inputs=()):
    return [open(f).read().strip() for f in inputs]


def test_outputs_give_data_futures(client, tmp_path):
    target = File(str(tmp_path / "out.txt"))
    f = write("hello", outputs=[target])
    assert len(f.outputs) == 1
    df = f.outputs[0]
    assert isinstance(df, DataFuture)
    assert df.result(timeout=30) == target
    assert df.result().filepath == target.filepath
    assert df.tid == f.tid
    assert open(target).read() == "hello\n"
    assert f.result() == 0


def test_data_future_feeds_the_next_app(client, tmp_path):
    files = [File(str(tmp_path / f"{i}.txt")) for i in range(3)]
    produced = [write(str(i), outputs=[files[i]]).outputs[0] for i in range(3)]
    assert read(inputs=produced).result() == ["0", "1", "2"]


def test_outputs_accept_plain_paths(client, tmp_path):
    f = write("p", outputs=[str(tmp_path / "p.txt")])
    assert isinstance(f.outputs[0].result(), File)


def test_missing_output_raises_missing_outputs(client, tmp_path):
    @bash_app
    def forgets(outputs=()):
        return "true"

    target = str(tmp_path / "never.txt")
    f = forgets(outputs=[File(target)])
    with pytest.raises(MissingOutputs) as info:
        f.outputs[0].result(timeout=30)
    assert info.value.missing == [target]
    assert f"did not create its declared outputs: {target}" in str(info.value)
    with pytest.raises(MissingOutputs):
        f.result()
    with pytest.raises(DependencyError, match="forgets"):
        read(inputs=[f.outputs[0]]).result()


def test_python_app_outputs_are_checked_too(client, tmp_path):
    @python_app
    def make(outputs=()):
        with open(outputs[0], "w") as fh:
            fh.write("made")

    ok = make(outputs=[File(str(tmp_path / "made.txt"))])
    assert ok.outputs[0].result(timeout=30).filepath.endswith("made.txt")


def test_data_future_of_a_failed_app_raises_its_error(client, tmp_path):
    @bash_app
    def fails(outputs=()):
        return "exit 4"

    from daskflow import BashExitFailure

    f = fails(outputs=[File(str(tmp_path / "x"))])
    with pytest.raises(BashExitFailure, match="code 4"):
        f.outputs[0].result(timeout=30)
    assert isinstance(f.outputs[0].exception(), BashExitFailure)


def test_missing_input_file_is_a_clear_error(client, tmp_path):
    missing = str(tmp_path / "absent.txt")
    f = read(inputs=[File(missing)])
    with pytest.raises(MissingInputs, match=f"input files do not exist: {missing}"):
        f.result()
    assert isinstance(f.exception(), MissingInputs)


def test_unknown_scheme_is_refused_at_call_time(client):
    with pytest.raises(ValueError, match="scheme 'nosuch'"):
        read(inputs=[File("nosuch://example.org/x")])


def test_file_in_bash_f_string(client, tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("payload\n")
    f_in, f_out = File(str(src)), File(str(tmp_path / "copy.txt"))

    @bash_app
    def copy(inputs=(), outputs=()):
        return f"cp {inputs[0]} {outputs[0]}"

    assert copy(inputs=[f_in], outputs=[f_out]).outputs[0].result(timeout=30) == f_out
    assert open(f_out).read() == "payload\n"


def test_cleancopy_drops_the_local_path_and_keeps_the_url():
    staged = File("https://example.org/x.csv").with_local_path("/tmp/x.csv")
    assert staged.filepath == "/tmp/x.csv"
    clean = staged.cleancopy()
    assert (clean.url, clean.local_path, clean) == (staged.url, None, File(staged.url))
    assert pickle.loads(pickle.dumps(staged)) == staged
