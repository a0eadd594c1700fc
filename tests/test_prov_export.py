"""The PROV-JSON export read back by the ``prov`` package (the W3C PROV
reference implementation for Python): every element and relation of a small
synthetic run survives parsing and a round trip, with no warning."""

from __future__ import annotations

import json
import os
import warnings

import pytest

from daskflow.provenance.export import to_prov
from daskflow.provenance.store import DB_NAME, ProvenanceStore, new_run_dir

prov_model = pytest.importorskip("prov.model")

T0 = 1_700_000_000.0
GEN, SIM1, SIM2, ANALYZE, REPORT = (f"{app}-{tid}-tok" for app, tid in (
    ("generate", 0), ("simulate", 1), ("simulate", 2), ("analyze", 3), ("report", 4)))
# key, tid, app, final state, started, finished
TASKS = [(GEN, "0", "generate", "done", T0 + 1, T0 + 2), (SIM1, "1", "simulate", "done", T0 + 2, T0 + 5),
         (SIM2, "2", "simulate", "memo", None, None), (ANALYZE, "3", "analyze", "failed", T0 + 5, T0 + 6),
         (REPORT, "4", "report", "cancelled", None, None)]
DEPS = [(SIM1, GEN), (SIM2, GEN), (ANALYZE, SIM1), (ANALYZE, SIM2), (REPORT, ANALYZE)]
GEN_TXT, SIM_TXT = "file:///data/gen.txt", "file:///data/sim 1.txt"
FILES = [{"key": GEN, "direction": "out", "url": GEN_TXT, "size": 12, "checksum": "sha256:abc"},
         {"key": SIM1, "direction": "in", "url": GEN_TXT},
         {"key": SIM1, "direction": "out", "url": SIM_TXT, "size": 7}]


def task(key):
    return "daskflow:task/" + key


def result(key):
    return "daskflow:result/" + key


FILE = {GEN_TXT: "daskflow:file/file%3A%2F%2F%2Fdata%2Fgen.txt",
        SIM_TXT: "daskflow:file/file%3A%2F%2F%2Fdata%2Fsim%201.txt"}
RUN, USER, PLAN = "daskflow:run/000", "daskflow:user/alice", "daskflow:script/wf.py"


@pytest.fixture
def exported(tmp_path):
    run_id, path = new_run_dir(str(tmp_path / "runinfo"))
    with ProvenanceStore(os.path.join(path, DB_NAME)) as store:
        store.start_run({"run_id": run_id, "script": "wf.py", "user": "alice", "host": "node1",
                         "start": T0})
        store.record({"tasks": [{"key": k, "tid": tid, "app": app, "submitted": T0}
                                for k, tid, app, *_ in TASKS],
                      "deps": DEPS, "files": FILES,
                      "updates": [{"key": k, "state": st, "started": s, "finished": f,
                                   "worker": "tcp://w1" if s else None}
                                  for k, _, _, st, s, f in TASKS]})
        store.end_run(run_id, T0 + 10, "failed")
    with ProvenanceStore(os.path.join(path, DB_NAME), readonly=True) as store:
        return json.dumps(to_prov(store))


def parse(content: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. prov's warnings about names it will reject
        return prov_model.ProvDocument.deserialize(content=content, format="json")


def records(doc, cls, *attrs) -> set[tuple]:
    """The records of a class, each as the tuple of the named formal attributes."""
    found = set()
    for rec in doc.get_records(cls):
        formal = {str(k): v for k, v in rec.formal_attributes}
        found.add(tuple(None if formal.get(a) is None else str(formal[a]) for a in attrs))
    return found


def test_elements(exported):
    doc = parse(exported)
    acts = {str(a.identifier): a for a in doc.get_records(prov_model.ProvActivity)}
    assert set(acts) == {task(k) for k, *_ in TASKS}
    sim = acts[task(SIM1)]
    assert sim.get_startTime().timestamp() == T0 + 2 and sim.get_endTime().timestamp() == T0 + 5
    attrs = {str(k): v for k, v in sim.extra_attributes}
    assert (attrs["daskflow:app"], attrs["daskflow:tid"], attrs["daskflow:state"]) == \
        ("simulate", "1", "done")
    assert acts[task(SIM2)].get_startTime() is None  # a memo hit did not run
    ents = {str(e.identifier): e for e in doc.get_records(prov_model.ProvEntity)}
    assert set(ents) == {PLAN, result(GEN), result(SIM1), result(SIM2), *FILE.values()}
    assert [str(v) for v in ents[PLAN].get_asserted_types()] == ["prov:Plan"]
    assert str(next(iter(ents[FILE[SIM_TXT]].get_attribute("prov:location")))) == SIM_TXT
    agents = {str(a.identifier): [str(t) for t in a.get_asserted_types()]
              for a in doc.get_records(prov_model.ProvAgent)}
    assert agents == {RUN: ["prov:SoftwareAgent"], USER: ["prov:Person"]}
    run = next(a for a in doc.get_records(prov_model.ProvAgent) if str(a.identifier) == RUN)
    started = next(iter(run.get_attribute("daskflow:startTime")))
    assert started.timestamp() == T0  # a typed xsd:dateTime, not a string


def test_relations(exported):
    doc = parse(exported)
    assert records(doc, prov_model.ProvUsage, "prov:activity", "prov:entity") == {
        (task(SIM1), result(GEN)), (task(SIM2), result(GEN)), (task(SIM1), FILE[GEN_TXT]),
        (task(ANALYZE), result(SIM1)), (task(ANALYZE), result(SIM2))}
    assert records(doc, prov_model.ProvGeneration, "prov:entity", "prov:activity") == {
        (result(GEN), task(GEN)), (result(SIM1), task(SIM1)), (result(SIM2), task(SIM2)),
        (FILE[GEN_TXT], task(GEN)), (FILE[SIM_TXT], task(SIM1))}
    assert records(doc, prov_model.ProvAssociation, "prov:activity", "prov:agent", "prov:plan") == \
        {(task(k), RUN, PLAN) for k, *_ in TASKS}
    assert records(doc, prov_model.ProvDerivation,
                   "prov:generatedEntity", "prov:usedEntity", "prov:activity") == {
        (result(SIM1), result(GEN), task(SIM1)), (result(SIM1), FILE[GEN_TXT], task(SIM1)),
        (FILE[SIM_TXT], result(GEN), task(SIM1)), (FILE[SIM_TXT], FILE[GEN_TXT], task(SIM1)),
        (result(SIM2), result(GEN), task(SIM2))}
    assert records(doc, prov_model.ProvCommunication, "prov:informed", "prov:informant") == \
        {(task(k), task(d)) for k, d in DEPS}
    assert records(doc, prov_model.ProvDelegation, "prov:delegate", "prov:responsible") == \
        {(RUN, USER)}


def test_round_trip(exported):
    doc = parse(exported)
    again = parse(doc.serialize(format="json"))
    assert again == doc
    assert len(again.get_records()) == len(doc.get_records()) == \
        sum(len(v) for k, v in json.loads(exported).items() if k != "prefix")
    provn = again.get_provn()
    for keyword in ("used(", "wasGeneratedBy(", "wasAssociatedWith(", "wasDerivedFrom(",
                    "wasInformedBy(", "actedOnBehalfOf("):
        assert keyword in provn
