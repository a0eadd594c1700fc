"""A chunk's plain calls, recorded as one row instead of a row per call.

A loop of no-op calls runs at 20,000 calls/s on two cores, and a row per
call (its dict, redaction, its statement and index entries, then its
update when the chunk ends) cost the writer process about 20 µs of CPU per
call: a fifth of the machine, taken from the workers and the driver. Most
calls of a chunk have nothing of their own to tell (no dependency, no
stream, one try), so they are kept together: one ``chunk_calls`` row per
chunk whose ``calls`` column is a JSON array of ``[tid, args]`` per call,
``[tid, args, start, end]`` once it finished at its first try (and what
it used: CPU, peak memory, bytes read and written). The store's
``tasks`` view shows them as rows like any other (see ``store``); a call
that later has more to tell (a failure, a retry, a memo hit, Files) gets a
row of its own, which the view shows instead.
"""

from __future__ import annotations

from dataclasses import dataclass
import json

from ..signing import arguments_digest
from .calls import _cut


@dataclass(slots=True)
class CallBlock:
    """The plain calls of one chunk: what their rows would have held.

    ``times`` is None until the chunk's report came; then one
    ``(start, end)`` per call, or None for a call reported on its own.
    """

    chunk_key: str
    app: str
    app_hash: str | None
    submitted: float
    tids: list[str]
    args: list[str]  # argument texts; digests once ``private`` ran (unless recorded)
    times: list | None = None
    usage: list | None = None  # per call, as ``times``: ``report.USAGE_FIELDS`` or None
    worker: str | None = None
    host: str | None = None
    exit_code: int | None = None
    private: bool = False  # ``args`` hold only what may be kept

    def finish(self, index, times, worker: str | None, host: str | None,
               exit_code: int | None, usage: list | None = None) -> None:
        """Take the chunk's report: ``times`` holds start and end of call
        ``index[n]`` at ``2n`` and ``2n + 1``; ``usage[n]`` what it used."""
        spans = self.times or [None] * len(self.tids)
        for n, i in enumerate(index):
            spans[i] = (times[2 * n], times[2 * n + 1])
        if usage:  # calls shorter than a millisecond have none (most of a block's)
            used = self.usage or [None] * len(self.tids)
            for n, i in enumerate(index[:len(usage)]):
                used[i] = usage[n]
            self.usage = used
        self.times, self.worker, self.host, self.exit_code = spans, worker, host, exit_code

    def keep_private(self, record_arguments: bool, redact) -> None:
        """Keep only what may be kept of the arguments (once): their
        digests, or the texts redacted when the run records arguments."""
        if self.private:
            return
        self.private = True
        if record_arguments:
            self.args = [redact(text) if "@" in text or "=" in text else text
                         for text in self.args]
        else:
            self.args = [arguments_digest(text) for text in self.args]

    def tally(self) -> tuple:
        """``(calls, done, seconds, cpu_user, cpu_system, peak_memory,
        read_bytes, write_bytes)``: how many calls, how many of them
        finished, their summed durations, and what they used (summed; the
        largest peak), which the store counts from."""
        spans = [span for span in self.times or () if span is not None]
        counts = (len(self.tids), len(spans), sum(end - start for start, end in spans))
        used = [u for u in self.usage if u is not None] if self.usage else ()
        if not used:
            return (*counts, None, None, None, None, None)
        return (*counts, sum(u[0] for u in used), sum(u[1] for u in used),
                max(u[2] for u in used), sum(u[3] for u in used), sum(u[4] for u in used))

    def calls_json(self) -> str:
        """The ``calls`` column: ``[tid, args]``, or ``[tid, args, start, end]``
        once done, followed by the five ``report.USAGE_FIELDS`` if measured."""
        if self.times is None:
            return json.dumps(list(zip(self.tids, self.args)))
        if self.usage is None:
            return json.dumps([[tid, args, *span] if span else [tid, args]
                               for tid, args, span in zip(self.tids, self.args, self.times)])
        return json.dumps([[tid, args, *span, *(u or ())] if span else [tid, args]
                           for tid, args, span, u in zip(self.tids, self.args, self.times,
                                                          self.usage)])


def block_of(key: str, when: float, desc: dict) -> CallBlock | None:
    """The block of a chunk's description (``calls.of_chunk``), or None if
    one of its calls needs a row of its own from the start: it depends on
    another call, or the app is a bash app (streams and exit codes)."""
    calls = desc.get("calls")
    if not calls or desc.get("bash") or desc.get("streams") or "output" in desc:
        return None
    if any(members for _tid, _text, members in calls):
        return None
    return CallBlock(key, desc["app"], desc["hash"], when, [str(tid) for tid, _, _ in calls],
                     [_cut(text) for _, text, _ in calls])
