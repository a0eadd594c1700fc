"""Run Parsl's own tests of the programming model against daskflow.parsl.

    python tests/parsl_yardstick/run.py [--mode threads|local] [--list] [PYTEST ARGS]

Two runs, as Parsl's own CI makes them: ``threads`` (every test of the
chosen directories with ``--config parsl/tests/configs/local_threads.py``)
and ``local`` (the tests that load their own configuration, only those that
build thread-pool configurations). Known outcomes come from ``expected``;
the exit status is non-zero when any other test fails. The summary gives
the counts and each test that did not pass, with its reason.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from expected import expectation, unmatched  # noqa: E402
from fetch import fetch  # noqa: E402

#: Parsl's tests of the programming model
DIRECTORIES = ["test_python_apps", "test_bash_apps", "test_error_handling",
               "test_checkpointing", "test_staging", "test_docs", "unit/test_file.py"]
#: local-mode modules elsewhere whose configurations are thread pools only
LOCAL_EXTRA = ["test_regression/test_1606_wait_for_current_tasks.py",
               "test_regression/test_98.py", "test_summary.py", "test_threads",
               "test_monitoring/test_log_config.py",
               "test_monitoring/test_memoization_representation.py"]
MODES = {
    "threads": (["parsl/tests/configs/local_threads.py"], DIRECTORIES),
    "local": (["local"], DIRECTORIES + LOCAL_EXTRA),
}
TIMEOUT = 120  # per test: nothing in these suites waits longer on Parsl


def run_mode(mode: str, root: str, extra: list[str]) -> dict:
    """Run one mode; return {nodeid: (outcome, message)}."""
    config, paths = MODES[mode]
    with tempfile.TemporaryDirectory() as tmp:
        junit = os.path.join(tmp, "junit.xml")
        cmd = [sys.executable, "-m", "pytest", "-c", "pytest.ini", "--rootdir", ".",
               "-p", "daskflow_parsl_alias", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--continue-on-collection-errors",
               f"--timeout={TIMEOUT}", "--config", *config, "-q", "-rN",
               f"--junitxml={junit}", "-o", "junit_family=xunit1",
               *[f"parsl/tests/{p}" for p in paths], *extra]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [HERE, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "DASKFLOW_PARSL_TESTS": root}
        subprocess.run(cmd, cwd=root, env=env)
        return known_collection_failures(mode, outcomes(junit)) if os.path.exists(junit) else {}


def known_collection_failures(mode: str, results: dict) -> dict:
    """A module that cannot even be imported (it needs Parsl's internals) gets
    no markers: apply its listed outcome here."""
    for nodeid, (outcome, message) in results.items():
        known = expectation(mode, nodeid)
        if outcome == "failed" and message == "collection failure" and known is not None:
            kind, reason = known
            results[nodeid] = ("skipped" if kind == "skip" else "xfailed",
                               f"cannot be imported here: {reason}")
    return results


def outcomes(junit: str) -> dict:
    results = {}
    for case in ET.parse(junit).iter("testcase"):
        path = case.get("file") or case.get("classname", "").replace(".", "/") + ".py"
        nodeid = f"{path}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", child.get("message", "")
            elif child.tag == "skipped":
                kind = child.get("type", "")
                outcome = "xfailed" if "xfail" in kind else "skipped"
                message = child.get("message", "")
        results[nodeid] = (outcome, message)
    return results


def summary(mode: str, results: dict) -> str:
    counts = Counter(outcome for outcome, _ in results.values())
    lines = [f"{mode}: {len(results)} tests: " + ", ".join(
        f"{counts[k]} {k}" for k in ("passed", "skipped", "xfailed", "failed") if counts[k])]
    for nodeid, (outcome, message) in sorted(results.items()):
        if outcome != "passed":
            lines.append(f"  {outcome:8} {nodeid}: {message.splitlines()[0] if message else ''}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), action="append")
    args, extra = parser.parse_known_args(argv)
    root = fetch()
    failed = False
    for mode in args.mode or ["threads", "local"]:
        results = run_mode(mode, root, extra)
        print(summary(mode, results), flush=True)
        failed |= not results or any(o == "failed" for o, _ in results.values())
        stale = [] if extra else unmatched(mode, results)
        for pattern in stale:
            print(f"  stale    {pattern}: listed in expected.py but matches no test", flush=True)
        failed |= bool(stale)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
