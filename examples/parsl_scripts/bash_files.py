"""Parsl bash apps with File inputs and outputs: make number files, join
them, and add the numbers up.

Each ``generate`` writes the numbers 1..i to its own file; ``concatenate``
takes their DataFutures (``future.outputs[0]``) as ``inputs=``, so it runs
once every file exists, and ``cat``s them into one file, its own output.
A python app then reads that file. The bash apps' ``stdout``/``stderr``
go to files too (appended to, as in Parsl).

A Parsl script, written as for Parsl; run it unchanged on daskflow:

    daskflow run --parsl examples/parsl_scripts/bash_files.py [WORKDIR] [FILES]
"""

import os
import sys

import parsl
from parsl import bash_app, python_app
from parsl.config import Config
from parsl.data_provider.files import File
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

config = Config(executors=[HighThroughputExecutor(
    label="htex_local", cores_per_worker=1, max_workers_per_node=2,
    provider=LocalProvider(init_blocks=1, max_blocks=1))])


@bash_app
def generate(i, outputs=()):
    return f"seq 1 {i} > {outputs[0]}"


@bash_app
def concatenate(inputs=(), outputs=(), stdout=None, stderr=None):
    files = " ".join(f.filepath for f in inputs)
    return f"cat {files} > {outputs[0]} && echo joined {len(inputs)} files"


@python_app
def add_lines(inputs=()):
    with open(inputs[0].filepath) as f:
        return sum(int(line) for line in f if line.strip())


workdir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "bash_files_out")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
os.makedirs(workdir, exist_ok=True)

parsl.load(config)

numbers = [generate(i, outputs=[File(os.path.join(workdir, f"numbers-{i}.txt"))])
           for i in range(1, n + 1)]
joined = concatenate(inputs=[f.outputs[0] for f in numbers],
                     outputs=[File(os.path.join(workdir, "all.txt"))],
                     stdout=os.path.join(workdir, "concatenate.out"),
                     stderr=os.path.join(workdir, "concatenate.err"))
result = add_lines(inputs=[joined.outputs[0]])
print(f"sum of all numbers: {result.result()}")
with open(os.path.join(workdir, "concatenate.out")) as f:
    print(f"concatenate said: {f.read().splitlines()[-1]}")
