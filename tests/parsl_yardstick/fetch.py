"""Parsl's own tests, from the released Parsl package that daskflow.parsl
mirrors: the wheel is downloaded (never installed) and only its
``parsl/tests`` tree is unpacked, under ``.parsl-tests/`` in the checkout.

``python tests/parsl_yardstick/fetch.py`` prints the directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from daskflow.parsl.version import PARSL_VERSION  # noqa: E402

#: stands in for Parsl's own package file, so pytest names the test modules
#: ``parsl.tests.*``; the alias plugin makes ``import parsl`` give daskflow.parsl
PLACEHOLDER = '''"""Not Parsl: only its tests were unpacked here. Run them through
tests/parsl_yardstick/run.py, which makes ``import parsl`` give daskflow.parsl."""
raise ImportError("parsl/tests was unpacked without Parsl; run it through "
                  "tests/parsl_yardstick/run.py")
'''
PYTEST_INI = "[pytest]\n# Parsl's tests keep their own conftest; daskflow's settings stay out\n"
#: pytest 9 dropped the ``path`` argument of this hook, which Parsl's conftest
#: still declares: the one change made to Parsl's files
HOOK_OLD = ("def pytest_ignore_collect(path):", "path.strpath")
HOOK_NEW = ("def pytest_ignore_collect(collection_path):", "str(collection_path)")


def tests_dir(version: str = PARSL_VERSION) -> str:
    """Where Parsl ``version``'s tests are unpacked (the directory holding ``parsl/``)."""
    return os.path.join(ROOT, ".parsl-tests", f"parsl-{version}")


def fetch(version: str = PARSL_VERSION, python: str = sys.executable) -> str:
    """Unpack Parsl ``version``'s tests once; return the directory holding ``parsl/``."""
    target = tests_dir(version)
    if os.path.exists(os.path.join(target, "parsl", "tests", "conftest.py")):
        return target
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, f"parsl=={version}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if done.returncode or not wheels:
            raise RuntimeError(f"could not download Parsl {version}'s package to read its "
                               f"tests ({' '.join(cmd)}):\n{done.stderr.strip()}")
        staging = tempfile.mkdtemp(dir=os.path.dirname(target))
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as wheel:
            members = [m for m in wheel.namelist() if m.startswith("parsl/tests/")]
            wheel.extractall(staging, members)
    _modernise_conftest(os.path.join(staging, "parsl", "tests", "conftest.py"))
    with open(os.path.join(staging, "parsl", "__init__.py"), "w") as f:
        f.write(PLACEHOLDER)
    with open(os.path.join(staging, "pytest.ini"), "w") as f:
        f.write(PYTEST_INI)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staging, target)
    return target


def _modernise_conftest(path: str) -> None:
    with open(path) as f:
        text = f.read()
    if HOOK_OLD[0] not in text:
        raise RuntimeError(f"{path} no longer declares {HOOK_OLD[0]!r}: see fetch.HOOK_OLD")
    for old, new in zip(HOOK_OLD, HOOK_NEW):
        text = text.replace(old, new)
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    print(fetch())
