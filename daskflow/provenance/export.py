"""Exports of a run's provenance: Graphviz DOT, a JSON graph, W3C PROV-JSON.

Each function takes a :class:`daskflow.provenance.ProvenanceStore` (readonly
or not) and reads it; nothing is written. What they export is redacted once
more (``daskflow.redaction``): a database written by an older daskflow may
hold URL passwords or signed query strings.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..docstrings import filled
from ..redaction import redact_batch

if TYPE_CHECKING:  # pragma: no cover
    from .store import ProvenanceStore

COLORS = {"pending": "lightgrey", "running": "lightblue", "done": "palegreen",
          "failed": "salmon", "memo": "lightcyan", "cancelled": "gray"}
NODE_FIELDS = ("key", "tid", "app", "state", "memo", "tries", "submitted", "started",
               "finished", "duration", "worker", "host", "exception", "exit_code",
               "chunk_key", "chunk_index", "nbytes")
PROV_NS = "http://www.w3.org/ns/prov#"
DASKFLOW_NS = "urn:daskflow:"

_STORE = filled({"store": """\
store : ProvenanceStore
    The run's database, open (readonly or not); only read.
"""})


def _redacted(rows: list[dict]) -> list[dict]:
    return redact_batch({"rows": rows})["rows"]


def _dot_str(s) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@_STORE
def to_dot(store: ProvenanceStore) -> str:
    """The task graph in Graphviz DOT.

    One node per task (id: its Dask key), labelled ``"app tid"`` and filled
    with the colour of its state (``COLORS``); one edge per dependency,
    from the task used to the task using it.

    Parameters
    ----------
    %(store)s

    Returns
    -------
    str
        The DOT text; render it with ``dot -Tsvg``.
    """
    lines = ["digraph daskflow {", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    tasks = _redacted(store.tasks())
    for t in tasks:
        label = f"{t['app'] or '?'} {t['tid'] if t['tid'] is not None else t['key']}"
        color = COLORS.get(t["state"], "white")
        tooltip = t["exception"] or t["state"]
        lines.append(f"  {_dot_str(t['key'])} [label={_dot_str(label)}, fillcolor={_dot_str(color)},"
                     f" tooltip={_dot_str(tooltip)}];")
    known = {t["key"] for t in tasks}
    for key, dep in store.dependencies(by="key"):
        if key in known and dep in known:
            lines.append(f"  {_dot_str(dep)} -> {_dot_str(key)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


@_STORE
def to_json(store: ProvenanceStore) -> dict:
    """The task graph as a JSON-ready dict.

    Parameters
    ----------
    %(store)s

    Returns
    -------
    dict
        ``{"run": {...}, "nodes": [...], "edges": [...]}``. Nodes are dicts
        of ``NODE_FIELDS`` plus ``id`` (the Dask key) and ``files``
        (``direction``, ``url``, ``size``, ``checksum``); edges are
        ``{"source": depends_on_key, "target": key}`` (data flows source →
        target); dependencies on keys that are not recorded tasks are left
        out.
    """
    files: dict = {}
    for f in _redacted(store.files()):
        files.setdefault(f["key"], []).append({k: f[k] for k in ("direction", "url", "size", "checksum")})
    nodes = [{"id": t["key"], **{k: t[k] for k in NODE_FIELDS}, "files": files.get(t["key"], [])}
             for t in _redacted(store.tasks())]
    known = {n["id"] for n in nodes}
    edges = [{"source": dep, "target": key} for key, dep in store.dependencies(by="key")
             if key in known and dep in known]
    runs = store.runs()
    return {"run": runs[0] if runs else None, "nodes": nodes, "edges": edges}


def _time(t) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat()


def _datetime(t) -> dict | None:
    """A time as a typed literal (``xsd:dateTime``), for attributes that
    PROV does not type itself."""
    return None if t is None else {"$": _time(t), "type": "xsd:dateTime"}


def _qn(kind: str, name) -> str:
    """A qualified name in the daskflow namespace (the local part percent-encoded)."""
    return f"daskflow:{kind}/{quote(str(name), safe='-_.~')}"


def _attrs(**kw) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


@_STORE
def to_prov(store: ProvenanceStore) -> dict:
    """The run in W3C PROV-JSON (https://www.w3.org/Submission/prov-json/).

    Parameters
    ----------
    %(store)s

    Returns
    -------
    dict
        The PROV-JSON document, as described below.

    Notes
    -----
    - the run is a ``prov:SoftwareAgent`` (``daskflow:run/NNN``) acting on
      behalf of its user (a ``prov:Person``), following its script (an entity
      of type ``prov:Plan``);
    - each task is an activity (``daskflow:task/KEY``, with ``prov:startTime``
      / ``prov:endTime``, ``daskflow:app``, ``daskflow:tid``,
      ``daskflow:state``), associated with the run (``wasAssociatedWith``,
      with the script as plan);
    - each task that produced a value (state done or memo) generates an
      entity ``daskflow:result/KEY``; a task using it has ``used`` it and
      ``wasInformedBy`` the task that made it (``wasInformedBy`` alone when
      the upstream task made no value);
    - each File is an entity ``daskflow:file/URL`` (``prov:location`` the
      URL), ``used`` by the tasks that took it as input and
      ``wasGeneratedBy`` those that wrote it;
    - what a task generated (its result, the Files it wrote)
      ``wasDerivedFrom`` what it used (the results of the tasks it depends
      on, the Files it read), naming the task.

    The document loads in the ``prov`` package
    (``prov.model.ProvDocument.deserialize(content=..., format="json")``);
    tests/test_prov_export.py checks that it round-trips.
    """
    runs = store.runs()
    run = runs[0] if runs else {}
    run_id = _qn("run", run.get("run_id", "unknown"))
    doc: dict = {
        "prefix": {"prov": PROV_NS, "daskflow": DASKFLOW_NS,
                   "xsd": "http://www.w3.org/2001/XMLSchema#"},
        "agent": {}, "activity": {}, "entity": {}, "used": {}, "wasGeneratedBy": {},
        "wasInformedBy": {}, "wasDerivedFrom": {}, "wasAssociatedWith": {},
        "actedOnBehalfOf": {},
    }
    counter = iter(range(1, 1 << 62))

    def relation(kind: str, **attrs) -> str:
        rel_id = f"_:{kind}{next(counter)}"
        doc[kind][rel_id] = _attrs(**attrs)
        return rel_id

    used: dict[str, list[str]] = {}  # activity -> the entities it used
    generated: dict[str, list[str]] = {}  # activity -> the entities it generated

    def use(act: str, ent: str) -> None:
        used.setdefault(act, []).append(ent)
        relation("used", **{"prov:activity": act, "prov:entity": ent})

    def generate(ent: str, act: str, t) -> None:
        generated.setdefault(act, []).append(ent)
        relation("wasGeneratedBy", **{"prov:entity": ent, "prov:activity": act,
                                      "prov:time": _time(t)})

    doc["agent"][run_id] = _attrs(**{
        "prov:type": {"$": "prov:SoftwareAgent", "type": "prov:QUALIFIED_NAME"},
        "prov:label": f"daskflow run {run.get('run_id', '?')}",
        "daskflow:script": run.get("script"), "daskflow:host": run.get("host"),
        "daskflow:cwd": run.get("cwd"), "daskflow:status": run.get("status"),
        "daskflow:scheduler": run.get("scheduler"), "daskflow:profile": run.get("profile"),
        "daskflow:startTime": _datetime(run.get("start_time")),
        "daskflow:endTime": _datetime(run.get("end_time"))})
    plan = None
    if run.get("script"):
        plan = _qn("script", run["script"])
        doc["entity"][plan] = {"prov:type": {"$": "prov:Plan", "type": "prov:QUALIFIED_NAME"},
                               "prov:label": run["script"]}
    if run.get("user"):
        user = _qn("user", run["user"])
        doc["agent"][user] = {"prov:type": {"$": "prov:Person", "type": "prov:QUALIFIED_NAME"},
                              "prov:label": run["user"]}
        relation("actedOnBehalfOf", **{"prov:delegate": run_id, "prov:responsible": user})

    tasks = _redacted(store.tasks())
    finished = {t["key"]: t["finished"] for t in tasks}
    made_value = set()
    for t in tasks:
        act = _qn("task", t["key"])
        doc["activity"][act] = _attrs(**{
            "prov:startTime": _time(t["started"]), "prov:endTime": _time(t["finished"]),
            "prov:label": f"{t['app']} {t['tid']}", "daskflow:app": t["app"],
            "daskflow:tid": t["tid"], "daskflow:state": t["state"], "daskflow:key": t["key"],
            "daskflow:memo": t["memo"], "daskflow:tries": t["tries"],
            "daskflow:worker": t["worker"], "daskflow:exception": t["exception"]})
        relation("wasAssociatedWith", **{"prov:activity": act, "prov:agent": run_id, "prov:plan": plan})
        if t["state"] in ("done", "memo"):
            made_value.add(t["key"])
            result = _qn("result", t["key"])
            doc["entity"][result] = _attrs(**{"prov:label": f"result of {t['app']} {t['tid']}",
                                              "daskflow:nbytes": t["nbytes"]})
            generate(result, act, t["finished"])
    known = {t["key"] for t in tasks}
    for key, dep in store.dependencies(by="key"):
        if key not in known or dep not in known:
            continue
        act, upstream = _qn("task", key), _qn("task", dep)
        relation("wasInformedBy", **{"prov:informed": act, "prov:informant": upstream})
        if dep in made_value:
            use(act, _qn("result", dep))
    for f in _redacted(store.files()):
        if f["key"] not in known:
            continue
        ent = _qn("file", f["url"])
        doc["entity"].setdefault(ent, _attrs(**{
            "prov:label": f["url"], "prov:location": f["url"],
            "daskflow:size": f["size"], "daskflow:checksum": f["checksum"]}))
        act = _qn("task", f["key"])
        if f["direction"] == "in":
            use(act, ent)
        else:
            generate(ent, act, finished[f["key"]])
    # derivations name their activity, not the generation and usage: those
    # are blank nodes ("_:..."), which the prov package cannot refer to
    for act, outputs in generated.items():
        for out in outputs:
            for inp in used.get(act, ()):
                if inp != out:  # a File the task rewrote in place
                    relation("wasDerivedFrom", **{"prov:generatedEntity": out,
                                                  "prov:usedEntity": inp, "prov:activity": act})
    return {k: v for k, v in doc.items() if v or k == "prefix"}
