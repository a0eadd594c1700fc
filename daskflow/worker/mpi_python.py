"""Python MPI apps: the function runs on every rank under the MPI launcher,
with mpi4py importable; rank 0's return value is the app's result.

The worker writes the call (function and arguments, cloudpickled) to a
private directory and runs ``LAUNCHER python -m daskflow.worker.mpi_python DIR``;
every rank loads the call and runs it; rank 0 writes its outcome (value or
exception) next to it. A rank that raises prints its traceback and aborts
the whole run, so no rank waits forever in a collective. The ranks' stdout
and stderr go to the app's ``stdout=``/``stderr=`` (one stream for all
ranks, as the launcher gathers them).
"""

from __future__ import annotations

import os
import pickle
import shlex
import sys
import tempfile
import traceback

import cloudpickle

from ..errors import BashExitFailure
from .bash import run_command


def run_python_mpi(func, app_name: str, tid, prefix: str, args: tuple, kwargs: dict,
                   stdout, stderr, walltime):
    """Run ``func(*args, **kwargs)`` on every rank; rank 0's outcome."""
    with tempfile.TemporaryDirectory(prefix="daskflow-mpi-") as directory:
        with open(os.path.join(directory, "call.pkl"), "wb") as f:
            cloudpickle.dump((func, args, kwargs), f)
        command = (f"{prefix} {shlex.quote(sys.executable)} -m daskflow.worker.mpi_python "
                   f"{shlex.quote(directory)}")
        outcome_path = os.path.join(directory, "outcome.pkl")
        try:
            run_command(command, app_name, tid, stdout, stderr, walltime)
        except BashExitFailure:
            if not os.path.exists(outcome_path):  # a rank other than 0 failed, or the launcher
                raise
        with open(outcome_path, "rb") as f:
            kind, value = pickle.load(f)
    if kind == "error":
        raise value
    return value


def _write(directory: str, outcome: tuple) -> None:
    tmp = os.path.join(directory, f"outcome.pkl.{os.getpid()}")
    with open(tmp, "wb") as f:
        try:
            cloudpickle.dump(outcome, f)
        except Exception as e:  # an unpicklable result or exception: say what it was
            f.seek(0)
            f.truncate()
            cloudpickle.dump(("error", RuntimeError(
                f"rank 0 returned or raised something that cannot be pickled: {e}")), f)
    os.replace(tmp, os.path.join(directory, "outcome.pkl"))


def main(directory: str) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    with open(os.path.join(directory, "call.pkl"), "rb") as f:
        func, args, kwargs = cloudpickle.load(f)
    try:
        value = func(*args, **kwargs)
    except BaseException as exc:
        traceback.print_exc()
        if comm.Get_rank() == 0:
            _write(directory, ("error", exc))
        sys.stdout.flush()
        sys.stderr.flush()
        comm.Abort(1)
        return
    if comm.Get_rank() == 0:
        _write(directory, ("value", value))


if __name__ == "__main__":
    main(sys.argv[1])
