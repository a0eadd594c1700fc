"""Every daskflow error names the app, the task id and the cause, pickles,
and reaches the client as its own class."""

from __future__ import annotations

import pickle

import pytest

from daskflow import errors, python_app

SAMPLES = [
    errors.BashExitFailure("app", 3, 2, "/tmp/err"),
    errors.AppTimeout("app", 3, 1.5),
    errors.DependencyError("app", 3, "up", 1, ValueError("bad")),
    errors.JoinError("app", 3, "2 of 2 failed", [("a", "3.1", KeyError("k"))]),
    errors.MissingOutputs("app", 3, ["/tmp/x"]),
    errors.MissingInputs("app", 3, ["/tmp/y"]),
    errors.BadCommand("app", 3, "int: 1"),
    errors.RemoteError("app", 3, "Weird", "text"),
    errors.RemoteError("app", 3, "Weird", "text", "message too long: 20000 characters"),
    errors.UnserializableResult("app", 3, "_thread.lock", "TypeError: cannot pickle"),
    errors.AppNotLoadable("app", 3, "ModuleNotFoundError: No module named 'm'"),
]


@pytest.mark.parametrize("err", SAMPLES, ids=lambda e: type(e).__name__)
def test_error_names_app_and_tid_and_pickles(err):
    text = str(err)
    assert "'app'" in text and "tid 3" in text
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err) and str(copy) == text
    assert isinstance(err, errors.DaskflowError)


@pytest.mark.parametrize("err", SAMPLES, ids=lambda e: type(e).__name__)
def test_worker_raised_error_reaches_the_client_as_its_class(client, err):
    @python_app
    def raise_it(e):
        raise e

    with pytest.raises(type(err)) as info:
        raise_it(err).result()
    assert str(info.value) == str(err)


def test_dependency_error_message_stays_short():
    err = errors.DependencyError("app", 1, "up", 0, ValueError("x" * 50_000))
    assert len(str(err)) < 10_000


def test_join_error_lists_at_most_five_failures():
    err = errors.JoinError("j", 1, "7 failed", [("a", i, ValueError(i)) for i in range(7)])
    assert "and 2 more" in str(err)


def test_long_app_error_keeps_its_origin(client):
    """distributed rebuilds messages over 10,000 characters; daskflow cuts the
    message and keeps the class (it rebuilds from a message alone), and the
    origin, so dependents still name the app."""

    @python_app
    def long_error():
        raise ValueError("y" * 20_000)

    @python_app
    def after(x):
        return x

    f = long_error()
    with pytest.raises(ValueError, match="cut: the message had 20000 characters") as info:
        f.result()
    assert len(str(info.value)) < 10_000
    with pytest.raises(errors.DependencyError, match="long_error"):
        after(f).result()


def test_long_error_of_a_class_that_cannot_be_rebuilt_says_too_long(client):
    """A 1 MB message of an exception whose class takes other arguments: a
    RemoteError that says the message was too long, not "not picklable"."""

    class Detailed(Exception):
        def __init__(self, code, text):
            super().__init__(code, text)

        def __str__(self):
            return f"code {self.args[0]}: {self.args[1]}"

    @python_app
    def huge():
        raise Detailed(7, "z" * 1_000_000)

    with pytest.raises(errors.RemoteError) as info:
        huge().result()
    text = str(info.value)
    assert "message too long: 1000008 characters" in text and "not picklable" not in text
    assert "'huge'" in text and len(text) < 10_000
