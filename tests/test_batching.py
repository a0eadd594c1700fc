"""Transparent batching: bursts of short calls share chunk tasks, each call
keeping its own future, value, failure, tries and provenance row; anything
that waits sends held calls at once; long calls are never packed."""

from __future__ import annotations

import os
import threading
import time

import dask
import distributed
import pytest
from distributed import as_completed, wait
from waiting import until

import daskflow
from daskflow import DependencyError, python_app
from daskflow.client.bursts import LOOP_AGAIN
from daskflow.client.durations import Durations
from daskflow.dask_internals import is_held


@python_app
def double(x):
    return 2 * x


@python_app
def increment(x):
    return x + 1


@python_app
def odd_only(x):
    if x % 2 == 0:
        raise ValueError(f"even: {x}")
    return x


@python_app
def slow(x):
    import time

    time.sleep(0.1)  # twice the default chunk duration: never packed
    return x


@python_app(batch=False)
def alone(x):
    return x


@python_app(retries=2)
def flaky(path, x):
    import os

    marker = f"{path}.{x}"
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first try fails")
    return x


def known(app, *args):
    """Run one call of ``app`` and wait until the client knows how long it took."""
    app(*args).exception()
    burst = distributed.get_client()._daskflow_session.burst
    until(lambda: app.name in burst.durations.seconds,
          f"no duration reported for {app.name}", timeout=30, interval=0.01)
    return burst.durations


def known_short(app, *args):
    """Run calls of ``app`` until the client knows it is short."""
    durations = known(app, *args)
    until(lambda: durations.capacity(app.name) >= 2 or app(*args).exception() and False,
          f"{app.name} not known short", timeout=30, interval=0.05)


def tasks(futures) -> int:
    return len({f.key for f in futures})


def test_a_loop_of_short_calls_shares_few_tasks(client):
    known_short(double, 0)
    fs = [double(i) for i in range(500)]
    assert daskflow.gather(fs) == [2 * i for i in range(500)]
    assert tasks(fs) < 100
    assert [f.result() for f in fs] == [2 * i for i in range(500)]
    assert [f.tid for f in fs] == list(range(fs[0].tid, fs[0].tid + 500))
    packed = [f for f in fs if f.index is not None]
    assert packed and all(f.key == f._chunk.key for f in packed)


def test_map_without_chunksize_packs_known_short_calls(client):
    known_short(double, 0)
    fs = double.map(range(300))
    assert client.gather(fs) == [2 * i for i in range(300)]
    assert tasks(fs) < 30


def test_the_first_calls_of_an_app_get_a_task_each(client):
    @python_app
    def fresh(x):
        return x

    f = fresh(1)
    assert f.index is None and not is_held(f) and f.result() == 1


def test_long_calls_are_never_packed(client):
    assert known(slow, 0).capacity("slow") == 1  # reported, but too long to pack
    fs = [slow(i) for i in range(6)]
    assert tasks(fs) == 6 and all(f.index is None for f in fs)
    assert client.gather(fs) == list(range(6))


def test_each_packed_call_keeps_its_own_failure(client):
    known_short(odd_only, 1)
    fs = [odd_only(i) for i in range(10)]
    wait(fs)
    for i, f in enumerate(fs):
        if i % 2:
            assert f.result() == i and f.exception() is None
        else:
            with pytest.raises(ValueError, match=f"even: {i}"):
                f.result()
            assert isinstance(f.exception(), ValueError)
    assert tasks(fs) < 10
    later = double(fs[0])  # a dependent of a failed packed call
    with pytest.raises(DependencyError):
        later.result()


def test_each_packed_call_keeps_its_own_tries(client, tmp_path):
    known_short(flaky, str(tmp_path / "warm"), 0)
    fs = [flaky(str(tmp_path / "m"), i) for i in range(6)]
    assert client.gather(fs) == list(range(6))
    assert all(os.path.exists(tmp_path / f"m.{i}") for i in range(6))


def test_switches_turn_it_off(client):
    known_short(alone, 0)
    fs = [alone(i) for i in range(20)]
    assert tasks(fs) == 20
    known_short(double, 0)
    with dask.config.set({"daskflow.batching.enabled": False}):
        fs = [double(i) for i in range(20)]
    assert tasks(fs) == 20
    assert client.gather(fs) == [2 * i for i in range(20)]


def test_calls_given_futures_are_sent_after_what_they_depend_on(client):
    known_short(double, 0)
    firsts = [double(i) for i in range(10)]
    seconds = [double(f) for f in firsts]  # not packed: each names a held call
    assert client.gather(seconds) == [4 * i for i in range(10)]
    total = client.submit(sum, firsts)  # Dask's own submit, given held calls
    assert total.result() == sum(2 * i for i in range(10))


def test_packed_calls_have_a_provenance_row_each(client):
    known_short(double, 0)
    fs = [double(i) for i in range(40)]
    client.gather(fs)
    from daskflow.provenance.store import ProvenanceStore

    run_dir = client._daskflow_session.run_dir
    idents = {f.key if f.index is None else f"{f.key}[{f.index}]" for f in fs}

    def recorded():
        store = ProvenanceStore(os.path.join(run_dir, "provenance.db"), readonly=True)
        try:
            return idents <= {t["key"] for t in store.tasks() if t["state"] == "done"}
        finally:
            store.close()

    until(recorded, "the packed calls' rows", timeout=30)


@daskflow.bash_app
def succeed(x):
    return "true"


def test_packed_calls_rows_tell_each_calls_own_story(client):
    """A chunk reports its plain calls as times only (``report.send_chunk``)
    and the others in full: every row still has its own state, tries,
    times, worker and exit code."""
    from daskflow.provenance.store import ProvenanceStore

    known_short(odd_only, 1)
    known_short(succeed, 0)
    odd = [odd_only(i) for i in range(12)]
    ok = [succeed(i) for i in range(12)]
    wait(odd + ok)
    assert tasks(odd) < 12 and tasks(ok) < 12
    idents = {f"{f.key}[{f.index}]" if f.index is not None else f.key: (i, f)
              for i, f in enumerate(odd + ok)}
    path = os.path.join(client._daskflow_session.run_dir, "provenance.db")

    def rows():
        store = ProvenanceStore(path, readonly=True)
        try:
            found = {t["key"]: t for t in store.tasks() if t["key"] in idents}
        finally:
            store.close()
        settled = all(t["state"] in ("done", "failed") and t["finished"] for t in found.values())
        return found if len(found) == len(idents) and settled else None

    until(lambda: rows() is not None, "the packed calls' rows", timeout=30)
    found = rows()
    # the chunks' reports came with their tasks' ends, not as events of their own
    assert not [msg for _, msg in client.get_events("daskflow")
                if isinstance(msg, dict) and "chunk" in msg]
    for key, (i, f) in idents.items():
        row = found[key]
        assert row["started"] <= row["finished"] and row["worker"].startswith("tcp://"), row
        assert row["host"], row
        if f.index is not None:  # a task of its own says its tries only when there were more
            assert row["tries"] == 1, row
        if f in ok:
            assert (row["state"], row["exit_code"]) == ("done", 0), row
        elif i % 2:
            assert (row["state"], row["exception"]) == ("done", None), row
        else:
            assert row["state"] == "failed" and f"even: {i}" in row["exception"], row


def test_a_chunks_result_is_kept_by_the_time_it_is_known(client):
    """A chunk writes its kept result before its task ends (one file per
    chunk, written at once: a thread of its own fought the calls for the
    interpreter lock), so a recomputed chunk finds it however soon its
    worker dies."""
    from daskflow.worker import recovery

    known_short(double, 0)
    fs = [double(i) for i in range(200)]
    wait(fs)
    chunks = {f.key for f in fs if f.index is not None}
    assert chunks
    kept = client._daskflow_session.run.results
    for key in chunks:
        done, outcomes = recovery.recall(kept, key)
        assert done, key
        assert list(outcomes) == [2 * f.tid - 2 * fs[0].tid for f in fs if f.key == key]


def test_the_window_sends_calls_nobody_waits_for(client):
    known_short(double, 0)
    fs = [double(i) for i in range(3)]
    until(lambda: all(f.done() for f in fs), "held calls sent after the window", timeout=30,
          interval=0.01)


def test_closing_the_client_sends_held_calls_and_does_not_hang():
    with dask.config.set({"daskflow.batching.window": "60s"}):
        c = daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0")
        with c.as_current():
            known_short(double, 0)
            fs = held_pair()
        start = time.monotonic()
        c.close()
    assert time.monotonic() - start < 30
    assert not any(is_held(f) for f in fs)


def test_durations_rise_at_once_and_fall_slowly():
    d = Durations("run", chunk_seconds=0.02, max_calls=128)
    assert d.capacity("app") == 0  # nothing known: a task per call
    d.note("app", 0.0001)
    assert d.capacity("app") == 128
    d.note("app", 0.005)
    assert d.capacity("app") == 4
    d.note("app", 0.0001)
    assert 4 <= d.capacity("app") < 10  # falls slowly
    d.note("app", 1.0)
    assert d.capacity("app") == 1  # too long to pack
    d._event((0.0, {"run": "other", "app": "app", "calls": 10, "seconds": 0.0}))
    assert d.capacity("app") == 1  # another run's report is not ours


def test_a_cold_first_report_gives_way_to_the_first_warm_one():
    """A process's first call of an app pays one-time costs: its report
    stands only until a warm one replaces it, and a late worker's cold
    report does not raise a warm estimate."""
    d = Durations("run", chunk_seconds=0.02, max_calls=128)
    d._event((0.0, {"run": "run", "app": "app", "calls": 1, "seconds": 0.01, "cold": True}))
    assert d.capacity("app") == 2  # the cold guess: 10 ms a call
    d._event((0.0, {"run": "run", "app": "app", "calls": 1, "seconds": 0.008, "cold": True}))
    assert d.capacity("app") == 2  # another worker's warm-up: still cold, no lower
    d._event((0.0, {"run": "run", "app": "app", "calls": 10, "seconds": 0.01}))
    assert d.capacity("app") == 20  # the first warm report replaces it at once
    d._event((0.0, {"run": "run", "app": "app", "calls": 1, "seconds": 0.02, "cold": True}))
    assert d.capacity("app") == 20  # a worker that joined later: ignored
    d._event((0.0, {"run": "run", "app": "app", "calls": 1, "seconds": 0.005}))
    assert d.capacity("app") == 4  # warm reports still rise at once


def test_a_plain_script_packs_its_loop(run_script):
    """As a Parsl user writes it: no __main__ guard, a loop, then results."""
    result = run_script("""
import daskflow
from daskflow import python_app

@python_app
def square(x):
    return x * x

square(0).result()
import distributed
client = distributed.get_client()
burst = client._daskflow_session.burst
import time
deadline = time.monotonic() + 30
while burst.durations.capacity("square") < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
futures = [square(i) for i in range(2000)]
assert [f.result() for f in futures] == [i * i for i in range(2000)]
print("tasks", len({f.key for f in futures}))
""", timeout=180)
    assert result.returncode == 0, result.stderr
    tasks_used = int(result.stdout.split("tasks")[1])
    assert tasks_used < 200


def test_a_chain_built_while_its_chunks_are_sent_is_right(client):
    """The window sends chunks on the event loop while the script goes on
    chaining calls onto them: a call given a member must never see its
    chunk half sent (it would get the chunk's whole list)."""
    known_short(increment, 0)
    for _ in range(3):
        f = increment(0)
        for i in range(1999):
            f = increment(f)
            if i % 97 == 0:
                time.sleep(0.003)  # windows expire mid-chain
        assert f.result(timeout=120) == 2000


# -- a window long enough that only a wait can send held calls ---------------

@pytest.fixture(scope="module")
def patient():
    """A client whose held calls wait a minute for company: a test that
    finishes quickly shows that waiting sent them."""
    with dask.config.set({"daskflow.batching.window": "60s"}):
        with daskflow.Client(n_workers=1, threads_per_worker=1, dashboard_address=":0") as c, \
                c.as_current():
            known_short(double, 0)
            yield c


def held_pair():
    fs = [double(i) for i in range(2)]
    assert all(is_held(f) for f in fs)
    return fs


def test_result_sends_held_calls(patient):
    fs = held_pair()
    assert fs[1].result(timeout=30) == 2 and fs[0].result(timeout=30) == 0


def test_wait_sends_held_calls(patient):
    fs = held_pair()
    done, _ = wait(fs, timeout=30)
    assert len(done) == 2


def test_as_completed_sends_held_calls_and_gives_each_value(patient):
    fs = held_pair()
    assert sorted(r for _, r in as_completed(fs, with_results=True, timeout=30)) == [0, 2]


def test_gather_sends_held_calls(patient):
    assert patient.gather(held_pair()) == [0, 2]
    assert daskflow.gather(held_pair()) == [0, 2]


def test_a_done_callback_sends_held_calls(patient):
    seen = threading.Event()
    fs = held_pair()
    fs[0].add_done_callback(lambda f: seen.set())
    assert seen.wait(30)


def test_a_dependent_call_sends_held_calls(patient):
    fs = held_pair()
    assert double(fs[1]).result(timeout=30) == 4


def test_held_calls_are_not_on_the_scheduler_until_sent(patient):
    fs = held_pair()
    keys = {f.key for f in fs}

    def on_scheduler(dask_scheduler, keys):
        return sorted(k for k in keys if k in dask_scheduler.tasks)

    assert patient.run_on_scheduler(on_scheduler, keys=keys) == []
    assert patient.gather(fs) == [0, 2]
    assert not any(is_held(f) for f in fs)


def test_a_failed_packed_call_reads_error(client):
    """A chunk task succeeds whatever its calls do; the worker names the
    failed ones, so their futures read "error" as soon as the chunk ends."""
    known_short(odd_only, 1)
    fs = [odd_only(i) for i in range(6)]
    wait(fs)
    assert tasks(fs) < 6
    assert [f.status for f in fs] == ["error", "finished"] * 3
    chunked = odd_only.map(range(4), chunksize=4)
    wait(chunked)
    assert [f.status for f in chunked] == ["error", "finished"] * 2


def test_an_app_whose_calls_are_waited_for_one_by_one_is_not_held(patient):
    """``g(f(i))`` in a loop: each g would send f's lone held call at once,
    so f's next calls are sent unheld."""
    burst = patient._daskflow_session.burst
    known_short(increment, 0)
    first = double(1)
    assert is_held(first)
    assert increment(first).result(timeout=30) == 3
    after = double(2)
    assert not is_held(after) and after.result(timeout=30) == 4
    for i in range(5):  # the g(f(i)) loop goes on: f's calls stay unheld
        f = double(i)
        assert not is_held(f)
        increment(f)
    assert "double" in burst.skip


def test_a_plain_loop_after_a_skip_is_packed_again(patient):
    """After ``g(f(i))``, a plain loop of f's calls (a fan-in's leaves) is
    packed again once a few of them came in a row."""
    burst = patient._daskflow_session.burst
    known_short(increment, 0)
    increment(double(1))
    assert "double" in burst.skip
    fs = [double(i) for i in range(LOOP_AGAIN + 4)]
    assert not any(is_held(f) for f in fs[:LOOP_AGAIN])
    assert all(is_held(f) for f in fs[LOOP_AGAIN + 1:])
    assert "double" not in burst.skip
    assert patient.gather(fs) == [2 * i for i in range(LOOP_AGAIN + 4)]


def test_a_chain_of_calls_runs_inside_chunks(patient):
    """``f = app(f)`` in a loop: each call joins the chunk of the call it
    takes, so a chain of 300 runs as a few tasks, not 300 scheduler round
    trips; each call still has its own future and value."""
    known_short(increment, 0)
    patient._daskflow_session.burst.skip.clear()  # the tests before left g(f(i)) loops
    chain = [double(1)]
    for _ in range(19):
        chain.append(double(chain[-1]))
    assert all(is_held(f) for f in chain) and tasks(chain) == 1
    for _ in range(280):  # another app: sends the doubles, then chains its own calls
        chain.append(increment(chain[-1]))
    values = patient.gather(chain)
    assert values[:3] == [2, 4, 8] and values[19] == 2 ** 20
    assert values[-1] == 2 ** 20 + 280
    assert tasks(chain) < 30


def test_a_plain_future_on_a_held_chunk_is_not_taken_for_a_member(patient):
    """A Future made on a chunk's key stands for no call of it (Dask's own
    view: the chunk's outcomes); a call given it does not join the chunk,
    which would then wait for itself."""
    fs = [double(i) for i in range(3)]
    whole = distributed.Future(fs[0].key, patient)
    assert double(whole).result(timeout=30) == [0, 2, 4] * 2


def test_a_call_that_waits_for_other_tasks_does_not_delay_independent_calls(patient):
    """A held call given a sent task's future waits for that task: it joins
    no chunk of calls that do not, so independent calls run at once."""
    gate = slow(5)  # 100 ms: never held
    assert not is_held(gate)
    waiting = [double(gate) for _ in range(3)]  # held together, behind the gate's task
    free = [double(i) for i in range(3)]
    assert {f.key for f in waiting}.isdisjoint(f.key for f in free)
    assert patient.gather(free + waiting) == [0, 2, 4] + [10] * 3
    assert tasks(waiting) == 1


def test_packed_chains_keep_their_dependency_edges(patient):
    """Provenance names each packed call's own dependencies: the earlier
    call of its chunk, or the sent task it waits for."""
    known_short(double, 0)
    gate = slow(1)
    chain = [double(gate)]
    for _ in range(4):
        chain.append(double(chain[-1]))
    assert tasks(chain) == 1 and chain[-1].result(timeout=30) == 32
    from daskflow.provenance.store import ProvenanceStore

    path = os.path.join(patient._daskflow_session.run_dir, "provenance.db")
    tids = [str(f.tid) for f in [gate, *chain]]
    wanted = set(zip(tids[1:], tids))

    def edges():
        with ProvenanceStore(path, readonly=True) as store:
            return {e for e in store.dependencies() if e[0] in tids}

    until(lambda: edges() == wanted, lambda: f"edges {edges()}, wanted {wanted}", timeout=30)


def test_a_failed_call_in_a_chain_fails_the_calls_after_it(patient):
    """A packed chain keeps each call's outcome: after a failed call, the
    calls that take its value fail with DependencyError naming it."""
    known_short(odd_only, 1)
    first = double(3)
    bad = odd_only(first)  # 6 is even: fails
    after = double(bad)
    with pytest.raises(ValueError, match="even: 6"):
        bad.result(timeout=30)
    with pytest.raises(DependencyError, match="odd_only"):
        after.result(timeout=30)
    assert first.result() == 6


def test_packed_calls_in_sets_and_dict_keys_give_their_values(client):
    """Where the task body resolves no marker (a set, a dict's keys), a
    member is a small task picking its value (Parsl's own resolver tests)."""
    known_short(double, 0)
    fs = [double(i) for i in range(4)]
    assert ident(set(fs)).result() == {0, 2, 4, 6}
    assert ident({fs[0]: fs[1], fs[2]: 7}).result() == {0: 2, 4: 7}


@python_app
def ident(x):
    return x
