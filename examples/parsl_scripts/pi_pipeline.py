"""A Parsl python-app pipeline: estimate pi from seeded random samples.

Stage 1 draws points in the unit square in parallel (one app per seed),
stage 2 adds the hits up (its ``inputs=`` are stage 1's futures, so it starts
when they are all done), stage 3 turns the count into an estimate. Each
stage's futures are the next stage's arguments: Parsl's dataflow.

A Parsl script, written as for Parsl; run it unchanged on daskflow:

    daskflow run --parsl examples/parsl_scripts/pi_pipeline.py [SAMPLES] [BATCHES]
    python -m daskflow.parsl examples/parsl_scripts/pi_pipeline.py
"""

import sys

import parsl
from parsl import python_app
from parsl.configs.local_threads import config


@python_app
def sample(seed, n):
    """How many of n random points in the unit square fall in the quarter circle."""
    import random

    rng = random.Random(seed)
    return sum(1 for _ in range(n) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)


@python_app
def total(inputs=()):
    return sum(inputs)


@python_app
def estimate(hits, n):
    return 4.0 * hits / n


samples = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
batches = int(sys.argv[2]) if len(sys.argv) > 2 else 8

parsl.load(config)

hits = [sample(seed, samples) for seed in range(batches)]
pi = estimate(total(inputs=hits), samples * batches)
print(f"hits per batch: {[h.result() for h in hits]}")
print(f"pi is about {pi.result():.6f} ({samples * batches} samples)")
