"""The run's provenance writer: a process of its own that turns the
plugin's events into the run's SQLite store and its live aggregate.

Why a process: recording a packed call (its rows, their redaction, the
store's statements, the live aggregate) costs about 20 µs of Python per
call. In a thread of the scheduler's process (the driver's, on the local
default) it took the interpreter lock from the scheduler and the client,
and a loop of no-op calls ran 35 to 40 % slower with provenance on. In a
process of its own it runs on another core, at a lower priority (nice 10):
when the cores are busy, the workers and the driver go first, and the
writer catches up in their pauses.

``python -m daskflow.provenance.writer``, started by the plugin two seconds
into a run (until then, and in a run over sooner, a ``Writer`` in the
plugin's thread does the same work), reads length-prefixed pickles on its
stdin, a pipe only the plugin holds: first the run (``{"run", "db_path",
"token", "record_arguments", "resume"}``, ``resume`` what the thread's
writer knew; it is sent once the process said ``("ready", pid)``), then
lists of events, then ``None``. On its stdout
it answers, also pickled: ``("state", snapshot)`` after each batch, the
live aggregate the dashboard shows, ``("settled", ids)`` for the
``("settle", id)`` events of the batch, and ``("log", level, text)`` for
what it logs. At the end of its stdin (the plugin's
process is gone, even killed) it writes what it has and leaves the run
without an end: the run then reads ``killed?``. It has a session of its
own, so a Ctrl-C in the terminal reaches only the driver, which ends the run.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
from typing import Any, BinaryIO

from ..dashboard.state import WorkflowState
from .batches import private, to_batch

logger = logging.getLogger("daskflow.provenance")

_LENGTH = struct.Struct("!Q")
# what a writer hands over to the next
_KEPT = ("state", "memo_hits", "chunks", "bash", "lost", "failed", "ended", "blocks")


def send(stream: BinaryIO, obj: Any) -> None:
    """Write ``obj`` as one length-prefixed pickle."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """The next object ``send`` wrote on ``stream``; ``EOFError`` at its end."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # from the plugin's own pipe (see the module docstring)


def start() -> subprocess.Popen:
    """A writer process, its stdin and stdout pipes to this one."""
    return subprocess.Popen([sys.executable, "-m", "daskflow.provenance.writer"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)


class Writer:
    """Batches of events into the store and the live aggregate (``state``)."""

    def __init__(self, run: dict[str, Any], db_path: str, token: str,
                 record_arguments: bool, resume: dict[str, Any] | None = None):
        self.run = run
        self.db_path = db_path
        self.record_arguments = record_arguments
        self.state = WorkflowState(run, token)
        self.memo_hits: set[str] = set()  # calls answered from the cache stay "memo" when done
        self.chunks: set[str] = set()  # chunk tasks: their calls have rows, they do not
        self.bash: set[str] = set()  # bash tasks: done means exit code 0 (failures report theirs)
        self.lost: dict[str, set[str]] = {}  # worker -> keys lost with it, cause not known yet
        self.failed: set[str] = set()  # calls whose last state is failed: the run then failed
        self.blocks: dict = {}  # chunk key -> CallBlock of plain calls, until the chunk reports
        self.ended = False
        if resume is not None:  # what the writer before this one knew (``handover``)
            for name in _KEPT:
                setattr(self, name, resume[name])
        self.resume()

    def handover(self) -> dict[str, Any]:
        """What a writer in another process needs to go on from here (this
        one's store is closed; ``resume`` reopens it)."""
        self.store.close()
        return {name: getattr(self, name) for name in _KEPT}

    def resume(self) -> None:
        from .store import ProvenanceStore

        self.store = ProvenanceStore(self.db_path)  # the plugin made it and started the run

    def write(self, items: list) -> None:
        """Record one batch of events (never raises: provenance must not stop the run)."""
        batch, end = to_batch(items, self.memo_hits, self.chunks, self.bash, self.lost,
                              self.blocks)
        batch = private(batch, self.record_arguments)
        for update in batch["updates"]:
            if update.get("state") == "failed":
                self.failed.add(update["key"])
            elif update.get("state") in ("done", "memo"):
                self.failed.discard(update["key"])
        if end is not None and self.failed and end[1] == "completed":
            end = (end[0], "failed")
        try:  # the live view first: it need not wait for the disk
            self.state.apply(batch)
        except Exception:
            logger.exception("daskflow: could not update the live run state")
        try:
            self.store.record(batch)
        except Exception:
            logger.exception("daskflow: could not record a provenance batch in %s", self.db_path)
        if end is not None and not self.ended:
            try:  # else the live state never ends
                self.store.end_run(self.run["run_id"], *end)
            except Exception:
                logger.exception("daskflow: could not record the end of run %s in %s",
                                 self.run["run_id"], self.db_path)
            self.state.ended(*end)
            self.ended = True

    def close(self) -> None:
        self.store.close()


class _Forward(logging.Handler):
    """Log records go to the plugin (``("log", level, text)``), which logs
    them where the scheduler's own go."""

    def __init__(self, sink: BinaryIO):
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        try:
            send(self.sink, ("log", record.levelno, text))
        except Exception:
            self.handleError(record)


def main() -> None:
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # only the answers go to the plugin's pipe
    logger.addHandler(_Forward(sink))
    logger.propagate = False
    try:  # background work: the run's own processes come first for the CPU
        os.nice(10)
    except (AttributeError, OSError):
        pass
    send(sink, ("ready", os.getpid()))  # imported: the plugin's thread hands the run over
    try:
        spec = receive(source)
    except EOFError:
        return
    if spec is None:  # the run ended before the hand-over
        return
    writer = Writer(spec["run"], spec["db_path"], spec["token"], spec["record_arguments"],
                    spec.get("resume"))
    try:
        while True:
            try:
                items = receive(source)
            except EOFError:  # the plugin's process is gone: the run has no end
                return
            if items is None:
                return
            settled = [item[1] for item in items if item[0] == "settle"]
            events = [item for item in items if item[0] != "settle"]
            if events:
                writer.write(events)
            send(sink, ("state", writer.state.snapshot(intervals=True)))
            if settled:
                send(sink, ("settled", settled))
    finally:
        writer.close()
        try:
            send(sink, ("closed", os.getpid()))
        except OSError:
            pass


if __name__ == "__main__":
    main()
