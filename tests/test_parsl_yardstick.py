"""Parsl's own tests of the programming model, run against daskflow.parsl
as Parsl's CI runs them (``tests/parsl_yardstick/run.py``): every test must
pass, or be listed in ``tests/parsl_yardstick/expected.py`` with the reason
it does not (a known failure must still fail: fixed ones come off the list).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "parsl_yardstick", "run.py")


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("mode", ["threads", "local"])
def test_parsls_own_tests_pass_or_are_listed_with_the_reason(mode, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE),
               DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0")
    done = subprocess.run([sys.executable, RUN, "--mode", mode], capture_output=True,
                          text=True, env=env, timeout=1400)
    summary = done.stdout[done.stdout.find(f"{mode}: "):]
    print(summary)
    assert done.returncode == 0, summary[-8000:] or done.stderr[-4000:]
