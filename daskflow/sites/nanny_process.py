"""A Dask Nanny (and so its worker) in a process of its own, started with
``subprocess`` as ``python -m daskflow.sites.nanny_process``.

Why not ``LocalCluster``'s Nannies: they start their workers with
multiprocessing's spawn, which re-imports the driver's ``__main__``; a
script without an ``if __name__ == "__main__":`` guard (every Parsl script)
then starts a cluster inside each worker and never gets one. A separate
process imports only daskflow; apps defined in ``__main__`` travel by value
(cloudpickle), as they do to any remote worker.

The driver writes the process's spec (scheduler address, Nanny options, and,
as spawn would, the driver's ``dask.config``, import path and directory) as
one length-prefixed pickle on its stdin, a pipe only the two share, and
keeps the pipe open. When the pipe closes, the driver
is gone (even killed with SIGKILL) and the process exits at once; its worker
follows through distributed's own parent-alive pipe. Each process has its
own session, so the terminal's Ctrl-C reaches only the driver, which closes
the cluster. Its stderr is forwarded to the driver's stderr once its worker
joined, and the last lines are kept to explain a worker that could not start.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time

import dask
import psutil
from distributed.deploy.spec import ProcessInterface

logger = logging.getLogger("daskflow")

_LENGTH = struct.Struct("!Q")
TAIL_LINES = 200  # stderr lines kept per process
CLOSE_GRACE = 10.0  # seconds a process gets to close its worker after SIGTERM


def launch() -> subprocess.Popen:
    """A worker process, importing daskflow while it waits for its spec.

    Launching before the scheduler exists lets those imports run while the
    driver starts the scheduler and its dashboard."""
    return subprocess.Popen([sys.executable, "-m", "daskflow.sites.nanny_main"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


class NannyProcess(ProcessInterface):
    """One Nanny in its own process (see the module docstring).

    Parameters
    ----------
    scheduler : str
        Address of the scheduler (given by ``SpecCluster``).
    name : str or int
        The worker's name.
    options : dict
        Keyword arguments of ``distributed.Nanny`` (picklable).
    launched : list of subprocess.Popen, optional
        Processes started ahead (see ``launch``) that are not yet given a
        spec; this worker takes one if any is left.
    """

    def __init__(self, scheduler: str, name=None, options: dict | None = None,
                 launched: list | None = None):
        self.scheduler = scheduler
        self.name = name
        self.options = dict(options or {})
        self.launched = launched
        self.process: subprocess.Popen | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.returncode: int | None = None
        self._lock = threading.Lock()
        self._forward = False
        self._held: list[str] = []
        super().__init__()

    async def start(self) -> None:
        # Not waiting for the worker to join: an app call returns at once, and
        # a worker that never joins is reported by WorkerWatch.
        self.process = self.launched.pop() if self.launched else launch()
        # what multiprocessing's spawn gives a child: the driver's import path
        # (apps defined in its modules are pickled by reference) and directory
        spec = pickle.dumps({"scheduler": self.scheduler, "name": self.name,
                             "options": self.options, "config": dask.config.config,
                             "sys_path": sys.path, "cwd": os.getcwd()})
        try:
            self.process.stdin.write(_LENGTH.pack(len(spec)) + spec)
            self.process.stdin.flush()  # the pipe stays open: it is the driver's pulse
        except BrokenPipeError:
            pass  # the process already ended: its stderr says why
        threading.Thread(target=self._follow, daemon=True,
                         name=f"daskflow-worker-{self.name}-stderr").start()
        await super().start()

    def _follow(self) -> None:
        """Keep the tail of the process's stderr, forward it to ours once the
        worker joined (``joined``), note the process's end."""
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            with self._lock:
                self.tail.append(line.rstrip("\n"))
                if self._forward:
                    _write(line)
                else:
                    self._held.append(line)
        self.returncode = self.process.wait()

    def joined(self) -> None:
        """The worker joined: from now on its stderr shows on ours. Until then
        it is held, so a worker that cannot start is told once, in the error
        its tasks raise (``WorkersUnavailable``), not in pages of tracebacks."""
        with self._lock:
            if not self._forward:
                self._forward = True
                _write("".join(self._held))
                self._held.clear()

    @property
    def exited(self) -> bool:
        return self.returncode is not None

    def describe(self) -> str:
        """What became of the process, with the end of its stderr."""
        if self.returncode is None:
            state = "is still running"
        else:
            state = f"exited with code {self.returncode}"
        text = f"worker {self.name!r} (pid {self.process.pid if self.process else '-'}) {state}"
        lines = messages(self.tail)
        if lines:
            text += "; the end of its stderr:\n    " + "\n    ".join(lines)
        return text

    async def close(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the Nanny closes its worker
            deadline = time.monotonic() + CLOSE_GRACE
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                _kill_tree(process.pid)
        if process is not None and process.stdin is not None:
            process.stdin.close()
        await super().close()


def messages(lines, count: int = 8) -> list[str]:
    """The last ``count`` messages of stderr ``lines``: what a reader needs to
    see why a worker did not start, not the traceback frames around them."""
    return [line for line in lines if line.strip() and not line[0].isspace()
            and not line.startswith(("Traceback (most recent", "The above exception",
                                     "During handling of"))][-count:]


def _write(text: str) -> None:
    out = sys.__stderr__  # the driver's real stderr, where a spawned worker writes
    if out is not None and text:
        out.write(text)
        out.flush()


def _kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
        processes = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for p in processes:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


# --- the child process (``python -m daskflow.sites.nanny_main``) -------------

def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise SystemExit("daskflow worker process: no spec on stdin (it is started "
                             "by daskflow, not by hand)")
        data += chunk
    return data


def _exit_when_driver_is_gone(fd: int) -> None:
    """Block on the driver's pipe; at end of file, the driver is gone.
    (Raw reads: a daemon thread must not hold a buffered stream's lock.)"""
    while os.read(fd, 65536):
        pass
    os._exit(0)


async def _serve(spec: dict) -> None:
    """Run the Nanny until it finishes or SIGTERM/SIGINT asks it to close."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def ask_to_stop(signum, frame):
        # a process-wide handler, so that a signal that comes while Python
        # shuts down (the Nanny already closed) is ignored, not fatal
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, ask_to_stop)
    await serve_nanny(spec, stop)


async def serve_nanny(spec: dict, stop: asyncio.Event) -> None:
    """Start the Nanny and serve until it finishes or ``stop`` is set.

    The Nanny tells the scheduler how its worker's process ended (the exit
    status that ``worker_fates`` quotes when a task's worker was lost). A
    worker that joined and ended before its Nanny finished starting (its
    first task exited the process within moments) fails distributed's
    Nanny start; the Nanny would have restarted a worker it had seen
    running, so this starts a new Nanny, as often as the scheduler confirms
    that the worker had joined. A worker that never joined is a start
    failure, raised."""
    from ..dask_internals import exit_reporting_nanny
    from ..worker_fates import EXIT_TOPIC

    Nanny = exit_reporting_nanny(EXIT_TOPIC)
    while True:
        nanny = Nanny(spec["scheduler"], name=spec["name"], **spec["options"])
        try:
            await nanny.start()
        except Exception:
            if not await _joined_and_ended(nanny):
                raise
            continue
        if nanny.exit_while_starting is not None:
            # older distributed releases count such a Nanny started (and restart its
            # worker): its first worker's exit still needs telling
            await _joined_and_ended(nanny)
        try:
            finished = asyncio.ensure_future(nanny.finished())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([finished, stopped], return_when=asyncio.FIRST_COMPLETED)
            for task in (finished, stopped):
                task.cancel()
        finally:
            try:  # a Nanny whose start met its worker's end may never finish closing
                await asyncio.wait_for(nanny.close(), CLOSE_GRACE)
            except asyncio.TimeoutError:
                logger.warning("daskflow: worker %r did not close within %.0f s; leaving it",
                               spec["name"], CLOSE_GRACE)
        return


async def _joined_and_ended(nanny) -> bool:
    """Whether ``nanny`` failed to start because its worker, which had
    joined the scheduler, ended: the scheduler records the exit as the
    worker's cause and says whether it knew that worker."""
    if nanny.exit_while_starting is None:
        return False
    from ..worker_fates import NANNY_HANDLER

    try:
        return bool(await nanny.call_scheduler(NANNY_HANDLER, 10, nanny=nanny.address_safe,
                                               exitcode=nanny.exit_while_starting))
    except Exception:  # no WorkerFates there, or no answer: a start failure
        return False


def main() -> None:
    from ..dask_internals import run_like_dask_worker

    fd = sys.stdin.fileno()
    (size,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size))
    # the pipe from the driver that started this process: no one else can write to it
    spec = pickle.loads(_read_exactly(fd, size))
    dask.config.update(dask.config.config, spec["config"], priority="new")
    sys.path[:] = spec["sys_path"]
    os.chdir(spec["cwd"])
    threading.Thread(target=_exit_when_driver_is_gone, args=(fd,), daemon=True,
                     name="daskflow-driver-pulse").start()
    # the Nanny's own log lines at the level LocalCluster gives them (its
    # silence_logs), for the whole life of the process
    try:
        run_like_dask_worker(lambda: _serve(spec), spec["options"].get("silence_logs")
                             or logging.WARNING)
    except Exception as exc:
        # one line the driver quotes: the root cause, not the Nanny's wrapper
        while exc.__cause__ is not None or exc.__context__ is not None:
            exc = exc.__cause__ or exc.__context__
        sys.stderr.write(f"daskflow: worker {spec['name']!r} could not start: "
                         f"{type(exc).__name__}: {exc}\n")
        sys.exit(1)
