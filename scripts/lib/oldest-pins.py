"""Print ``NAME==MIN`` for each NAME given, MIN being the ``>=`` minimum that
setup.cfg's ``install_requires`` allows for it: the pins of the test run
against the oldest versions daskflow says it supports (scripts/test), read
from the one place those minimums are written.

    python3 scripts/lib/oldest-pins.py setup.cfg dask distributed

Plain ``configparser`` and ``re``: it runs before any virtualenv exists.
"""

import configparser
import re
import sys


def oldest_pins(setup_cfg: str, names: list[str]) -> list[str]:
    config = configparser.ConfigParser()
    if not config.read(setup_cfg):
        sys.exit(f"oldest-pins: cannot read {setup_cfg}")
    lines = config.get("options", "install_requires", fallback="").splitlines()
    minimums = {}
    for line in filter(None, (line.split("#")[0].strip() for line in lines)):
        match = re.fullmatch(r"([A-Za-z0-9._-]+)\s*(?:\[[^]]*\])?\s*(.*?)\s*(?:;.*)?", line)
        if match is None:
            continue
        name = re.sub(r"[-_.]+", "-", match[1]).lower()
        for clause in match[2].split(","):
            minimum = re.fullmatch(r"\s*>=\s*([0-9][^\s,]*)\s*", clause)
            if minimum:
                minimums[name] = minimum[1]
    pins = []
    for name in names:
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key not in minimums:
            sys.exit(f"oldest-pins: {setup_cfg} install_requires gives {name} no '>=' "
                     f"minimum (write e.g. '{name}>=2026.1.0')")
        pins.append(f"{name}=={minimums[key]}")
    return pins


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: oldest-pins.py SETUP_CFG NAME...")
    print("\n".join(oldest_pins(sys.argv[1], sys.argv[2:])))
