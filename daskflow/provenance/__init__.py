"""Provenance: a scheduler plugin records every call of a run in SQLite.

``plugin`` (on the scheduler) writes what ``report`` (sent by the task
body) and the task's transitions tell it into ``store``; ``export`` turns a
run into DOT, JSON and W3C PROV. The names below are the documented API
(``from daskflow.provenance import ProvenanceStore, to_prov``).
"""

from .export import to_dot, to_json, to_prov
from .store import ProvenanceStore, find_run, list_runs, new_run_dir

__all__ = ["ProvenanceStore", "find_run", "list_runs", "new_run_dir", "to_dot", "to_json",
           "to_prov"]
