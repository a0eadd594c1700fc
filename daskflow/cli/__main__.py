"""``python -m daskflow.cli``: the ``daskflow`` command."""

from .main import main

main()
