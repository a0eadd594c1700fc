"""The provenance store: one SQLite database per run.

Each run of a workflow has a directory ``RUNINFO/NNN/`` (``000``, ``001``, …
as in Parsl; ``RUNINFO`` is the dask config value ``daskflow.run-dir``,
``runinfo`` by default) holding ``provenance.db``. One writer (the scheduler
plugin, from a background thread, in batches) fills it; any number of readers
(``daskflow runs/show/tasks/graph``, notebooks) query it at the same time.
The database is in WAL mode: readers open it read-only and never block the
writer, and a run killed with ``kill -9`` leaves a readable database (every
committed batch is in it).

Schema
------
``runs``
    One row per run: ``run_id`` ("NNN"), ``script``, ``user``, ``host``,
    ``cwd``, ``start_time`` / ``end_time`` (epoch seconds; ``end_time`` NULL
    until the run ends), ``status`` ("completed", "failed", …; NULL until the
    end), ``profile``, ``versions`` (JSON object), ``scheduler`` (address),
    ``writer_pid`` / ``writer_host`` (the process that wrote the run, used to
    tell a live run from a killed one).
``tasks``
    One row per task (a view: see "How calls are stored" below), ``key``
    (the Dask key; ``"{chunk_key}[{index}]"`` for a call of a chunk) is
    unique. ``tid`` (text: "12", or "7.1"
    for calls made inside join app 7), ``app``, ``app_hash``, ``args`` (a
    keyed digest ``"hmac-sha256:…"`` of the call's arguments, or their repr
    with ``daskflow.provenance.record-arguments``),
    ``chunk_key`` / ``chunk_index`` (NULL unless chunked), ``state`` (pending,
    running, done, failed, memo, cancelled), ``memo`` ("hit", "miss" or
    NULL), ``tries``, ``submitted`` / ``started`` / ``finished`` (epoch s),
    ``worker``, ``host``, ``exception``, ``traceback``, ``exit_code``,
    ``stdout``, ``stderr`` (paths or text), ``nbytes`` (result size),
    and what the call used (version 3): ``cpu_user``, ``cpu_system``
    (seconds), ``peak_memory``, ``read_bytes``, ``write_bytes`` (bytes; see
    ``worker.usage`` for what each counts).
``dependencies``
    ``(key, depends_on)``: task ``key`` used the result of ``depends_on``.
``transitions``
    ``(key, start_state, finish_state, time, worker)``: the scheduler's state
    transitions of a task (Dask states: released, waiting, processing, …).
``tries``
    ``(key, try, start_time, end_time, worker, exception)``: one row per try.
``files``
    ``(key, direction, url, size, checksum)``: Files a task used
    (direction "in") or generated ("out").

``PRAGMA user_version`` holds the schema version (:data:`SCHEMA_VERSION`).

How calls are stored: ``tasks`` is a view over two tables. ``call_rows``
has a row per task with the columns above. ``chunk_calls`` has a row per
chunk of plain calls (``blocks``: no dependencies, not bash): ``chunk_key``,
``app``, ``app_hash``, ``submitted``, ``worker``, ``host``, ``exit_code``
and ``calls``, a JSON array of ``[tid, args]`` per call, ``[tid, args,
start, end, cpu_user, cpu_system, peak_memory, read_bytes, write_bytes]``
once it finished at its first try, and the chunk's tallies (``n``,
``n_done``, ``seconds`` and the usage summed, peak the largest: the
counts read them). A call of such a chunk
with more to tell (a failure, a retry, a memo hit, Files) has a row in
``call_rows`` too, which the view shows instead. ``packed_calls`` is the
view of the ``chunk_calls`` rows as task rows. Version 1 databases have a
``tasks`` table; opening one to write renames it ``call_rows``.

Privacy: every text comes redacted (URL passwords, signed query strings;
``daskflow.redaction``), run directories are created 0700 and the database
(with SQLite's ``-wal``/``-shm`` beside it) 0600, whatever the umask. A
runinfo directory that exists is left as it is (a team may share one); one
that is missing is created 0700.
"""

from __future__ import annotations

from contextlib import contextmanager
import functools
import json
import os
import socket
import sqlite3
import threading
from urllib.request import pathname2url

import dask

from .. import config  # noqa: F401  (daskflow's dask config defaults)
from ..private import DIR_MODE, create_file, make_dir

DB_NAME = "provenance.db"
SCHEMA_VERSION = 3
STATES = ("pending", "running", "done", "failed", "memo", "cancelled")
WORKER_FIELDS = ("address", "name", "host", "pool", "block", "threads", "joined", "left")

#: what a call used (version 3 on), as ``report.USAGE_FIELDS``
USAGE_COLUMNS = (("cpu_user", "REAL"), ("cpu_system", "REAL"), ("peak_memory", "INTEGER"),
                 ("read_bytes", "INTEGER"), ("write_bytes", "INTEGER"))
USAGE = tuple(name for name, _ in USAGE_COLUMNS)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, script TEXT, user TEXT, host TEXT, cwd TEXT,
    start_time REAL, end_time REAL, status TEXT, profile TEXT, versions TEXT,
    scheduler TEXT, writer_pid INTEGER, writer_host TEXT);
CREATE TABLE IF NOT EXISTS call_rows (
    key TEXT PRIMARY KEY, tid TEXT, app TEXT, app_hash TEXT, args TEXT,
    chunk_key TEXT, chunk_index INTEGER,
    state TEXT NOT NULL DEFAULT 'pending', memo TEXT, tries INTEGER,
    submitted REAL, started REAL, finished REAL, worker TEXT, host TEXT,
    exception TEXT, traceback TEXT, exit_code INTEGER, stdout TEXT,
    stderr TEXT, nbytes INTEGER{usage});
CREATE TABLE IF NOT EXISTS chunk_calls (
    chunk_key TEXT PRIMARY KEY, app TEXT, app_hash TEXT, submitted REAL,
    worker TEXT, host TEXT, exit_code INTEGER, calls TEXT NOT NULL,
    n INTEGER NOT NULL, n_done INTEGER NOT NULL, seconds REAL NOT NULL{usage}) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS packed_calls AS
    SELECT c.chunk_key || '[' || j.key || ']' AS key,
           json_extract(j.value, '$[0]') AS tid, c.app AS app, c.app_hash AS app_hash,
           json_extract(j.value, '$[1]') AS args, c.chunk_key AS chunk_key,
           j.key AS chunk_index,
           CASE WHEN json_array_length(j.value) > 2 THEN 'done' ELSE 'pending' END AS state,
           NULL AS memo,
           CASE WHEN json_array_length(j.value) > 2 THEN 1 END AS tries,
           c.submitted AS submitted, json_extract(j.value, '$[2]') AS started,
           json_extract(j.value, '$[3]') AS finished,
           CASE WHEN json_array_length(j.value) > 2 THEN c.worker END AS worker,
           CASE WHEN json_array_length(j.value) > 2 THEN c.host END AS host,
           NULL AS exception, NULL AS traceback,
           CASE WHEN json_array_length(j.value) > 2 THEN c.exit_code END AS exit_code,
           NULL AS stdout, NULL AS stderr, NULL AS nbytes,
           json_extract(j.value, '$[4]') AS cpu_user, json_extract(j.value, '$[5]') AS cpu_system,
           json_extract(j.value, '$[6]') AS peak_memory,
           json_extract(j.value, '$[7]') AS read_bytes,
           json_extract(j.value, '$[8]') AS write_bytes
    FROM chunk_calls AS c, json_each(c.calls) AS j;
CREATE VIEW IF NOT EXISTS tasks AS
    SELECT * FROM call_rows
    UNION ALL
    SELECT * FROM packed_calls AS p
    WHERE NOT EXISTS (SELECT 1 FROM call_rows AS r WHERE r.key = p.key);
CREATE TABLE IF NOT EXISTS dependencies (
    key TEXT NOT NULL, depends_on TEXT NOT NULL,
    PRIMARY KEY (key, depends_on)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transitions (
    key TEXT NOT NULL, start_state TEXT, finish_state TEXT, time REAL,
    worker TEXT);
CREATE INDEX IF NOT EXISTS transitions_key ON transitions (key);
CREATE TABLE IF NOT EXISTS tries (
    key TEXT NOT NULL, try INTEGER NOT NULL, start_time REAL, end_time REAL,
    worker TEXT, exception TEXT, PRIMARY KEY (key, try));
CREATE TABLE IF NOT EXISTS files (
    key TEXT NOT NULL, direction TEXT NOT NULL, url TEXT NOT NULL,
    size INTEGER, checksum TEXT, PRIMARY KEY (key, direction, url));
CREATE TABLE IF NOT EXISTS workers (
    address TEXT PRIMARY KEY, name TEXT, host TEXT, pool TEXT, block TEXT, threads INTEGER,
    joined REAL, left REAL);
""".replace("{usage}", "".join(f", {name} {kind}" for name, kind in USAGE_COLUMNS))

TASK_COLUMNS = ("key", "tid", "app", "app_hash", "args", "submitted", "chunk_key", "chunk_index")
UPDATE_FIELDS = ("state", "started", "finished", "worker", "host", "exception", "traceback",
                 "exit_code", "stdout", "stderr", "memo", "tries", "nbytes", *USAGE)
NUMERIC = {"started", "finished", "exit_code", "tries", "nbytes", *USAGE}
_TASK_FIELDS = frozenset((*TASK_COLUMNS, "index"))
_UPDATE_KEYS = frozenset((*UPDATE_FIELDS, "key"))
RUN_FIELDS = ("run_id", "script", "user", "host", "cwd", "start", "profile", "versions",
              "scheduler")


def _text(value):
    """A value for a TEXT column: strings as they are, others as JSON (or repr)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=repr)
    return repr(value)


@functools.lru_cache(maxsize=None)
def _upsert(fields: tuple) -> str:
    """One statement for new tasks with the update ``fields`` they already
    have: a known task keeps its first values of ``TASK_COLUMNS`` (columns
    still NULL, of a stub made by an update, are filled) and takes the
    ``fields`` (not NULL). Without ``state``, a new row is pending."""
    columns = (*TASK_COLUMNS, *fields)
    return (f"INSERT INTO call_rows ({', '.join(columns)})"
            f" VALUES ({', '.join('?' * len(columns))}) ON CONFLICT (key) DO UPDATE SET "
            + ", ".join([f"{c} = coalesce(call_rows.{c}, excluded.{c})"
                         for c in TASK_COLUMNS[1:]]
                        + [f"{f} = coalesce(excluded.{f}, call_rows.{f})" for f in fields]))


_BLOCK = ("INSERT INTO chunk_calls (chunk_key, app, app_hash, submitted, worker, host,"
          " exit_code, calls, n, n_done, seconds, " + ", ".join(USAGE) + ")"
          " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
          " ON CONFLICT (chunk_key) DO UPDATE SET worker = excluded.worker,"
          " host = excluded.host, exit_code = excluded.exit_code, calls = excluded.calls,"
          " n = excluded.n, n_done = excluded.n_done, seconds = excluded.seconds, "
          + ", ".join(f"{u} = excluded.{u}" for u in USAGE))
# counts by app and state, as ``SELECT ... FROM tasks GROUP BY app, state`` would
# give them, without expanding the blocks: their tallies, less the calls of a
# block that have rows of their own (read from the block, few)
_USED = ", sum(cpu_user) AS cpu_user, sum(cpu_system) AS cpu_system," \
    " max(peak_memory) AS peak_memory, sum(read_bytes) AS read_bytes," \
    " sum(write_bytes) AS write_bytes"  # version 3 on
_ROW_GROUPS = ("SELECT app, state, count(*) AS n, sum(memo = 'hit') AS hits,"
               " sum(coalesce(tries, 1) > 1) AS retried, sum(finished - started) AS total,"
               " count(finished - started) AS timed{used} FROM call_rows GROUP BY app, state")
_BLOCK_GROUPS = ("SELECT app, 'done' AS state, sum(n_done) AS n, 0 AS hits, 0 AS retried,"
                 " sum(seconds) AS total, sum(n_done) AS timed{used} FROM chunk_calls"
                 " GROUP BY app UNION ALL SELECT app, 'pending', sum(n - n_done), 0, 0, NULL,"
                 " 0{none} FROM chunk_calls GROUP BY app")
_SHADOWED = ("SELECT p.app AS app, p.state AS state, count(*) AS n, 0 AS hits, 0 AS retried,"
             " sum(p.finished - p.started) AS total, count(p.finished - p.started) AS timed"
             "{used_p} FROM call_rows AS r JOIN packed_calls AS p ON p.chunk_key = r.chunk_key"
             " AND p.chunk_index = r.chunk_index WHERE r.chunk_key IS NOT NULL"
             " GROUP BY p.app, p.state")
SUMMED = ("n", "hits", "retried", "total", "timed", "cpu_user", "cpu_system", "read_bytes",
          "write_bytes")
_FROM_BLOCK = ("INSERT OR IGNORE INTO call_rows SELECT * FROM packed_calls"
               " WHERE chunk_key = ? AND chunk_index = ?")


def _add_usage_columns(c) -> None:
    """Give the tables of a database older than version 3 the usage
    columns, and drop the views over them (the schema makes them again)."""
    added = False
    for table in ("call_rows", "chunk_calls"):
        have = {row[1] for row in c.execute(f"PRAGMA table_info({table})")}
        if not have:
            continue
        for name, kind in USAGE_COLUMNS:
            if name not in have:
                c.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                added = True
    if added:
        c.execute("DROP VIEW IF EXISTS tasks")
        c.execute("DROP VIEW IF EXISTS packed_calls")


def _member_of(key: str) -> tuple:
    """``(chunk_key, index)`` of the key of a chunk's call (else ``(key, -1)``)."""
    chunk, bracket, index = key.rpartition("[")
    if bracket and index.endswith("]") and index[:-1].isdigit():
        return chunk, int(index[:-1])
    return key, -1


def _given(record: dict) -> dict:
    """The fields of ``record`` that are not None."""
    return {k: v for k, v in record.items() if v is not None}


def _check(record: dict, allowed: set) -> None:
    unknown = set(record) - allowed
    if unknown:
        raise ValueError(f"unknown task fields: {sorted(unknown)}")


def _run_names(base: str) -> list[str]:
    """The run directories (NNN) under ``base``, in numeric order."""
    try:
        names = [n for n in os.listdir(base) if n.isdigit() and os.path.isdir(os.path.join(base, n))]
    except FileNotFoundError:
        return []
    return sorted(names, key=int)


def default_base() -> str:
    """The runinfo directory: dask config ``daskflow.run-dir`` (``runinfo``)."""
    return str(dask.config.get("daskflow.run-dir", "runinfo"))


def new_run_dir(base: str) -> tuple[str, str]:
    """Create the next run directory ``base/NNN``.

    Parameters
    ----------
    base : str
        The runinfo directory (created 0700 if missing; left as it is if
        present, since a team may share one).

    Returns
    -------
    run_id : str
        "000", "001", …
    path : str
        Absolute path of the new, empty directory, 0700 whatever the umask.
        ``os.mkdir`` is atomic, so concurrent runs never share a directory.
    """
    if not os.path.isdir(base):
        parent = os.path.dirname(os.path.abspath(base))
        os.makedirs(parent, exist_ok=True)
        make_dir(base)  # made meanwhile by another run: as it is
    # after every numbered entry, files too (as Parsl numbers its run directories)
    n = max((int(name) + 1 for name in os.listdir(base) if name.isdigit()), default=0)
    while True:
        run_id = f"{n:03d}"
        path = os.path.abspath(os.path.join(base, run_id))
        if make_dir(path):
            return run_id, path
        n += 1


def find_run(base: str, run: str) -> str:
    """The directory of run ``run`` under ``base``.

    Parameters
    ----------
    base : str
        The runinfo directory.
    run : str
        "NNN" (or the number without zeros), "latest", a negative index
        ("-1" is the latest, "-2" the one before), or a run directory.

    Raises
    ------
    FileNotFoundError
        No such run; the message lists the available runs.
    """
    run = str(run).strip()
    names = _run_names(base)
    wanted = "-1" if run == "latest" else run
    found = None
    if wanted.startswith("-") and wanted[1:].isdigit():
        i = int(wanted)
        if i < 0 and -i <= len(names):
            found = names[i]
    elif run.isdigit():
        found = next((n for n in names if int(n) == int(run)), None)
    elif os.path.isfile(os.path.join(run, DB_NAME)):
        return os.path.abspath(run)
    if found is None:
        listing = ", ".join(names) if names else "none"
        raise FileNotFoundError(f"no run {run!r} in {os.path.abspath(base)}; available runs: {listing}")
    return os.path.abspath(os.path.join(base, found))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        pass
    return True


def run_status(run: dict | None) -> str:
    """The status of a run record, for runs that have not ended too.

    "running" if its writer process is alive on this host, "killed?" if that
    process is gone without ending the run, "unfinished" when that cannot be
    told (written on another host, or no run record).
    """
    if not run:
        return "unfinished"
    if run.get("end_time") is not None:
        return run.get("status") or "completed"
    if run.get("writer_pid") and run.get("writer_host") == socket.gethostname():
        return "running" if _pid_alive(int(run["writer_pid"])) else "killed?"
    return "unfinished"


def _create_private(path: str) -> None:
    """Create the database file 0600 (whatever the umask) before SQLite opens
    it, so it is never readable by others, not even for a moment; SQLite
    creates its -wal and -shm files with the database's mode. A file that is
    there already keeps its mode."""
    try:
        os.close(create_file(path, os.O_RDWR))
    except FileExistsError:
        pass


def _tid_order(tid) -> tuple:
    """Sort key of task ids: "2" < "10" < "10.1"; missing ones last."""
    if tid is None:
        return (1, ())
    return (0, tuple(int(p) if p.isdigit() else 0 for p in str(tid).split(".")), str(tid))


class ProvenanceStore:
    """The provenance database of one run.

    Parameters
    ----------
    path : str
        Path of ``provenance.db``.
    readonly : bool
        Open for reading only (``mode=ro``; the file must exist). Otherwise
        open as the writer: create the file and the schema, WAL journal,
        ``synchronous=NORMAL``. There is one writer per database, used from
        one thread at a time (calls are serialised by a lock).

    Examples
    --------
    >>> store = ProvenanceStore("runinfo/000/provenance.db", readonly=True)  # doctest: +SKIP
    >>> store.summary()["apps"]["multiply"]["states"]  # doctest: +SKIP
    {'done': 10, 'failed': 1}
    """

    def __init__(self, path: str, readonly: bool = False):
        self.path = os.path.abspath(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        if readonly:
            if not os.path.isfile(self.path):
                raise FileNotFoundError(f"no provenance database at {self.path}")
            uri = f"file:{pathname2url(self.path)}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 10000")
        else:
            os.makedirs(os.path.dirname(self.path), mode=DIR_MODE, exist_ok=True)
            _create_private(self.path)
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._transaction() as c:
                if c.execute("SELECT 1 FROM sqlite_master WHERE name = 'tasks'"
                             " AND type = 'table'").fetchone():  # version 1
                    c.execute("ALTER TABLE tasks RENAME TO call_rows")
                _add_usage_columns(c)  # versions 1 and 2
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._conn.row_factory = sqlite3.Row

    def __enter__(self) -> ProvenanceStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a second call does nothing)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _transaction(self, mode: str = "IMMEDIATE"):
        """One transaction (a write one by default, "DEFERRED" for a consistent read)."""
        with self._lock:
            if self._conn is None:
                raise ValueError("the provenance store is closed")
            c = self._conn
            c.execute(f"BEGIN {mode}")
            try:
                yield c
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

    # -- writer side ---------------------------------------------------------

    def start_run(self, run: dict) -> None:
        """Record the start of a run.

        Parameters
        ----------
        run : dict
            ``run_id``, ``script``, ``user``, ``host``, ``cwd``, ``start``
            (epoch s), ``profile``, ``versions`` (dict, stored as JSON),
            ``scheduler`` (address). Missing keys are stored as NULL.
        """
        values = {k: run.get(k) for k in RUN_FIELDS}
        values["versions"] = _text(values["versions"])
        with self._transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO runs (run_id, script, user, host, cwd, start_time, profile,"
                " versions, scheduler, writer_pid, writer_host) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (*(values[k] for k in RUN_FIELDS), os.getpid(), socket.gethostname()))

    def end_run(self, run_id: str, end: float, status: str) -> None:
        """Record the end time and status ("completed", "failed", …) of a run."""
        with self._transaction() as c:
            c.execute("UPDATE runs SET end_time = ?, status = ? WHERE run_id = ?", (end, status, run_id))

    def record(self, batch: dict) -> None:
        """Write one batch of events in one transaction.

        Parameters
        ----------
        batch : dict
            Each key optional, each value a list:

            - ``"tasks"``: dicts ``key, tid, app, app_hash, args, submitted,
              chunk_key, index``. A task already known keeps its values
              (columns still NULL, e.g. of a stub made by an update, are filled).
            - ``"deps"``: ``(key, depends_on_key)`` tuples.
            - ``"transitions"``: ``(key, start_state, finish_state, time,
              worker)`` tuples.
            - ``"updates"``: dicts with ``key`` and any of
              :data:`UPDATE_FIELDS`; only the fields that are not None are
              set. An update of an unknown key creates the task's row.
            - ``"tries"``: dicts ``key, try, start, end, worker, exception``.
            - ``"files"``: dicts ``key, direction ("in"/"out"), url, size,
              checksum``.
            - ``"workers"``: dicts of :data:`WORKER_FIELDS` (``address``
              always): a worker that joined the run (``joined``), or left
              it (``left``; a worker joining again at the same address
              clears it).

        Raises
        ------
        ValueError
            A task or update names an unknown field (nothing is written).
        """
        new: dict[str, dict] = {}  # key -> the batch's first row of each new task
        for t in batch.get("tasks") or ():
            if not t.keys() <= _TASK_FIELDS:
                _check(t, _TASK_FIELDS)
            first = new.get(t["key"])
            # a task given twice keeps its first values (columns still None are filled)
            new[t["key"]] = t if first is None else {**t, **_given(first)}
        folded: dict[str, dict] = {}  # key of a new task -> its updates in this batch
        updates: dict[tuple, list] = {}  # of tasks not new in this batch: fields set -> rows
        for u in batch.get("updates") or ():
            if not u.keys() <= _UPDATE_KEYS:
                _check(u, _UPDATE_KEYS)
            key = u["key"]
            if key in new:  # one statement for the new task and its updates
                folded[key] = {**folded[key], **_given(u)} if key in folded else u
                continue
            fields = tuple(f for f, v in u.items() if v is not None and f != "key")
            if fields:
                updates.setdefault(fields, []).append(
                    (*(u[f] if f in NUMERIC else _text(u[f]) for f in fields), key))
        inserts: dict[tuple, list] = {}  # update fields of new tasks -> rows
        for key, t in new.items():
            row = (key, _text(t.get("tid")), t.get("app"), t.get("app_hash"), _text(t.get("args")),
                   t.get("submitted"), t.get("chunk_key"), t.get("index", t.get("chunk_index")))
            u = folded.get(key)
            if u is None:
                inserts.setdefault((), []).append(row)
                continue
            fields = tuple(f for f, v in u.items() if v is not None and f != "key")
            inserts.setdefault(fields, []).append(
                (*row, *(u[f] if f in NUMERIC else _text(u[f]) for f in fields)))
        with self._transaction() as c:
            if batch.get("blocks"):
                c.executemany(_BLOCK, [(b.chunk_key, b.app, b.app_hash, b.submitted, b.worker,
                                        b.host, b.exit_code, b.calls_json(), *b.tally())
                                       for b in batch["blocks"]])
            for fields, task_rows in inserts.items():
                c.executemany(_upsert(fields), task_rows)
            for fields, task_rows in updates.items():
                sql = f"UPDATE call_rows SET {', '.join(f'{f} = ?' for f in fields)} WHERE key = ?"
                if c.executemany(sql, task_rows).rowcount < len(task_rows):
                    # a call of a block now has a row of its own, with what the block said
                    c.executemany(_FROM_BLOCK, [_member_of(row[-1]) for row in task_rows])
                    # an update that came before its task: a stub the task's insert fills
                    c.executemany("INSERT OR IGNORE INTO call_rows (key) VALUES (?)",
                                  [(row[-1],) for row in task_rows])
                    c.executemany(sql, task_rows)
            if batch.get("deps"):
                c.executemany("INSERT OR IGNORE INTO dependencies (key, depends_on) VALUES (?, ?)",
                              [tuple(d) for d in batch["deps"]])
            if batch.get("transitions"):
                c.executemany("INSERT INTO transitions (key, start_state, finish_state, time, worker)"
                              " VALUES (?,?,?,?,?)", [tuple(t) for t in batch["transitions"]])
            if batch.get("tries"):
                c.executemany(
                    "INSERT INTO tries (key, try, start_time, end_time, worker, exception)"
                    " VALUES (?,?,?,?,?,?) ON CONFLICT (key, try) DO UPDATE SET"
                    " start_time = coalesce(excluded.start_time, start_time),"
                    " end_time = coalesce(excluded.end_time, end_time),"
                    " worker = coalesce(excluded.worker, worker),"
                    " exception = coalesce(excluded.exception, exception)",
                    [(t["key"], t["try"], t.get("start"), t.get("end"), t.get("worker"),
                      _text(t.get("exception"))) for t in batch["tries"]])
            if batch.get("workers"):
                c.executemany(
                    "INSERT INTO workers (address, name, host, pool, block, threads, joined,"
                    " left) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (address) DO UPDATE SET"
                    " name = coalesce(excluded.name, name), host = coalesce(excluded.host, host),"
                    " pool = coalesce(excluded.pool, pool), block = coalesce(excluded.block, block),"
                    " threads = coalesce(excluded.threads, threads),"
                    " joined = coalesce(joined, excluded.joined),"
                    " left = CASE WHEN excluded.joined IS NOT NULL THEN NULL"
                    " ELSE coalesce(excluded.left, left) END",
                    [tuple(w.get(f) for f in WORKER_FIELDS) for w in batch["workers"]])
            if batch.get("files"):
                c.executemany(
                    "INSERT INTO files (key, direction, url, size, checksum) VALUES (?,?,?,?,?)"
                    " ON CONFLICT (key, direction, url) DO UPDATE SET"
                    " size = coalesce(excluded.size, size),"
                    " checksum = coalesce(excluded.checksum, checksum)",
                    [(f["key"], f["direction"], f["url"], f.get("size"), f.get("checksum"))
                     for f in batch["files"]])

    # -- reader side ---------------------------------------------------------

    def _query(self, sql: str, params=()) -> list[dict]:
        with self._lock:
            if self._conn is None:
                raise ValueError("the provenance store is closed")
            return [dict(r) for r in self._conn.execute(sql, params)]

    def runs(self) -> list[dict]:
        """The run records (``versions`` decoded), each with its derived ``status``
        (see ``run_status``) and ``duration`` (s, None if not ended)."""
        rows = self._query("SELECT * FROM runs ORDER BY start_time, run_id")
        for r in rows:
            r["versions"] = json.loads(r["versions"]) if r["versions"] else {}
            r["status"] = run_status(r)
            r["duration"] = (r["end_time"] - r["start_time"]
                             if r["end_time"] is not None and r["start_time"] is not None else None)
        return rows

    def tasks(self, state=None, app=None) -> list[dict]:
        """The tasks, in task-id order, each a dict of its columns plus ``duration``.

        Parameters
        ----------
        state : str or list of str, optional
            Keep only tasks in this state (these states).
        app : str or list of str, optional
            Keep only tasks of this app (these apps).
        """
        where, params = [], []
        for col, want in (("state", state), ("app", app)):
            if want is not None:
                want = [want] if isinstance(want, str) else list(want)
                where.append(f"{col} IN ({', '.join('?' * len(want))})")
                params += want
        sql = "SELECT *, finished - started AS duration FROM tasks"
        rows = self._query(sql + (" WHERE " + " AND ".join(where) if where else ""), params)
        return sorted(rows, key=lambda r: (_tid_order(r["tid"]), r["key"]))

    def dependencies(self, by: str = "tid") -> list[tuple[str, str]]:
        """The edges ``(task, depends_on)``: ``task`` used the result of ``depends_on``.

        Parameters
        ----------
        by : {"tid", "key"}, default "tid"
            Name tasks by task id (a task without one by its Dask key), or
            by Dask key.

        Returns
        -------
        list of (str, str)
            Sorted by task, then by dependency.
        """
        with self._transaction("DEFERRED"):
            rows = [(r["key"], r["depends_on"])
                    for r in self._query("SELECT key, depends_on FROM dependencies")]
            if by != "key" and rows:  # tasks is a view: one pass, not a join per edge
                tids = {r["key"]: r["tid"] for r in self._query("SELECT key, tid FROM tasks")}
                rows = [(tids.get(a) or a, tids.get(b) or b) for a, b in rows]
        return sorted(rows, key=lambda e: (_tid_order(e[0]), _tid_order(e[1])))

    def _rows(self, table: str, key: str | None, order: str) -> list[dict]:
        where = " WHERE key = ?" if key is not None else ""
        return self._query(f"SELECT * FROM {table}{where} ORDER BY {order}",
                           () if key is None else (key,))

    def transitions(self, key: str | None = None) -> list[dict]:
        """The recorded scheduler transitions (of task ``key``), in time order."""
        return self._rows("transitions", key, "time, rowid")

    def tries(self, key: str | None = None) -> list[dict]:
        """The recorded tries (of task ``key``)."""
        return self._rows("tries", key, "key, try")

    def files(self, key: str | None = None) -> list[dict]:
        """The Files used ("in") and generated ("out") by the tasks (by task ``key``)."""
        return self._rows("files", key, "key, direction, url")

    def workers(self) -> list[dict]:
        """The workers that took part in the run (``WORKER_FIELDS``), by
        time of joining; none for a run recorded before workers were."""
        try:
            return self._query("SELECT * FROM workers ORDER BY joined, address")
        except sqlite3.OperationalError:  # an older database: no such table
            return []

    def recent(self, limit: int) -> list[dict]:
        """The last ``limit`` calls to finish (done or failed, with both
        times): ``worker, started, finished, app, tid, state``, oldest first."""
        rows = self._query(
            "SELECT worker, started, finished, app, tid, state FROM tasks WHERE started IS NOT"
            " NULL AND finished IS NOT NULL AND state IN ('done', 'failed')"
            " ORDER BY finished DESC LIMIT ?", (limit,))
        return rows[::-1]

    def last_failures(self, limit: int) -> list[dict]:
        """The last ``limit`` failed calls: ``key, app, tid, worker, finished,
        exception``, oldest first."""
        table = "call_rows" if self._version() >= 2 else "tasks"  # a failed call has a row
        return self._query(
            f"SELECT key, app, tid, worker, finished, exception FROM {table}"
            " WHERE state = 'failed' ORDER BY finished DESC LIMIT ?", (limit,))[::-1]

    def running_by_worker(self) -> dict[str, int]:
        """How many calls each worker is running now."""
        return {r["worker"]: r["n"] for r in self._query(
            "SELECT worker, count(*) AS n FROM tasks WHERE state = 'running'"
            " AND worker IS NOT NULL GROUP BY worker")}

    def _version(self) -> int:
        """The database's schema version (``PRAGMA user_version``)."""
        return self._query("PRAGMA user_version")[0]["user_version"]

    def _groups(self) -> list[dict]:
        """Task counts by app and state (with memo hits, retried, summed and
        counted durations), as a ``GROUP BY`` over ``tasks`` would give them,
        in time that grows with the chunks, not with the calls."""
        merged: dict[tuple, dict] = {}
        version = self._version()
        used = {"used": _USED, "none": ", NULL, NULL, NULL, NULL, NULL",
                "used_p": _USED.replace("(", "(p.")} if version >= 3 else \
            {"used": "", "none": "", "used_p": ""}
        parts = ((1, _ROW_GROUPS), (1, _BLOCK_GROUPS), (-1, _SHADOWED))
        if version < 2:  # one table of rows, named tasks
            parts = ((1, _ROW_GROUPS.replace("FROM call_rows", "FROM tasks")),)
        for sign, sql in parts:
            for g in self._query(sql.format(**used)):
                g = dict(g)
                into = merged.setdefault((g["app"], g["state"]), {
                    "app": g["app"], "state": g["state"], "peak_memory": None,
                    **dict.fromkeys(SUMMED, 0)})
                for name in SUMMED:
                    into[name] += sign * (g.get(name) or 0)
                if sign > 0 and g.get("peak_memory") is not None:
                    into["peak_memory"] = max(into["peak_memory"] or 0, g["peak_memory"])
        return [g for g in merged.values() if g["n"]]

    def summary(self) -> dict:
        """An overview of the run, read in one snapshot.

        Returns
        -------
        dict
            ``run`` (the run record, or None), ``n_tasks``, ``states``
            (count by state), ``apps`` (per app: ``total``, ``states``,
            ``memo_hits``, ``retried`` (tasks tried more than once),
            ``duration_total``/``duration_mean`` (s, over tasks with a start
            and an end), ``cpu_user``/``cpu_system`` (s), ``read_bytes``/
            ``write_bytes`` (summed) and ``peak_memory`` (bytes, the largest
            call's; None if none was measured)), and ``failures`` (failed tasks: ``key``, ``tid``,
            ``app``, ``args``, ``exception``, ``exit_code``, ``tries``, ``worker``).
        """
        with self._transaction("DEFERRED"):
            runs = self.runs()
            groups = self._groups()
            failures = self._query(  # a call of a block that failed has a row of its own
                "SELECT key, tid, app, args, exception, exit_code, tries, worker FROM "
                + ("call_rows" if self._version() >= 2 else "tasks") + " WHERE state = 'failed'")
        apps: dict = {}
        states: dict = {}
        for g in groups:
            a = apps.setdefault(g["app"], {"total": 0, "states": {}, "memo_hits": 0, "retried": 0,
                                           "duration_total": 0.0, "timed": 0, "cpu_user": 0.0,
                                           "cpu_system": 0.0, "peak_memory": None,
                                           "read_bytes": 0, "write_bytes": 0})
            a["total"] += g["n"]
            a["states"][g["state"]] = g["n"]
            a["memo_hits"] += (g["hits"] or 0) if g["state"] != "memo" else g["n"]
            a["retried"] += g["retried"] or 0
            a["duration_total"] += g["total"] or 0.0
            a["timed"] += g["timed"]
            for name in ("cpu_user", "cpu_system", "read_bytes", "write_bytes"):
                a[name] += g[name]
            if g["peak_memory"] is not None:
                a["peak_memory"] = max(a["peak_memory"] or 0, g["peak_memory"])
            states[g["state"]] = states.get(g["state"], 0) + g["n"]
        for a in apps.values():
            timed = a.pop("timed")
            a["duration_mean"] = a["duration_total"] / timed if timed else None
        return {"run": runs[0] if runs else None, "n_tasks": sum(states.values()), "states": states,
                "apps": dict(sorted(apps.items(), key=lambda kv: str(kv[0]))),
                "failures": sorted(failures, key=lambda r: _tid_order(r["tid"]))}


def list_runs(base: str) -> list[dict]:
    """One dict per run directory under ``base``, oldest first.

    Parameters
    ----------
    base : str
        The runinfo directory.

    Returns
    -------
    list of dict
        Each has ``run_id``, ``path``, the run record's fields (``script``,
        ``user``, ``host``, ``start_time``, ``end_time``, ``duration``, …),
        ``status`` (see ``run_status``; "no database" for a directory
        without one, "unreadable" with an ``error`` if it cannot be read),
        ``wal`` (a ``-wal`` file is beside the database), and task counts
        ``tasks``, ``done``, ``failed``, ``memo``, ``running``, ``pending``,
        ``cancelled``.
    """
    out = []
    for name in _run_names(base):
        path = os.path.abspath(os.path.join(base, name))
        db = os.path.join(path, DB_NAME)
        info: dict = {"run_id": name, "path": path, "script": None, "user": None, "host": None,
                      "start_time": None, "end_time": None, "duration": None, "tasks": 0,
                      **{s: 0 for s in STATES}, "wal": os.path.exists(db + "-wal")}
        if not os.path.isfile(db):
            info["status"] = "no database"
            out.append(info)
            continue
        try:
            with ProvenanceStore(db, readonly=True) as store:
                with store._transaction("DEFERRED"):
                    runs = store.runs()
                    counts = store._groups()
        except sqlite3.Error as exc:
            info.update(status="unreadable", error=str(exc))
            out.append(info)
            continue
        run = next((r for r in runs if r["run_id"] == name), runs[0] if runs else None)
        if run:
            info.update({k: v for k, v in run.items() if k != "run_id"})
        info["status"] = run_status(run)
        for c in counts:
            info[c["state"]] = info.get(c["state"], 0) + c["n"]
            info["tasks"] += c["n"]
        out.append(info)
    return out


__all__ = ["DB_NAME", "STATES", "ProvenanceStore", "default_base", "find_run", "list_runs",
           "new_run_dir", "run_status"]
