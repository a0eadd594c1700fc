"""What a call ships pickles once: daskflow's own pickles (an app's function,
a packed argument, a call's description) do not show distributed the bytes
``__main__``, which would make it pickle the whole task again with
cloudpickle; and they load back exactly."""

from __future__ import annotations

import os
import pickle

import cloudpickle
from distributed.protocol.pickle import dumps as distributed_dumps

from daskflow.provenance.calls import _Each
from daskflow.shipped import AppDef, Opaque, Options, Packed, RunSettings, Shared, opaque


def _script_function():
    def double(x):
        return 2 * x

    double.__module__ = "__main__"  # as in a script or notebook: pickled by value
    return double


def test_opaque_round_trips_any_bytes():
    samples = [b"", b"_", b"__", b"__main__", b"_\x00", b"_\x00\x00__main__\x00_",
               os.urandom(4096) + b"__main__" + os.urandom(100)]
    for blob in samples:
        assert pickle.loads(pickle.dumps(opaque(blob))) == blob
        assert b"__main__" not in pickle.dumps(opaque(blob))


def test_opaque_leaves_other_bytes_as_they_are():
    blob = b"no main here"
    assert opaque(blob) is blob
    assert type(opaque(b"x__main__")) is Opaque


def test_a_script_app_is_pickled_once_and_loads():
    app = AppDef(_script_function(), "double", "python", None, "__main__.double:abc")
    data = pickle.dumps(app)
    assert b"__main__" not in data
    loaded = pickle.loads(data)
    assert loaded.func(21) == 42 and loaded.identity == "__main__.double:abc"
    # distributed keeps plain pickle's output: no cloudpickle pass
    assert distributed_dumps(app) == pickle.dumps(app, protocol=pickle.HIGHEST_PROTOCOL)


def test_a_packed_argument_of_a_script_type_loads():
    value = _script_function()
    packed = Packed(cloudpickle.dumps(value), "__main__.double")
    data = pickle.dumps(packed)
    assert b"__main__" not in data
    back = pickle.loads(data)
    assert back.load()(5) == 10
    assert (back.blob, back.type_name) == (packed.blob, "__main__.double")


def test_a_description_naming_main_loads():
    each = _Each(pickle.dumps({"k": {"app": "double", "hash": "__main__.double:abc"}}))
    data = pickle.dumps(each)
    assert b"__main__" not in data
    assert pickle.loads(data)("k") == {"app": "double", "hash": "__main__.double:abc"}


def test_settings_pickle_to_their_fields():
    run = RunSettings("tok", report=True, checkpoint="file:///x")
    opts = Options(walltime=3.0, retries=2, run=run, limits=(("lic", 1, 2),))
    back = pickle.loads(pickle.dumps(opts))
    assert (back.walltime, back.retries, back.limits) == (3.0, 2, (("lic", 1, 2),))
    assert (back.run.token, back.run.report, back.run.checkpoint) == ("tok", True, "file:///x")


def test_a_shared_argument_of_a_script_type_keeps_its_name():
    data = pickle.dumps(Shared(7, "__main__.Lock"))
    assert b"__main__" not in data
    back = pickle.loads(data)
    assert (back.token, back.type_name) == (7, "__main__.Lock")
