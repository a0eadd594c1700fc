"""What the client tells the provenance plugin about each call it submits.

The plugin records one row per app call. The scheduler alone knows a task's
key, its dependencies and its transitions, but not which app it calls, with
which arguments, nor which calls a chunk holds. The client knows, and says
so in a Dask annotation (``ANNOTATION``) on the call's task: a small dict,
its *description*. Annotations travel with the graph, so the plugin reads
the description in the same ``update_graph`` hook that sees the task appear
(``SchedulerPlugin.update_graph(annotations=...)``, distributed's public
plugin API), then drops it from the task, which its worker need not get
(``dask_internals.drop_annotation``). Nothing of the task body (its
function, its parameters) matters to the record.

A description is one of

* a call: ``{"app", "tid", "hash", "args", ["bash"], ["streams"], ["members"]}``
* a chunk of calls: ``{"app", "hash", ["bash"], ["streams"], "calls": [(tid, args, members), ...]}``
* an output File of a call: ``{"output": text}``

where ``args`` is the call's arguments as text (futures shown by the key
they stand for, see ``arguments``) and ``members`` the ``(chunk key,
index)`` of the chunked calls whose results the call uses (``(key,
None)``: another task's). ``rows`` turns a
description and the task's dependency keys into the plugin's rows.
"""

from __future__ import annotations

import pickle
from contextlib import contextmanager
from operator import is_not
from typing import Any, Callable

import dask
from distributed import Future

from ..shipped import MemberRef, opaque
from ..signing import arguments_digest
from ..sites.routing import upstream_key

ANNOTATION = "daskflow"
TEXT_LIMIT = 300  # characters of arguments kept as text


@contextmanager
def described(by_key: dict, sent: Callable[[int], None] | None = None):
    """A context in which each task submitted carries its description
    (``by_key[task key]``), as ``(call, pickle)``: ``call_of`` it, and the
    description pickled on its own. The scheduler's plugin needs only the
    first; the pickle goes on to the run's writer (``opened``) as one bytes
    object, where a chunk's description unpickled would be hundreds of
    objects living in the scheduler's process until the next batch, for
    its garbage collector to scan. ``sent(n)`` is told how many
    descriptions went, once the submission in the context returned."""
    sealed = {key: (call_of(desc), pickle.dumps(desc, protocol=5))
              for key, desc in by_key.items()}
    with dask.annotate(**{ANNOTATION: _Each(pickle.dumps(sealed, protocol=5))}):
        yield
    if sent is not None:
        sent(len(sealed))


@contextmanager
def described_for_later(by_key: dict):
    """``described`` for a graph built now and computed later, maybe never
    (``App.delayed``): Dask may copy the annotation and call each copy with
    the keys of a merged graph, so every copy answers for its own keys only
    and is never used up; nothing is counted as sent."""
    sealed = {key: (call_of(desc), pickle.dumps(desc, protocol=5))
              for key, desc in by_key.items()}
    with dask.annotate(**{ANNOTATION: _Own(sealed)}):
        yield


class _Own:
    """Descriptions by key, handed out to any caller asking for its key."""

    __slots__ = ("sealed",)

    def __init__(self, sealed: dict):
        self.sealed = sealed

    def __reduce__(self):
        return (_Own, (self.sealed,))

    def __call__(self, key):
        return self.sealed.get(key)


def opened(desc):
    """A description as ``described`` sealed it (or as it is, not sealed)."""
    return pickle.loads(desc) if type(desc) is bytes else desc


class _Each:
    """Descriptions by key, each handed out once: the scheduler calls the
    annotation with each new task's key.

    They travel pickled, as one bytes object: distributed keeps the messages
    of its last 1000 sends (``BatchedSend``'s log) and each graph's
    annotations (``Computation.annotations``), so what stays on the client
    is that one object, and on the scheduler an emptied dict.
    """

    __slots__ = ("blob", "by_key")

    def __init__(self, blob: bytes):
        self.blob = blob
        self.by_key: dict | None = None

    def __reduce__(self):  # opaque: a script's app names __main__ (see shipped.Opaque)
        return (_Each, (opaque(self.blob),))

    def __call__(self, key):
        if self.by_key is None:
            self.by_key, self.blob = pickle.loads(self.blob), b""
        return self.by_key.pop(key, None)


# ------------------------------------------------------------ client side
def of_call(app, tid, text: str, members: tuple, opts) -> dict[str, Any]:
    """The description of one call of ``app`` (an ``AppDef``)."""
    desc = {"app": app.name, "tid": tid, "hash": app.identity, "args": text}
    _common(desc, app, opts)
    if members:
        desc["members"] = members
    return desc


def of_chunk(app, opts, calls: list[tuple]) -> dict[str, Any]:
    """The description of a chunk: ``calls`` are ``(tid, text, members)``."""
    desc = {"app": app.name, "hash": app.identity, "calls": calls}
    _common(desc, app, opts)
    return desc


def of_output(file) -> dict[str, str]:
    """The description of the task that hands out an output File of a call."""
    return {"output": _cut(_repr((file,)))}


def _common(desc: dict, app, opts) -> None:
    if app.kind == "bash":
        desc["bash"] = True
    if opts.stdout is not None or opts.stderr is not None:
        streams = {name: _stream(getattr(opts, name)) for name in ("stdout", "stderr")}
        desc["streams"] = {k: v for k, v in streams.items() if v is not None}


def arguments(args: tuple, kwargs: dict) -> tuple[str, tuple]:
    """A call's arguments as the task gets them: ``(text, members)``.

    The text is their repr, each future shown as ``<future KEY>`` (a relay
    as the future it copies, a chunked call as ``<future CHUNK[i]>``), so
    that equal calls give equal texts whatever their futures' states.
    ``members`` lists the ``(chunk key, index)`` of the chunked calls used,
    and ``(key, None)`` of the other futures (a packed call's dependencies
    are known from these alone).
    """
    if _plain(args) and _plain(kwargs.values()):  # the common case: no walk
        return _repr((args, kwargs)), ()
    members: list[tuple] = []
    try:
        shown = _shown((args, kwargs), members)
    except Exception:  # a namedtuple of the user's that cannot be rebuilt: shown as it is
        return _repr((args, kwargs)), tuple(dict.fromkeys(members))
    return _repr(shown), tuple(dict.fromkeys(members))


_ATOMS = frozenset((str, bytes, int, float, bool, type(None), complex))


def _plain(values) -> bool:
    for value in values:
        if type(value) not in _ATOMS:
            return False
    return True


class _Shown:
    """Stands for a future in the arguments' text."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _shown(obj, members: list):
    """``obj`` with its futures replaced by ``_Shown`` (``obj`` itself if it has none)."""
    cls = type(obj)
    if cls in _ATOMS:
        return obj
    if isinstance(obj, Future):
        index = getattr(obj, "index", None)  # an AppFuture of a chunked call
        if index is not None:
            return _member(obj.key, index, members)
        key = upstream_key(obj.key)
        members.append((key, None))
        return _Shown(f"<future {key}>")
    if cls is tuple and len(obj) == 3 and obj[0] is MemberRef:
        return _member(obj[1], obj[2], members)
    if isinstance(obj, (tuple, list, set, frozenset)):
        items = [_shown(o, members) for o in obj]
        if not any(map(is_not, items, obj)):
            return obj
        if hasattr(cls, "_fields"):
            return cls(*items)
        return (cls if cls in _COLLECTIONS else _builtin(obj))(items)
    if isinstance(obj, dict):
        values = [_shown(v, members) for v in obj.values()]
        if not any(map(is_not, values, obj.values())):
            return obj
        return dict(zip(obj, values))
    return obj


_COLLECTIONS = (tuple, list, set, frozenset)


def _builtin(obj) -> type:
    """The builtin collection a subclass instance travels as (Dask's task
    spec rebuilds a list, tuple or set holding futures as the plain one)."""
    return next(base for base in _COLLECTIONS if isinstance(obj, base))


def _member(key, index, members: list) -> _Shown:
    key = upstream_key(key)
    members.append((key, index))
    return _Shown(f"<future {key}[{index}]>")


def _stream(target) -> str | None:
    """Where a bash app's stream went: a path (a ``(path, mode)`` gives its path)."""
    if target is None:
        return None
    path = target[0] if isinstance(target, tuple) else target
    return str(path)


def _repr(value) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a user's __repr__ may fail
        return f"<unrepresentable: {exc!r}>"


def _cut(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------- scheduler side
def rows(key: str, when: float, desc: dict, dependencies) -> list[dict]:
    """The plugin's rows for a new task: one per app call (a chunk holds
    many). ``dependencies`` are the keys of the tasks it depends on."""
    if "output" in desc:
        return [{"key": key, "tid": key.rsplit("-", 2)[-2], "app": "output", "app_hash": None,
                 "args": desc["output"], "submitted": when, "chunk_key": None, "index": None,
                 "deps": {upstream_key(d) for d in dependencies}}]
    common = {"app": desc["app"], "app_hash": desc["hash"], "submitted": when,
              "streams": desc.get("streams") or {}, "bash": bool(desc.get("bash"))}

    def row(ident, tid, text, deps, chunk_key=None, index=None) -> dict:
        return {"key": ident, "tid": str(tid), "args": _cut(text),
                "args_digest": arguments_digest(text),  # kept instead of args unless recorded
                "chunk_key": chunk_key, "index": index, "deps": deps, **common}

    if "calls" in desc:
        return [row(f"{key}[{i}]", tid, text, _member_keys(members), key, i)
                for i, (tid, text, members) in enumerate(desc["calls"])]
    deps = {upstream_key(d) for d in dependencies}
    members = desc.get("members") or ()
    if members:
        deps -= {chunk for chunk, _ in members}
        deps |= _member_keys(members)
    return [row(key, desc["tid"], desc["args"], deps)]


def _member_keys(members) -> set[str]:
    return {chunk if index is None else f"{chunk}[{index}]" for chunk, index in members}


def call_of(desc) -> tuple[str, object] | None:
    """(app name, tid) of a description, if it is one app call."""
    if isinstance(desc, dict) and "tid" in desc:
        return desc["app"], desc["tid"]
    return None
