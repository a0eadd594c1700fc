"""Parallel random numbers with random sleeps (Parsl's first tutorial example).

N python apps each sleep a random time (0.2-1.0 s by default) and return a
random number. Both the sleep and the number are drawn from a generator
seeded by ``(seed, i)``, so a run is reproducible. The calls are submitted at
once and run in parallel, so the wall time is close to the longest sleeps
per worker, not to their sum.

Run it on daskflow's embedded local cluster::

    python examples/random_sleeps.py [N]
"""

from __future__ import annotations

import random
import sys
import time

from daskflow import python_app


def draw(seed: int, i: int, low: float = 0.2, high: float = 1.0, limit: int = 100):
    """The (sleep seconds, random number) of call ``i``: same on any machine."""
    rng = random.Random(f"{seed}-{i}")
    return round(rng.uniform(low, high), 3), rng.randint(1, limit)


@python_app
def sleep_random(seed, i, low, high, limit):
    """Sleep a random time, then return ``(i, seconds slept, random number)``."""
    import time

    seconds, number = draw(seed, i, low, high, limit)
    time.sleep(seconds)
    return i, seconds, number


@python_app
def ready():
    return True


def main(workdir=None, n: int = 10, seed: int = 2024, low: float = 0.2, high: float = 1.0,
         limit: int = 100) -> dict:
    """Run ``n`` sleeping apps in parallel; return what they drew and the wall time.

    ``workdir`` is unused (the apps write no files); it is there so every
    example's ``main`` has the same shape.
    """
    ready().result()  # with no client yet, this first call starts the local cluster
    start = time.perf_counter()
    futures = [sleep_random(seed, i, low, high, limit) for i in range(n)]
    results = [f.result() for f in futures]
    elapsed = time.perf_counter() - start
    return {
        "numbers": [number for _, _, number in results],
        "sleeps": [seconds for _, seconds, _ in results],
        "elapsed": elapsed,
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    out = main(n=n)
    print("random numbers:", out["numbers"])
    print(f"{n} apps slept {sum(out['sleeps']):.2f} s in total, "
          f"the longest {max(out['sleeps']):.2f} s; wall time {out['elapsed']:.2f} s")
