"""The house rules of daskflow's layout (docs/architecture.md), read from the
source: no import cycles, the ground floor imports no room, the worker side
never imports the client side or site provisioning, and distributed's
private modules are reached only through ``daskflow.dask_internals``.

Every import counts, also those inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "daskflow"
ROOMS = ("client", "worker", "provenance", "memo", "cli", "sites", "staging", "dashboard",
         "parsl")
# what each room may import besides the ground floor and itself
ALLOWED = {
    "worker": {"memo", "provenance", "staging"},
    "memo": {"provenance", "staging"},
    "staging": set(),
    "provenance": {"dashboard", "sites"},
    "dashboard": set(),
    "sites": {"worker"},
    "client": {"worker", "memo", "provenance", "staging", "sites", "dashboard"},
    "cli": {"client", "provenance", "memo", "sites", "staging", "parsl", "dashboard"},
    "parsl": {"client", "sites", "provenance", "memo", "staging"},
}
# distributed's public modules (its documented API); anything else is private
PUBLIC_DISTRIBUTED = {"distributed", "distributed.diagnostics.plugin", "distributed.protocol",
                      "distributed.deploy", "distributed.deploy.spec", "distributed.security"}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Each daskflow module -> the daskflow modules and outside modules it imports."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:  # `from . import x` names a module
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in modules else target)
        graph[name] = found
    return graph


GRAPH = _imports()


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "daskflow" and parts[1] in ROOMS else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _room(m) is None))
def test_the_ground_floor_imports_no_room(module):
    rooms = {t for t in GRAPH[module] if t.startswith("daskflow.") and _room(t)}
    if module == "daskflow":  # the package's API gathers the rooms' public names
        return
    assert not rooms, f"{module} is imported by every room and must not import {rooms}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _room(m)))
def test_each_room_imports_only_what_it_may(module):
    room = _room(module)
    wrong = {t for t in GRAPH[module]
             if _room(t) not in (None, room) and _room(t) not in ALLOWED[room]}
    wrong |= {t for t in GRAPH[module] if t == "daskflow"}  # the package: every room at once
    assert not wrong, f"{module} ({room}/) must not import {sorted(wrong)}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_private_dask_apis_only_behind_the_door(module):
    if module == "daskflow.dask_internals":
        return
    private = {t for t in GRAPH[module]
               if (t.startswith("distributed.") and t not in PUBLIC_DISTRIBUTED)
               or t.startswith("dask._")}
    assert not private, (f"{module} imports {sorted(private)}: distributed's and dask's "
                         "internals go through daskflow.dask_internals")
