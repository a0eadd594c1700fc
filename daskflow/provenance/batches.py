"""Turning the provenance plugin's queued events into the store's batches.

The plugin's hooks queue small tuples (``("new", key, when, description,
dependencies)``, ``("transition", ...)``, a chunk's ``("times", ...)`` and
``("calls", ...)`` reports, ...). ``to_batch`` turns a run of them into one
batch of rows and updates for ``ProvenanceStore.record`` and
``WorkflowState.apply``; ``private`` keeps of it only what may be kept.
Both run in the run's writer process (``provenance.writer``).
"""

from __future__ import annotations

from typing import Any

from .. import worker_fates
from ..redaction import redact_batch, redact_text
from .blocks import CallBlock, block_of
from .calls import opened, rows
from .report import USAGE_FIELDS, chunk_spans, chunk_times, chunk_usage

STATES = {"memory": "done", "erred": "failed", "processing": "running",
          "forgotten": None, "released": None, "waiting": "pending", "queued": "pending",
          "no-worker": "pending"}


CANCELLED = ("AppCancelled:", "AppCancelled(")  # how a cancelled call's error reads


def to_batch(items: list, memo_hits: set[str], chunks: set[str], bash: set[str],
             lost: dict[str, set[str]] | None = None,
             blocks: dict[str, CallBlock] | None = None) -> tuple[dict[str, list], tuple | None]:
    """Queue items → the store's batch (tasks, deps, transitions, updates, tries,
    files, workers, and ``blocks``: the ``CallBlock`` of each chunk of plain calls that
    is new in the batch or finished in it). ``blocks`` holds the blocks
    whose chunk has not reported yet, from one batch to the next."""
    batch: dict[str, list] = {"tasks": [], "deps": [], "transitions": [], "updates": [],
                              "tries": [], "files": [], "blocks": [], "workers": []}
    end = None
    lost = {} if lost is None else lost
    blocks = {} if blocks is None else blocks
    in_batch: set[str] = set()  # chunk keys of the blocks in batch["blocks"]
    for item in items:
        kind = item[0]
        if kind == "new":
            _, key, when, desc, deps = item
            desc = opened(desc)
            block = block_of(key, when, desc)
            if block is not None:
                chunks.add(key)
                blocks[key] = block
                batch["blocks"].append(block)
                in_batch.add(key)
                continue
            new = rows(key, when, desc, deps)
            if new and new[0]["chunk_key"] is not None:
                chunks.add(key)
            if [row.pop("bash") for row in new if "bash" in row][:1] == [True] \
                    and new[0]["chunk_key"] is None:
                bash.add(key)
            batch["tasks"].extend(new)
            for row in new:
                batch["deps"].extend((row["key"], dep) for dep in row.pop("deps"))
                streams = row.pop("streams", None)
                if streams:
                    batch["updates"].append({"key": row["key"], **streams})
        elif kind == "transition":
            _, key, start, finish, when, info = item
            worker = info.get("worker")
            batch["transitions"].append((key, start, finish, when, worker))
            update = None if key in chunks else _update_for(key, finish, when, info)
            if finish == "forgotten":
                blocks.pop(key, None)  # never reported: its calls stay as they were
                chunks.discard(key)
                memo_hits.discard(key)
                bash.discard(key)
            if update and info.get("lost") and not info.get("fate"):
                lost.setdefault(info["lost"], set()).add(key)  # its cause may come later
            if update:
                if update["state"] == "done" and key in memo_hits:
                    update["state"] = "memo"
                if update["state"] == "done" and key in bash:
                    update["exit_code"] = 0
                batch["updates"].append(update)
        elif kind == "times":
            _, msg, worker = item
            host = _host(worker) if worker else None
            block = blocks.pop(msg["chunk"], None)
            if block is not None:
                block.finish(*chunk_spans(msg), worker, host, msg.get("exit_code"),
                             chunk_usage(msg))
                if block.chunk_key not in in_batch:
                    batch["blocks"].append(block)
                    in_batch.add(block.chunk_key)
                continue
            done = {"state": "done", "tries": 1, "worker": worker, "host": host}
            if msg.get("exit_code") is not None:
                done["exit_code"] = msg["exit_code"]
            batch["updates"].extend(
                {"key": key, "started": start, "finished": end, **done,
                 **(dict(zip(USAGE_FIELDS, used)) if used else {})}
                for key, start, end, used in chunk_times(msg))
        elif kind == "calls":
            _, calls, worker = item
            for call in calls:
                if call.get("memo") == "hit":
                    memo_hits.add(call["ident"])
                _call_rows(call, worker, batch)
        elif kind == "shared":  # in-session cache hits: rows of their own
            _, calls, when = item
            for call in calls:
                batch["tasks"].append({"key": call["key"], "tid": call["tid"], "app": call["app"],
                                       "app_hash": call["app_hash"],
                                       "args": f"(identical to {call['shares']})",
                                       "submitted": when, "chunk_key": None, "index": None})
                batch["updates"].append({"key": call["key"], "state": "memo", "memo": "hit",
                                         "started": when, "finished": when})
                batch["deps"].append((call["key"], call["shares"]))
        elif kind == "fate":  # why a worker left, learnt after its tasks were recorded
            _, worker, cause = item
            for key in sorted(lost.pop(worker, ())):
                batch["updates"].append({"key": key, "exception": lost_error(worker, cause)})
        elif kind == "worker":  # one joined or left the run (plugin.add_worker, remove_worker)
            batch["workers"].append(item[1])
        elif kind == "end":
            end = end or (item[1], item[2])
    batch["updates"] = _merged(batch["updates"])
    return batch, end


def _merged(updates: list[dict]) -> list[dict]:
    """One update per key, later fields over earlier ones (the store may apply
    a batch's updates in any order)."""
    merged: dict[str, dict] = {}
    for update in updates:
        known = merged.get(update["key"])
        if known is None:  # most keys: one update (its None fields mean "not known")
            merged[update["key"]] = update
        else:
            merged[update["key"]] = {**known, **{k: v for k, v in update.items()
                                                 if v is not None}}
    return list(merged.values())


def private(batch: dict[str, list], record_arguments: bool) -> dict[str, list]:
    """What of a batch may be kept, in one place: call arguments as digests
    (unless the run records them) and every text redacted (URL passwords,
    signed query strings; see ``redaction``). Applied before the batch goes
    to the live state and to the store."""
    for row in batch.get("tasks") or ():
        digest = row.pop("args_digest", None)
        if digest is not None and not record_arguments:
            row["args"] = digest
    for block in batch.get("blocks") or ():
        block.keep_private(record_arguments, redact_text)
    return redact_batch(batch)


def _update_for(key: str, finish: str, when: float, info: dict) -> dict | None:
    state = STATES.get(finish)
    if state is None:
        return None
    update: dict[str, Any] = {"key": key, "state": state}
    if finish == "processing":
        update["started"] = when
        update["worker"] = info.get("worker")
    elif finish in ("memory", "erred"):
        update["finished"] = when
        startstops = info.get("startstops") or ()
        for ss in startstops:
            if ss.get("action") == "compute":
                update["started"], update["finished"] = ss["start"], ss["stop"]
        if info.get("worker"):
            update["worker"] = info["worker"]
            update["host"] = _host(info["worker"])
        if finish == "erred":
            update["exception"] = _erred_text(info)
            update["traceback"] = info.get("traceback_text")
            update["state"] = failed_or_cancelled(update["exception"])
        elif info.get("nbytes") is not None:
            update["nbytes"] = info["nbytes"]
        if info.get("usage"):
            update.update(zip(USAGE_FIELDS, info["usage"]))
    return update


def failed_or_cancelled(error: str | None) -> str:
    """A call's end state from its error's text: ``AppCancelled`` is a cancel."""
    return "cancelled" if error and error.startswith(CANCELLED) else "failed"


def _erred_text(info: dict) -> str:
    """Why a task erred: its own exception, its lost worker, or the dependency blamed."""
    if info.get("exception_text"):
        return info["exception_text"]
    if info.get("lost"):
        return lost_error(info["lost"], info.get("fate"))
    blamed = info.get("blamed")
    if blamed:
        app, tid = blamed
        return f"dependency {app} tid {tid} failed" if tid is not None \
            else f"dependency {app} failed"
    return "a dependency failed"


def lost_error(worker: str, cause: str | None) -> str:
    return "WorkerLost: " + worker_fates.lost_text(worker, cause)


def _host(address: str) -> str:
    host = address.split("://", 1)[-1]
    return host.rsplit(":", 1)[0]


def _call_rows(call: dict, worker: str | None, batch: dict[str, list]) -> None:
    key = call["ident"]
    tries = len(call["tries"]) + (0 if call.get("error") else 1)
    update = {"key": key, "memo": call.get("memo"), "tries": tries,
              "exit_code": call.get("exit_code"),
              "started": call.get("start"), "finished": call.get("end"), "worker": worker,
              "host": _host(worker) if worker else None}
    if call.get("memo") == "hit":
        update["state"] = "memo"
    if "[" in key:  # a chunked call: the chunk's own transitions do not speak for it
        update["state"] = update.get("state") or (
            failed_or_cancelled(call["error"]) if call.get("error") else "done")
        update["exception"] = call.get("error")
    if call.get("usage"):
        update.update(zip(USAGE_FIELDS, call["usage"]))
    if call.get("skipped"):
        update["tries"] = 0
    batch["updates"].append({k: v for k, v in update.items() if v is not None})
    for number, start, end, error in call["tries"]:
        batch["tries"].append({"key": key, "try": number, "start": start, "end": end,
                               "worker": worker, "exception": error})
    for direction, url, size, checksum in call.get("files") or ():
        batch["files"].append({"key": key, "direction": direction, "url": url, "size": size,
                               "checksum": checksum})
