"""``python -m daskflow.sites.nanny_main``: the entry point of a worker
process daskflow starts (see ``nanny_process``), a module of its own so that
the package never imports it before ``-m`` runs it."""

from .nanny_process import main

if __name__ == "__main__":
    main()
