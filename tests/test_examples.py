"""End-to-end runs of the examples in examples/: the three classic Parsl
workflows (random sleeps, a docking sweep, a land-use image pipeline), the
quickstart, and the Parsl scripts of examples/parsl_scripts/ (run unchanged
through ``daskflow run --parsl``), each checked against an independent
computation.

The examples are loaded with ``runpy`` under a module name that is not in
``sys.modules``, so cloudpickle ships their apps to the workers by value (the
worker processes cannot import ``examples/`` by name).
"""

from __future__ import annotations

import heapq
import os
import random
import runpy
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def load(name: str) -> dict:
    """The globals of examples/<name>.py, run as a module named ``example_<name>``."""
    return runpy.run_path(os.path.join(EXAMPLES, f"{name}.py"), run_name=f"example_{name}")


# ------------------------------------------------------------ random sleeps
def greedy_makespan(durations, workers: int) -> float:
    """Finish time of the tasks, in order, each on the first free worker."""
    free = [0.0] * workers
    for d in durations:
        heapq.heapreplace(free, free[0] + d)
    return max(free)


def test_random_sleeps_run_in_parallel(client):
    n, seed = 10, 7
    out = load("random_sleeps")["main"](n=n, seed=seed)

    # The draws, recomputed here: each call seeds its own generator with "seed-i".
    expected_sleeps, expected_numbers = [], []
    for i in range(n):
        rng = random.Random(f"{seed}-{i}")
        expected_sleeps.append(round(rng.uniform(0.2, 1.0), 3))
        expected_numbers.append(rng.randint(1, 100))
    assert out["sleeps"] == expected_sleeps
    assert out["numbers"] == expected_numbers
    assert all(0.2 <= s <= 1.0 for s in out["sleeps"])

    workers = sum(client.nthreads().values())
    assert workers == 2
    total = sum(expected_sleeps)
    makespan = greedy_makespan(expected_sleeps, workers)
    elapsed = out["elapsed"]
    assert elapsed >= total / workers - 0.05  # no more than 2 sleeps at a time
    assert elapsed < makespan + 1.5, (elapsed, makespan, total)
    assert elapsed < 0.75 * total, (elapsed, makespan, total)


# ------------------------------------------------------------ docking sweep
def posix_cksum(data: bytes) -> int:
    """What ``cksum`` prints first: POSIX CRC-32 of the data and its length."""
    crc = 0

    def feed(byte: int) -> None:
        nonlocal crc
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF

    for byte in data:
        feed(byte)
    length = len(data)
    while length:
        feed(length & 0xFF)
        length >>= 8
    return ~crc & 0xFFFFFFFF


def test_posix_cksum_matches_the_tool():
    for text in (b"", b"a", b"1abc aspirin"):
        out = subprocess.run(["cksum"], input=text, capture_output=True, check=True).stdout
        assert posix_cksum(text) == int(out.split()[0])


def test_docking_sweep_finds_best_pose(client, tmp_path):
    example = load("docking_sweep")
    proteins, ligands = ["1abc", "2xyz", "3hmx"], ["aspirin", "ibuprofen", "caffeine", "paracetamol"]
    best = example["main"](tmp_path, proteins=proteins, ligands=ligands)

    scores = {
        (p, lig): -(posix_cksum(f"{p} {lig}".encode()) % 1000) / 100
        for p in proteins for lig in ligands
    }
    score, protein, ligand = min((s, p, lig) for (p, lig), s in scores.items())
    assert best == (protein, ligand, score)

    # Every pair wrote its own score file.
    files = sorted(os.listdir(tmp_path))
    assert files == sorted(f"{p}_{lig}.score" for p, lig in scores)
    for (p, lig), s in scores.items():
        assert (tmp_path / f"{p}_{lig}.score").read_text() == f"{p}\t{lig}\t{s:.2f}\n"


def test_docking_sweep_with_other_names(client, tmp_path):
    """Names needing shell quoting; one protein, so the best is the best ligand."""
    best = load("docking_sweep")["main"](tmp_path / "sub dir", proteins=["p 1"],
                                         ligands=["it's", "b"])
    scores = {lig: -(posix_cksum(f"p 1 {lig}".encode()) % 1000) / 100 for lig in ["it's", "b"]}
    ligand = min(scores, key=lambda lig: (scores[lig], lig))
    assert best == ("p 1", ligand, scores[ligand])
    text = (tmp_path / "sub dir" / "p 1_it's.score").read_text()
    assert text == "p 1\tit's\t%.2f\n" % scores["it's"]


# --------------------------------------------------------- land-use pipeline
def landuse_counts(n_images: int, width: int, height: int, classes: int = 6) -> list[int]:
    """Pixels per class code, regenerating the images' Park-Miller streams."""
    counts = [0] * classes
    for i in range(n_images):
        x = 1 + 7919 * (i + 1)
        for _ in range(width * height):
            x = x * 16807 % 2147483647
            counts[x % classes] += 1
    return counts


def test_landuse_pipeline_counts_classes(client, tmp_path):
    example = load("landuse_pipeline")
    n, width, height = 5, 20, 12
    counts = example["main"](tmp_path, n_images=n, width=width, height=height)

    names = ["water", "forest", "grassland", "cropland", "urban", "barren"]
    assert counts == dict(zip(names, landuse_counts(n, width, height)))
    assert sum(counts.values()) == n * width * height

    # The intermediate files: a PGM and its colored PPM per image.
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"landuse_{i:03d}.pgm" for i in range(n)]
        + [f"landuse_{i:03d}_color.ppm" for i in range(n)]
    )
    pgm = (tmp_path / "landuse_000.pgm").read_text().split()
    ppm = (tmp_path / "landuse_000_color.ppm").read_text().split()
    assert pgm[:4] == ["P2", str(width), str(height), "5"]
    assert ppm[:4] == ["P3", str(width), str(height), "255"]
    colors = {code: rgb for code, (_, rgb) in example["CLASSES"].items()}
    codes = [int(v) for v in pgm[4:]]
    rgbs = [tuple(int(v) for v in ppm[4 + 3 * j:7 + 3 * j]) for j in range(len(codes))]
    assert rgbs == [colors[c] for c in codes]


# ---------------------------------------------------------------- quickstart
def test_quickstart(client, tmp_path):
    out = load("quickstart")["main"](tmp_path)
    assert out == {
        "multiply": 45,
        "echo_exit_code": 0,
        "hello": "Hello World!\n",
        "chain": 45,
        "squares": [i * i for i in range(10)],
    }
    assert (tmp_path / "echo-hello.stdout").read_text() == "Hello World!\n"


# ------------------------------------------- the scripts, as users run them
@pytest.mark.parametrize("script, args, expected", [
    ("quickstart.py", ["{tmp}"], "multiply(5, 9) = 45"),
    ("random_sleeps.py", ["4"], "random numbers:"),
    ("docking_sweep.py", ["{tmp}"], "best pose: "),
    ("landuse_pipeline.py", ["{tmp}"], "water:"),
])
def test_script_runs_on_embedded_default(tmp_path, script, args, expected):
    """``python examples/<script>``: no client given, daskflow starts its own cluster."""
    env = dict(os.environ)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script), *(a.format(tmp=tmp_path) for a in args)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    assert "daskflow started a local Dask cluster" in proc.stderr


# ------------------------------------ Parsl scripts, unchanged, on daskflow
PARSL_SCRIPTS = os.path.join(EXAMPLES, "parsl_scripts")
DASKFLOW = os.path.join(os.path.dirname(sys.executable), "daskflow")


def run_parsl_script(name: str, *args: str, cwd) -> subprocess.CompletedProcess:
    """``daskflow run --parsl examples/parsl_scripts/<name>.py ARGS``, as users start it."""
    env = dict(os.environ, PYTHONPATH=ROOT, DASK_DASKFLOW__LOCAL__DASHBOARD_ADDRESS="127.0.0.1:0")
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    proc = subprocess.run([DASKFLOW, "run", "--parsl", os.path.join(PARSL_SCRIPTS, f"{name}.py"),
                           *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)  # 0: every task succeeded
    assert "Summary of run" in proc.stderr, proc.stderr
    return proc


@pytest.mark.parametrize("name", ["pi_pipeline", "bash_files", "join_fibonacci"])
def test_parsl_examples_are_written_as_for_parsl(name):
    source = open(os.path.join(PARSL_SCRIPTS, f"{name}.py")).read()
    assert "import parsl\n" in source and "parsl.load(config)" in source
    assert "import daskflow" not in source and "from daskflow" not in source
    assert "__main__" not in source  # Parsl scripts have no guard


def test_parsl_python_app_pipeline(tmp_path):
    samples, batches = 20_000, 4
    proc = run_parsl_script("pi_pipeline", str(samples), str(batches), cwd=tmp_path)
    hits = []
    for seed in range(batches):
        rng = random.Random(seed)
        hits.append(sum(1 for _ in range(samples) if rng.random() ** 2 + rng.random() ** 2 <= 1))
    pi = 4.0 * sum(hits) / (samples * batches)
    assert proc.stdout.splitlines() == [f"hits per batch: {hits}",
                                        f"pi is about {pi:.6f} ({samples * batches} samples)"]


def test_parsl_bash_apps_with_files(tmp_path):
    n = 6
    proc = run_parsl_script("bash_files", str(tmp_path / "out"), str(n), cwd=tmp_path)
    numbers = [k for i in range(1, n + 1) for k in range(1, i + 1)]
    assert proc.stdout.splitlines() == [f"sum of all numbers: {sum(numbers)}",
                                        f"concatenate said: joined {n} files"]
    out = tmp_path / "out"
    assert (out / "all.txt").read_text() == "".join(f"{k}\n" for k in numbers)
    assert sorted(p.name for p in out.glob("numbers-*.txt")) == sorted(
        f"numbers-{i}.txt" for i in range(1, n + 1))
    assert (out / "concatenate.err").read_text() == ""


def test_parsl_join_apps(tmp_path):
    proc = run_parsl_script("join_fibonacci", "8", cwd=tmp_path)
    fib = [0, 1]
    while len(fib) <= 8:
        fib.append(fib[-1] + fib[-2])
    assert proc.stdout.splitlines() == [f"fibonacci(8) = {fib[8]}",
                                        f"squares: {[i * i for i in range(8)]}"]
