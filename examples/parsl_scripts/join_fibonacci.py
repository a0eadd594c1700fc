"""Parsl join apps: Fibonacci numbers by recursion, and a fan-out whose
futures a join app returns as one.

A join app returns futures of other apps instead of a value; its own future
completes with their values. ``fibonacci(n)`` returns the future of
``add(fibonacci(n - 1), fibonacci(n - 2))``, so the recursion unfolds as
tasks; ``squares(n)`` returns a list of futures, and its future's value is
the list of their values.

A Parsl script, written as for Parsl; run it unchanged on daskflow:

    daskflow run --parsl examples/parsl_scripts/join_fibonacci.py [N]
"""

import sys

import parsl
from parsl import join_app, python_app
from parsl.configs.htex_local import config


@python_app
def add(*args):
    return sum(args)


@join_app
def fibonacci(n):
    if n == 0:
        return add()
    if n == 1:
        return add(1)
    return add(fibonacci(n - 1), fibonacci(n - 2))


@python_app
def square(x):
    return x * x


@join_app
def squares(n):
    return [square(i) for i in range(n)]


n = int(sys.argv[1]) if len(sys.argv) > 1 else 10

parsl.load(config)

print(f"fibonacci({n}) = {fibonacci(n).result()}")
print(f"squares: {squares(n).result()}")
