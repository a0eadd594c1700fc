"""The ``daskflow`` command: ``main`` groups the subcommands, one module each
(``run``, ``provenance``, ``cache``, ``profiles``, ``globus``), and
``tables`` prints their listings."""
