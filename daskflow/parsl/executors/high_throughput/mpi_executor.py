"""``parsl.executors.high_throughput.mpi_executor``."""

from .. import MPIExecutor

__all__ = ["MPIExecutor"]
