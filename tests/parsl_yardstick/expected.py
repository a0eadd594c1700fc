"""What Parsl's own tests are known to do on daskflow, and why.

``SKIP``: tests with no meaning on daskflow (Parsl's internals, or what this
machine cannot reach); they do not run. ``FAIL``: known differences, each
a choice daskflow makes or a gap said plainly; they run as strict xfails,
so one that starts passing fails the run until it is taken off this list.
Keys are fnmatch patterns of pytest node ids (relative to the unpacked
tree), values ``(modes, reason)`` where modes is a set of ``"threads"``
(``--config local_threads.py``) and ``"local"`` (``--config local``).

Tests marked ``cleannet`` (public servers) are skipped as in Parsl's own
CI, and those needing Unix permissions are skipped when run as root (see
``daskflow_parsl_alias``).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

T = "parsl/tests/"
BOTH = frozenset({"threads", "local"})
THREADS = frozenset({"threads"})
LOCAL = frozenset({"local"})

SKIP: dict[str, tuple[frozenset, str]] = {
    T + "test_staging/test_staging_https.py::test_staging_https_local": (
        LOCAL, "downloads from a public web server, and this machine has no internet "
               "(daskflow's HTTP staging runs against a loopback server in its own tests)"),
    T + "test_python_apps/test_dependencies_deep.py::*": (
        LOCAL, "builds an executor of its own on Parsl's executor interface (ParslExecutor."
               "submit); on daskflow the Dask scheduler runs every app, and parsl.load "
               "refuses such an executor, naming it (tests/test_parsl_kernel.py)"),
    T + "test_monitoring/test_log_config.py::*": (
        LOCAL, "Parsl's monitoring database manager and its log files (parsl.logconfigs); "
               "daskflow records the run in its provenance database instead"),
    T + "test_monitoring/test_memoization_representation.py::*": (
        LOCAL, "reads Parsl's monitoring database over its UDP radio (parsl.monitoring."
               "radios); daskflow records calls in its provenance database"),
    T + "test_python_apps/test_memoize_plugin.py::*": (
        BOTH, "a memoizer overriding Parsl's check_memo hook on the submit side (parsl."
              "dataflow.taskrecord); daskflow looks results up on the workers and refuses "
              "such a memoizer at load, naming it (tests/test_parsl_memo.py)"),
}

FAIL: dict[str, tuple[frozenset, str]] = {
    T + "test_bash_apps/test_stdout.py::test_bad_stdout_specs[[]1tuple[]]": (
        THREADS, "Parsl raises typeguard's TypeCheckError from its internal type checks; "
                 "daskflow raises BadStdStreamFile from result(), naming the spec"),
    T + "test_bash_apps/test_stdout.py::test_bad_stdout_specs[[]3tuple[]]": (
        THREADS, "as test_bad_stdout_specs[1tuple]"),
    T + "test_bash_apps/test_stdout.py::test_bad_stdout_specs[[]list_not_tuple[]]": (
        THREADS, "as test_bad_stdout_specs[1tuple]"),
    T + "test_bash_apps/test_stdout.py::test_bad_stdout_specs[[]not_a_string[]]": (
        THREADS, "as test_bad_stdout_specs[1tuple]"),
    T + "test_bash_apps/test_stdout.py::test_bad_stdout_specs[[]null_mode[]]": (
        THREADS, "as test_bad_stdout_specs[1tuple]"),
    T + "test_error_handling/test_python_walltime.py::test_python_bad_decorator_args": (
        THREADS, "daskflow's decorators take walltime= (and its other options) where "
                 "Parsl's take it only at the call"),
    T + "test_python_apps/test_fail.py::test_fail_sequence_first": (
        THREADS, "in a chain of failures a DependencyError names the first failed call "
                 "(the one Dask reports), where Parsl names the immediate dependency"),
    T + "test_python_apps/test_outputs.py::test_launch_apps": (
        THREADS, "waits with concurrent.futures.wait: daskflow's futures are "
                 "distributed.Future objects, not concurrent.futures.Future ones (use "
                 "daskflow.wait / distributed.wait)"),
    T + "test_staging/test_output_chain_filenames.py::test_behavior": (
        THREADS, "checks isinstance(df, concurrent.futures.Future): daskflow's DataFutures "
                 "are distributed.Future objects"),
    T + "test_staging/test_staging_stdout.py::*": (
        THREADS, "stdout=File(...) is not staged out and gives no DataFuture"),
    T + "test_bash_apps/test_std_uri.py::test_std_autopath_zip": (
        LOCAL, "stdout=File('zip:...') is not staged out: a remote File as stdout raises "
               "BadStdStreamFile"),
    T + "test_checkpointing/test_manual.py::*": (
        LOCAL, "opens Parsl's checkpoint/tasks.pkl: daskflow's checkpoints are signed "
               "entries of its own store (never an unsigned pickle another user could forge)"),
    T + "test_checkpointing/test_task_exit.py::*": (
        LOCAL, "as test_manual: reads Parsl's tasks.pkl"),
    T + "test_checkpointing/test_periodic.py::test_periodic": (
        LOCAL, "its four identical cache=True calls run as one task on daskflow (identical "
               "calls in flight share it), so the run ends before three checkpoint periods"),
    T + "test_python_apps/test_context_manager.py::test_exit_wait_exception": (
        LOCAL, "after cleanup a call waiting on a concurrent future that never completes "
               "is cancelled with its client, so its future is done, not left pending"),
    T + "test_staging/test_1316.py::*_sp2": (
        LOCAL, "a Staging provider written for the script (Parsl's submit-side hooks); "
               "parsl.load refuses it, naming it: daskflow's movers are its plug-in point"),
    T + "test_staging/test_elaborate_noop_file.py::*": (
        LOCAL, "as test_1316: staging providers written for the script are refused"),
}


def expectation(mode: str, nodeid: str) -> tuple[str, str] | None:
    """``("skip"|"fail", reason)`` for a test of this mode, or None if it must pass."""
    for kind, table in (("skip", SKIP), ("fail", FAIL)):
        for pattern, (modes, reason) in table.items():
            if mode in modes and fnmatchcase(nodeid, pattern):
                return kind, reason
    return None


def unmatched(mode: str, nodeids) -> list[str]:
    """The patterns for ``mode`` that match none of ``nodeids`` (stale entries)."""
    return [pattern for table in (SKIP, FAIL) for pattern, (modes, _) in table.items()
            if mode in modes and not any(fnmatchcase(n, pattern) for n in nodeids)]
