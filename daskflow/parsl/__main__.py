"""``python -m daskflow.parsl script.py [args]``: run a Parsl script
unchanged, ``import parsl`` giving ``daskflow.parsl``."""

from __future__ import annotations

import os
import runpy
import sys

from .importer import install


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m daskflow.parsl SCRIPT [ARGS...]\n\nRun a Parsl script on "
              "daskflow: 'import parsl' gives daskflow.parsl.", file=sys.stderr)
        sys.exit(0 if argv else 2)
    install()
    script = argv[0]
    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
