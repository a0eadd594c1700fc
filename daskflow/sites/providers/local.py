"""Provider ``local``: each block is processes on this machine, Nannies in
processes of their own (see ``nanny_process``)."""

from __future__ import annotations

import logging
import os

from ..nanny_process import NannyProcess
from .base import RANKS, BlockContext, Pool, Provider


class LocalProvider(Provider):
    """Workers on this machine; MPI slots are ranks, one per core by default."""

    name = "local"
    parsl = ("LocalProvider",)
    mpi_unit = RANKS
    watched = True

    @classmethod
    def default_mpi_slots(cls) -> int:
        return os.cpu_count() or 1

    @classmethod
    def block(cls, pool: Pool, index: int, resources: dict, slots: dict,
              context: BlockContext) -> dict:
        per_block = (pool.workers_per_node or os.cpu_count() or 1) * pool.block.nodes
        return {f"{pool.label}-{index}-{i}": {
            "cls": NannyProcess,  # its own process: the driver's __main__ is not imported
            "options": {"options": {
                "nthreads": pool.threads_per_worker, "host": context.host,
                "silence_logs": logging.WARNING,
                "resources": {**resources, **slots} if i == 0 else resources, **context.tls}},
        } for i in range(per_block)}
