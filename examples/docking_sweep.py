"""A protein x ligand docking sweep (Parsl's "parameter sweep" pattern).

Every (protein, ligand) pair is "docked" by a bash app that writes a score
file, ``<protein>_<ligand>.score`` holding ``protein<TAB>ligand<TAB>score``; the 2-D
fan-out runs in parallel. A python app then takes all the score files'
DataFutures in ``inputs=`` (so it starts when they all exist), reads them and
returns the best pose: the lowest (most negative) score.

The "docking" is a stand-in: the score is a deterministic pseudo energy in
kcal/mol, ``-(cksum("protein ligand") mod 1000) / 100``, computed with
``cksum`` and ``awk`` on the worker.

    python examples/docking_sweep.py [WORKDIR]
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile

from daskflow import File, bash_app, python_app

PROTEINS = ["1abc", "2xyz", "3hmx"]
LIGANDS = ["aspirin", "ibuprofen", "caffeine", "paracetamol"]


@bash_app
def dock(protein, ligand, outputs=()):
    """Score one pair; write ``protein<TAB>ligand<TAB>score`` to outputs[0]."""
    p, lig = shlex.quote(protein), shlex.quote(ligand)
    return (
        f"printf '%s %s' {p} {lig} | cksum | "
        f"awk -v p={p} -v l={lig} '{{printf \"%s\\t%s\\t%.2f\\n\", p, l, -($1 % 1000) / 100}}' "
        f"> {shlex.quote(outputs[0].filepath)}"
    )


@python_app
def best_pose(inputs=()):
    """The (protein, ligand, score) with the lowest score among the score files."""
    poses = []
    for f in inputs:
        with open(f.filepath) as fh:
            protein, ligand, score = fh.read().rstrip("\n").split("\t")
        poses.append((float(score), protein, ligand))
    score, protein, ligand = min(poses)
    return protein, ligand, score


def main(workdir, proteins=PROTEINS, ligands=LIGANDS):
    """Dock every protein with every ligand; return the best (protein, ligand, score)."""
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    scores = [
        dock(p, lig, outputs=[File(os.path.join(workdir, f"{p}_{lig}.score"))])
        for p in proteins
        for lig in ligands
    ]
    best = best_pose(inputs=[s.outputs[0] for s in scores])
    return best.result()


if __name__ == "__main__":
    workdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="docking-")
    protein, ligand, score = main(workdir)
    print(f"docked {len(PROTEINS)} proteins x {len(LIGANDS)} ligands in {workdir}")
    print(f"best pose: {protein} + {ligand}, score {score:.2f} kcal/mol")
