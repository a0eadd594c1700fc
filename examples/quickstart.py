"""daskflow quickstart: Parsl's first steps, on Dask.

    python examples/quickstart.py [WORKDIR]

No client is created here: the first app call starts a local Dask cluster
(one single-threaded worker process per core), closed at exit.
"""

from __future__ import annotations

import os
import sys
import tempfile

from daskflow import bash_app, python_app


@python_app
def multiply(a, b):
    return a * b


@python_app
def add(a, b):
    return a + b


@bash_app
def echo_hello(stdout="echo-hello.stdout", stderr="echo-hello.stderr"):
    return 'echo "Hello World!"'


def main(workdir) -> dict:
    """Run the quickstart's four steps; return their results."""
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)

    # 1. A python app: calling it returns a future at once.
    product = multiply(5, 9).result()

    # 2. A bash app: its stdout goes to a file (named here inside workdir).
    stdout = os.path.join(workdir, "echo-hello.stdout")
    code = echo_hello(stdout=stdout, stderr=os.path.join(workdir, "echo-hello.stderr")).result()
    with open(stdout) as f:
        hello = f.read()

    # 3. Dataflow: futures passed as arguments are dependencies.
    #    (2 + 3) * (4 + 5) = 45; both sums run in parallel, then the product.
    chain = multiply(add(2, 3), add(4, 5)).result()

    # 4. A map: one call per item, sent in one round trip.
    squares = [f.result() for f in multiply.map(range(10), range(10))]

    return {"multiply": product, "echo_exit_code": code, "hello": hello,
            "chain": chain, "squares": squares}


if __name__ == "__main__":
    workdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="quickstart-")
    out = main(workdir)
    print("multiply(5, 9) =", out["multiply"])
    print(f"echo_hello exited with {out['echo_exit_code']}; "
          f"{os.path.join(workdir, 'echo-hello.stdout')} holds: {out['hello'].strip()}")
    print("multiply(add(2, 3), add(4, 5)) =", out["chain"])
    print("multiply.map(range(10), range(10)) =", out["squares"])
