"""The parsers of the batch systems' status commands, on their documented
output formats (only Slurm runs here: tests/test_sites_slurm.py asks it for
real; these samples follow the PBS, LSF, SGE, HTCondor and OAR manuals)."""

from __future__ import annotations

import pytest

from daskflow.sites.job_status import ENDED, PENDING, RUNNING
from daskflow.sites.providers import PROVIDERS

QUERIES = {name: p.status for name, p in PROVIDERS.items() if getattr(p, "status", None)}

SAMPLES = {
    "slurm": ("101 RUNNING\n102 PENDING\n103 FAILED\n104 COMPLETING\n",
              {"101": RUNNING, "102": PENDING, "103": ENDED, "104": ENDED}),
    "pbs": ("Job Id: 101.pbs-server\n    Job_Name = daskflow-cpu\n    job_state = R\n"
            "    queue = workq\n\nJob Id: 102.pbs-server\n    Job_Name = daskflow-cpu\n"
            "    job_state = Q\n\nJob Id: 103.pbs-server\n    job_state = F\n",
            {"101": RUNNING, "102": PENDING, "103": ENDED}),
    "lsf": ("101 RUN\n102 PEND\n103 EXIT\n104 DONE\n",
            {"101": RUNNING, "102": PENDING, "103": ENDED, "104": ENDED}),
    "sge": ("job-ID  prior   name       user         state submit/start at     queue"
            "                          slots ja-task-ID\n" + "-" * 100 + "\n"
            "    101 0.55500 daskflow-c alice        r     05/02/2024 10:00:01 all.q@node1"
            "                        1\n"
            "    102 0.00000 daskflow-c alice        qw    05/02/2024 10:00:02"
            "                                    1\n"
            "    103 0.00000 daskflow-c alice        Eqw   05/02/2024 10:00:03"
            "                                    1\n",
            {"101": RUNNING, "102": PENDING, "103": ENDED}),
    "htcondor": ("12.0 2\n13.0 1\n14.0 5\n15.0 4\n",
                 {"12.0": RUNNING, "13.0": PENDING, "14.0": PENDING, "15.0": ENDED}),
    "oar": ("101: Running\n102: Waiting\n103: Terminated\n",
            {"101": RUNNING, "102": PENDING, "103": ENDED}),
}


@pytest.mark.parametrize("provider", sorted(SAMPLES))
def test_each_state_word_has_its_phase(provider):
    out, phases = SAMPLES[provider]
    query = QUERIES[provider]
    listed = query.parse(out)
    assert {job: query.phase(word) for job, word in listed.items()} == phases


def test_a_state_word_not_understood_never_counts_as_ended():
    assert {QUERIES[p].phase("UNKNOWN") for p in QUERIES} == {PENDING}


def test_every_batch_provider_has_a_sample_here():
    """A new batch provider brings its status query, and a sample of its
    command's output belongs in SAMPLES."""
    assert set(SAMPLES) == set(QUERIES)
