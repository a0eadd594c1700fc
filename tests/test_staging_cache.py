"""The node cache on its own: one fetch per node across processes, LRU
eviction under a size limit, and no entry from a download that went wrong."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from daskflow.staging.cache import NodeCache

URL = "https://example.org/data.bin"


def _fetcher(counter: str, payload: bytes, delay: float = 0.0):
    def fetch(tmp: str) -> None:
        with open(counter, "a") as fh:
            fh.write("fetch\n")
        time.sleep(delay)
        with open(tmp, "wb") as fh:
            fh.write(payload)
    return fetch


def _get_in_process(root: str, counter: str, out: str) -> None:
    cache = NodeCache(root, max_bytes=10**6, check_every=60)
    path, _ = cache.get(URL, "data.bin", lambda: (10, ("ETag", "v1")),
                        _fetcher(counter, b"0123456789", delay=0.3))
    with open(out, "w") as fh:
        fh.write(path)


def test_processes_of_a_node_fetch_a_url_once(tmp_path):
    root, counter = str(tmp_path / "cache"), str(tmp_path / "fetches")
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    procs = [ctx.Process(target=_get_in_process, args=(root, counter, str(tmp_path / f"o{i}")))
             for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert open(counter).read().count("fetch") == 1
    paths = {open(tmp_path / f"o{i}").read() for i in range(4)}
    assert len(paths) == 1
    (path,) = paths
    assert open(path, "rb").read() == b"0123456789"
    assert not os.stat(path).st_mode & 0o222  # read-only: shared by every task of the node


def test_a_new_fingerprint_is_a_new_entry_and_fresh_records_skip_the_source(tmp_path):
    counter = str(tmp_path / "fetches")
    asked = []

    def fingerprint(version):
        def ask():
            asked.append(version)
            return (4, ("ETag", version))
        return ask

    cache = NodeCache(str(tmp_path / "c"), max_bytes=10**6, check_every=0)
    p1, hit1 = cache.get(URL, "d", fingerprint("a"), _fetcher(counter, b"aaaa"))
    p2, hit2 = cache.get(URL, "d", fingerprint("a"), _fetcher(counter, b"aaaa"))
    p3, hit3 = cache.get(URL, "d", fingerprint("b"), _fetcher(counter, b"bbbb"))
    assert (hit1, hit2, hit3) == (False, True, False)
    assert p1 == p2 != p3 and open(p3).read() == "bbbb"
    trusting = NodeCache(str(tmp_path / "c"), max_bytes=10**6, check_every=60)
    p4, hit4 = trusting.get(URL, "d", fingerprint("c"), _fetcher(counter, b"cccc"))
    assert (p4, hit4) == (p3, True) and asked == ["a", "a", "b"]  # not asked again


def test_least_recently_used_entries_go_first(tmp_path):
    cache = NodeCache(str(tmp_path / "c"), max_bytes=250, check_every=0)
    counter = str(tmp_path / "n")
    paths = {}
    for name in ("a", "b"):
        paths[name], _ = cache.get(f"http://h/{name}", name, lambda: (100,),
                                   _fetcher(counter, b"x" * 100))
        time.sleep(0.05)
    os.utime(os.path.dirname(paths["a"]))  # a is used again: b is now the oldest
    time.sleep(0.05)
    paths["c"], _ = cache.get("http://h/c", "c", lambda: (100,), _fetcher(counter, b"x" * 100))
    assert os.path.exists(paths["a"]) and os.path.exists(paths["c"])
    assert not os.path.exists(paths["b"])
    assert sum(size for _, size, _ in cache.entries()) == 200


def test_the_newest_entry_stays_even_above_the_limit(tmp_path):
    cache = NodeCache(str(tmp_path / "c"), max_bytes=10, check_every=0)
    path, _ = cache.get(URL, "big", lambda: (100,), _fetcher(str(tmp_path / "n"), b"x" * 100))
    assert os.path.exists(path)


def test_a_short_or_failed_download_leaves_no_entry(tmp_path):
    cache = NodeCache(str(tmp_path / "c"), max_bytes=10**6, check_every=0)
    with pytest.raises(OSError, match="got 3 bytes, the source announced 10"):
        cache.get(URL, "d", lambda: (10,), _fetcher(str(tmp_path / "n"), b"abc"))

    def broken(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"half")
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        cache.get(URL, "d", lambda: (10,), broken)
    assert cache.entries() == []
    assert os.listdir(tmp_path / "c" / "tmp") == []


def test_task_directories_of_dead_workers_are_swept(tmp_path):
    """A worker killed mid-task leaves its copies; the next process sweeps them."""
    import subprocess
    import sys

    from daskflow.staging import sweep_orphans

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    tasks = tmp_path / "tasks"
    dead = tasks / f"read-7-p{gone}-abc123"
    live = tasks / f"read-8-p{os.getpid()}-def456"
    other = tasks / "not-a-task-directory"
    for d in (dead, live, other):
        (d / "in").mkdir(parents=True)
        (d / "in" / "copy.bin").write_bytes(b"x")
    sweep_orphans(str(tasks))
    assert not dead.exists() and live.exists() and other.exists()
