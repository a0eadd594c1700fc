"""What a call used: CPU time (user, system), peak memory, bytes read and
written, from the kernel's own accounting (``getrusage``), as provenance
records them per call.

* A Python app: the thread that ran it (``RUSAGE_THREAD``, the task's
  thread and a walltime's helper), and the worker process's peak resident
  memory when it ended (a process-wide high-water mark: the kernel keeps no
  other).
* A bash or MPI app: its command's process tree, as ``os.wait4`` reports it
  when the command ends (the command and every descendant it waited for;
  peak memory is the largest of their peaks).

Bytes read and written are those that went to or came from storage (the
kernel's block I/O accounting, as Parsl's monitoring reads them): a read
served from the page cache counts nothing, a write counts as it dirties
the page cache. Two ``getrusage`` calls cost about 0.7 µs; calls shorter
than ``MIN_SECONDS`` are not recorded.
"""

from __future__ import annotations

import resource
import threading

WHO = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)  # Linux: the thread's own
#: calls shorter than this (seconds) are not recorded: what they used is at
#: most their duration, which is; a no-op call then costs one reading, not
#: two and the figures' journey (the provenance budget, docs/performance.md)
MIN_SECONDS = 0.001
BLOCK = 512  # bytes per unit of ru_inblock / ru_oublock
KIB = 1024  # ru_maxrss unit on Linux

_local = threading.local()


class Meter:
    """Measures the calling thread from its creation to ``read``, plus what
    ``add`` is given (a command's processes, a helper thread)."""

    __slots__ = ("start", "user", "system", "peak", "blocks_in", "blocks_out", "children")

    def __init__(self):
        self.start = resource.getrusage(WHO)
        self.user = self.system = 0.0
        self.peak = self.blocks_in = self.blocks_out = 0
        self.children = False  # a command's processes were added: their peak is the call's
        _local.meter = self

    def add(self, usage, children: bool = True) -> None:
        """Add a ``resource.struct_rusage`` of the call's processes (or, with
        ``children`` False, of a helper thread)."""
        self.user += usage.ru_utime
        self.system += usage.ru_stime
        self.blocks_in += usage.ru_inblock
        self.blocks_out += usage.ru_oublock
        if children:
            self.children = True
            self.peak = max(self.peak, usage.ru_maxrss)

    def read(self, seconds: float | None) -> tuple[float, float, int, int, int] | None:
        """``(cpu_user, cpu_system, peak_memory, read_bytes, write_bytes)``:
        seconds, seconds, bytes, bytes, bytes; None for a call that took less
        than ``MIN_SECONDS`` (``seconds``) and started no command. Ends the
        measure."""
        _local.meter = None
        if seconds is not None and seconds < MIN_SECONDS and not self.children:
            return None
        end = resource.getrusage(WHO)
        start = self.start
        peak = self.peak if self.children else end.ru_maxrss
        return (round(end.ru_utime - start.ru_utime + self.user, 6),
                round(end.ru_stime - start.ru_stime + self.system, 6),
                peak * KIB,
                (end.ru_inblock - start.ru_inblock + self.blocks_in) * BLOCK,
                (end.ru_oublock - start.ru_oublock + self.blocks_out) * BLOCK)


def current() -> Meter | None:
    """The meter of the call this thread runs, if any."""
    return getattr(_local, "meter", None)


def thread_usage() -> resource.struct_rusage:
    """This thread's usage so far (a helper thread's, to ``Meter.add``)."""
    return resource.getrusage(WHO)


def since(start, end) -> _Delta:
    """The usage between two ``thread_usage`` readings."""
    return _Delta(end.ru_utime - start.ru_utime, end.ru_stime - start.ru_stime,
                  end.ru_inblock - start.ru_inblock, end.ru_oublock - start.ru_oublock)


class _Delta:
    __slots__ = ("ru_utime", "ru_stime", "ru_inblock", "ru_oublock", "ru_maxrss")

    def __init__(self, utime, stime, inblock, oublock):
        self.ru_utime, self.ru_stime = utime, stime
        self.ru_inblock, self.ru_oublock, self.ru_maxrss = inblock, oublock, 0
