"""The client side: what runs in the user's script or notebook.

``apps`` (the decorators and their calls), ``futures`` (AppFuture and its
kin), ``session`` (``Client`` and the run it owns), ``local`` (the embedded
local cluster) and ``notebook``/``views`` (Jupyter). Nothing here is
imported by the worker's task body.
"""

from . import lifted  # noqa: E402,F401  (registers AppFuture's lifted operators)
