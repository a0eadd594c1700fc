"""Launchers for multi-node blocks (Parsl's ``SrunLauncher``,
``MpiExecLauncher``, ``AprunLauncher``): a batch job's worker command is
prefixed with the launcher, which starts one copy on every node of the job.

Each copy must have its own worker name, so the copies run
``python -m daskflow.sites.onnode`` which appends the node's rank (read from
the launcher's environment) to the name before it becomes a Dask worker.
"""

from __future__ import annotations

import shlex
import sys

from .profile import Pool

#: launcher -> the command that runs one task per node on ``{nodes}`` nodes
PREFIXES = {
    "srun": "srun --nodes={nodes} --ntasks={nodes} --ntasks-per-node=1",
    "mpiexec": "mpiexec -n {nodes} -ppn 1",
    "aprun": "aprun -n {nodes} -N 1",
}
#: batch systems whose job header daskflow can widen to several nodes
MULTI_NODE_PROVIDERS = ("slurm", "pbs")


def launch_prefix(pool: Pool) -> str:
    """The launcher words before the worker command ('' for ``single``)."""
    template = PREFIXES.get(pool.launcher)
    return template.format(nodes=pool.block.nodes) if template else ""


def worker_python(pool: Pool) -> str:
    """The ``python`` dask-jobqueue puts before ``-m distributed.cli.dask_worker``."""
    python = shlex.quote(sys.executable)
    if pool.launcher == "single":
        return python
    return f"{launch_prefix(pool)} {python} -m daskflow.sites.onnode"


def node_suffixes(pool: Pool) -> list[str]:
    """Name suffixes of a block's workers: ``-nR`` per node with a launcher,
    then ``-I`` per worker process when a node runs several."""
    nodes = [f"-n{r}" for r in range(pool.block.nodes)] if pool.launcher != "single" else [""]
    processes = pool.workers_per_node or 1
    per_node = [f"-{i}" for i in range(processes)] if processes > 1 else [""]
    return [n + p for n in nodes for p in per_node]


def multi_node_options(pool: Pool) -> dict:
    """Job class options that ask the batch system for ``block.nodes`` nodes."""
    nodes = pool.block.nodes
    if nodes == 1:
        return {}
    if pool.provider == "slurm":
        return {"job_directives_skip": ["-n 1"],
                "job_extra_directives": [f"--nodes={nodes}", "--ntasks-per-node=1"]}
    cores = pool.block.cores or (pool.workers_per_node or 1) * pool.threads_per_worker
    spec = f"select={nodes}:ncpus={cores}"
    if pool.block.memory:
        spec += f":mem={pool.block.memory // 2**20}MB"
    return {"resource_spec": spec}
