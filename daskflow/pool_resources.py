"""Pool labels as Dask worker resources, so that ``executors=[...]`` can pin
an app to one pool or to any of several.

Dask resources are conjunctive: a task needing ``{"a": 1, "b": 1}`` runs only
where both exist. To let a task run on *any* of the pools it names, every
worker carries one resource per set of labels that contains its own pool
(``pool:cpu``, ``pool:cpu+gpu``, …); a task pinned to a set of labels asks for
that set's resource. With n pools a worker carries 2**(n-1) such resources.
"""

from __future__ import annotations

from itertools import combinations
from typing import Iterable

CAPACITY = 2**31  # never the limit: pool resources only restrict where tasks go
MAX_POOLS = 8
PREFIX = "pool:"


def resource_name(labels: Iterable[str]) -> str:
    return PREFIX + "+".join(sorted(set(labels)))


def labels_of(name) -> tuple[str, ...] | None:
    """The labels a pool resource ``name`` stands for (None: not a pool resource)."""
    if not (isinstance(name, str) and name.startswith(PREFIX)):
        return None
    return tuple(name[len(PREFIX):].split("+"))


def pool_of(name) -> str | None:
    """The pool of a worker carrying resource ``name``, if it is the
    worker's own pool resource (one label); None for any other resource."""
    labels = labels_of(name)
    return labels[0] if labels is not None and len(labels) == 1 else None


def worker_resources(label: str, all_labels: Iterable[str]) -> dict[str, int]:
    """The pool resources of a worker of pool ``label``."""
    others = sorted(set(all_labels) - {label})
    if len(others) + 1 > MAX_POOLS:
        raise ValueError(f"a profile may have at most {MAX_POOLS} pools")
    out = {}
    for size in range(len(others) + 1):
        for extra in combinations(others, size):
            out[resource_name((label, *extra))] = CAPACITY
    return out


def task_resources(executors: Iterable[str], all_labels: Iterable[str]) -> dict | None:
    """The resources an app pinned to ``executors`` asks for (None: anywhere)."""
    wanted = set(executors)
    if wanted >= set(all_labels):
        return None
    return {resource_name(wanted): 1}
