"""scripts/lib/oldest-pins.py pins dask and distributed to the minimums that
setup.cfg allows: the oldest-versions test run (scripts/test) must test what
setup.cfg promises, and fail loudly when setup.cfg stops saying it."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "lib" / "oldest-pins.py"


def pins(setup_cfg: Path, *names: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(setup_cfg), *names],
                          capture_output=True, text=True, timeout=60)


def test_pins_are_the_minimums_of_setup_cfg():
    """As another parser (packaging's) reads them."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    minimums = {}
    for line in config["options"]["install_requires"].split("\n"):
        req = Requirement(line.split("#")[0]) if line.split("#")[0].strip() else None
        if req is not None and req.name in ("dask", "distributed"):
            minimums[req.name] = next(s.version for s in req.specifier if s.operator == ">=")
    assert set(minimums) == {"dask", "distributed"}, minimums

    result = pins(ROOT / "setup.cfg", "dask", "distributed")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"dask=={minimums['dask']}",
                                     f"distributed=={minimums['distributed']}"]


def test_extras_markers_comments_and_upper_bounds_are_read_through(tmp_path):
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[options]\ninstall_requires =\n"
                   "    # the scheduler\n"
                   "    Distributed >= 2026.3.0, <2027  # newest tested\n"
                   "    dask[array]>=2026.3.0; python_version >= '3.10'\n")

    result = pins(cfg, "dask", "distributed")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["dask==2026.3.0", "distributed==2026.3.0"]


def test_a_requirement_without_a_minimum_is_named(tmp_path):
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[options]\ninstall_requires =\n    dask>=2026.1.1\n    distributed\n")

    result = pins(cfg, "dask", "distributed")

    assert result.returncode != 0
    assert "gives distributed no '>=' minimum" in result.stderr, result.stderr
    assert result.stdout == ""
