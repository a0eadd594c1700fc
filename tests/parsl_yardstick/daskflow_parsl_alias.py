"""A pytest plugin for running Parsl's own tests on daskflow: ``import parsl``
gives ``daskflow.parsl``, while ``parsl.tests.*`` are Parsl's unpacked test
modules; then the known outcomes of ``expected`` are applied, so that any
other failure (or a known failure that now passes) fails the run."""

from __future__ import annotations

import importlib.machinery
import os
import sys

import pytest
from distributed.diagnostics.plugin import WorkerPlugin
from expected import expectation

import daskflow.parsl
from daskflow.parsl.dataflow.dflow import DataFlowKernel

TESTS = "parsl.tests"
NO_INTERNET = ("cleannet: reads from public servers, and this machine has no internet "
               "(daskflow's staging is tested against loopback HTTP/FTP/S3 servers)")
AS_ROOT = ("unix_filesystem_permissions_required: run as root, which may create and write "
           "any path (daskflow's BadStdStream is tested in tests/test_bash_streams.py)")


class _ParslTests:
    """Finds ``parsl.tests[.x]`` among the unpacked files (ahead of the alias,
    which would look for them in daskflow.parsl)."""

    def __init__(self, root: str):
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        if fullname == TESTS:
            return importlib.machinery.PathFinder.find_spec(
                fullname, [os.path.join(self.root, "parsl")])
        if fullname.startswith(TESTS + "."):
            return importlib.machinery.PathFinder.find_spec(fullname, path)
        return None


def _install() -> None:
    daskflow.parsl.install()
    if not any(isinstance(f, _ParslTests) for f in sys.meta_path):
        sys.meta_path.insert(0, _ParslTests(os.environ["DASKFLOW_PARSL_TESTS"]))


class ParslTestsOnWorkers(WorkerPlugin):
    """The test modules' apps are pickled by reference: workers import them too."""

    name = "daskflow-yardstick-parsl-tests"

    def setup(self, worker) -> None:
        _install()


def _alias_with_tests(dfk, alias=DataFlowKernel._alias_on_workers) -> None:
    alias(dfk)
    dfk.client.register_plugin(ParslTestsOnWorkers())


def _serialise_ast_parse() -> None:
    """CPython before 3.11.8 (gh-106905) breaks when two threads build ASTs at
    once ("AST constructor recursion depth mismatch"): its tracebacks parse
    source lines, so pytest formatting a failure while a worker thread of the
    in-process cluster formats a failed task's traceback can crash the run."""
    if sys.version_info[:2] != (3, 11) or sys.version_info >= (3, 11, 8):
        return
    import ast
    import functools
    import threading

    lock, parse = threading.RLock(), ast.parse

    @functools.wraps(parse)
    def parse_alone(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)

    ast.parse = parse_alone


_serialise_ast_parse()
os.environ.setdefault("DASKFLOW_PARSL_TESTS", os.getcwd())
_install()
DataFlowKernel._alias_on_workers = _alias_with_tests


def pytest_collection_modifyitems(config, items):
    mode = "local" if config.getoption("config")[0] == "local" else "threads"
    for item in items:
        if item.get_closest_marker("cleannet") is not None:  # as Parsl's own CI does here
            item.add_marker(pytest.mark.skip(reason=NO_INTERNET))
            continue
        if item.get_closest_marker("unix_filesystem_permissions_required") is not None \
                and os.geteuid() == 0:
            item.add_marker(pytest.mark.skip(reason=AS_ROOT))
            continue
        known = expectation(mode, item.nodeid)
        if known is None:
            continue
        kind, reason = known
        if kind == "skip":
            item.add_marker(pytest.mark.skip(reason=reason))
        else:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
