"""Results kept beside the run so that a finished call never runs twice.

Dask recomputes the result of a held future whose worker died, which would
run an app again (and repeat a bash app's side effects). The task body
therefore writes each small result (pickled size up to
``daskflow.recovery.max-bytes``) to the run's ``results/`` directory when
the call succeeds, and looks there before running: a recomputed task returns
the kept result instead. Larger results are recomputed as Dask would.

Entries are written to a temporary name and renamed (a reader never sees a
partial one) without fsync: they guard against lost workers, not against a
lost machine, which the checkpoint store is for. The directory must be
reachable by the workers, like the run's provenance; if it is not, the
worker stops trying and logs it once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from typing import Any

import cloudpickle

logger = logging.getLogger("daskflow")

_unreachable: set[str] = set()


def _path(directory: str, ident: str) -> str:
    return os.path.join(directory, hashlib.sha1(ident.encode()).hexdigest())


def recall(directory: str, ident: str) -> tuple[bool, Any]:
    """``(True, value)`` if call ``ident`` of this run already succeeded."""
    path = _path(directory, ident)
    try:
        with open(path, "rb") as f:
            return True, pickle.load(f)
    except FileNotFoundError:
        return False, None
    except Exception as exc:  # a damaged entry: run the call again
        logger.warning("daskflow: ignoring unreadable kept result %s (%s)", path, exc)
        return False, None


def remember(directory: str, ident: str, value: Any, max_bytes: int) -> None:
    if directory in _unreachable:
        return
    try:
        data = cloudpickle.dumps(value)
    except Exception:
        return  # Dask will fail on it too, and say why
    if len(data) > max_bytes:
        return
    path = _path(directory, ident)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        _unreachable.add(directory)
        logger.warning("daskflow: cannot keep results in %s (%s); results lost with a "
                       "worker will be computed again", directory, exc)
