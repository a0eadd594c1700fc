"""The worker side: what runs inside a Dask task for each app call.

``task`` is the body every call runs; ``bash``, ``mpi``, ``mpi_python``,
``containers``, ``join``, ``walltime`` and ``limits`` are the ways a call
runs; ``recovery`` keeps small results so a recomputed task never runs
twice; ``context`` marks a join's thread. This package never imports the
client side (``daskflow.client``) or site provisioning (``daskflow.sites``).
"""
