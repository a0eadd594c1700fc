"""Site profiles: schema, validation errors, loading by name, ``daskflow profiles``."""

from __future__ import annotations

import dataclasses
import os
import textwrap

from click.testing import CliRunner
import dask
import pytest
import yaml

from daskflow.cli.profiles import profiles
from daskflow.sites.profile import (POOL_TYPES, PROVIDERS, SHIPPED_DIR, Block, Mpi, Pool, Profile,
                                    ProfileError, Scaling, Scheduler, available_profiles,
                                    load_profile, validate_file)

SHIPPED = ["local", "slurm-localhost", "polaris", "perlmutter", "frontier", "theta",
           "kubernetes", "adhoc-ssh"]


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    """An empty dask config dir, so the user's own profiles never leak in."""
    monkeypatch.setattr(dask.config, "PATH", str(tmp_path / "dask"))
    d = tmp_path / "dask" / "daskflow" / "profiles"
    d.mkdir(parents=True)
    return d


def write(tmp_path, text, name="site.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def problems(path) -> tuple[str, list[str]]:
    with pytest.raises(ProfileError) as info:
        validate_file(path)
    assert str(path) in str(info.value)
    return str(info.value), info.value.problems


POOL = """\
  - label: cpu
    provider: slurm
"""


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_validate(name):
    p = load_profile(name)
    assert p.name == name and p.pools and p.description
    assert os.path.dirname(p.path) == SHIPPED_DIR
    # the shown form (defaults filled in) is itself a valid profile, equal to the original
    from daskflow.sites.profile import parse_profile
    assert parse_profile(yaml.safe_load(yaml.safe_dump(p.to_dict())), "x", "x") == p


def test_shipped_values():
    local = load_profile("local").pools[0]
    assert (local.provider, local.workers_per_node, local.scaling.strategy) == ("local", None, "none")
    sl = load_profile("slurm-localhost").pools[0]
    assert sl.block.memory == 10**9 and sl.block.walltime_seconds == 600
    assert sl.scaling.max_idletime == 20 and (sl.scaling.init_blocks, sl.scaling.max_blocks) == (0, 2)
    assert load_profile("polaris").pools[0].resources == {"GPU": 4}
    assert "--constraint=gpu" in load_profile("perlmutter").pools[0].block.job_extra
    ssh = load_profile("adhoc-ssh").pools[0]
    assert ssh.options["hosts"] == ("127.0.0.1",) and ssh.options["port"] == 2222
    assert load_profile("kubernetes").pools[0].options["image"] == "ghcr.io/dask/dask:latest"


def test_defaults_and_name_from_stem(tmp_path):
    p = validate_file(write(tmp_path, "pools:\n" + POOL, "mysite.yml"))
    assert isinstance(p, Profile) and p.name == "mysite" and p.retries == 0
    assert p.scheduler.host == "127.0.0.1" and p.scheduler.security == "none"
    pool = p.pools[0]
    assert pool.launcher == "single" and pool.block.walltime == "00:10:00"
    assert pool.reachable_from == "all" and pool.options == {}
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'label'"):
        pool.label = "x"  # frozen


def test_many_problems_reported_at_once(tmp_path):
    msg, probs = problems(write(tmp_path, """\
        pools:
          - label: cpu
            provider: slurmm
            block: {walltime: "30 minutes", memory: lots, walltme: 1}
            scaling: {max_blocks: -1, min_blocks: 1.5, parallelism: 1.5}
          - label: 2gpu
            provider: pbs
            scaling: {init_blocks: 3, min_blocks: 4, max_blocks: 2}
          - label: gpu
            provider: local
            scaling: {init_blocks: 2, max_blocks: -1}  # no init > max on top of the bad max
          - label: cpu
            provider: ssh
            hosts: []
        """))
    expected = [
        "pools[0].provider: unknown provider 'slurmm'; expected one of: " + ", ".join(PROVIDERS)
        + "; did you mean 'slurm'?",
        "pools[0].block.walltme: unknown key; did you mean 'walltime'?",
        "pools[0].block.memory: expected a size such as '2GB' or '512MiB', got 'lots'",
        "pools[0].block.walltime: expected a quoted string 'HH:MM:SS'",
        "pools[0].scaling.max_blocks: expected an integer >= 0, got int -1",
        "pools[0].scaling.min_blocks: expected an integer >= 0, got float 1.5",
        "pools[0].scaling.parallelism: expected a number p with 0 < p <= 1, got float 1.5",
        "pools[1].label: expected an identifier",
        "pools[1].scaling.init_blocks: expected <= max_blocks (2), got 3",
        "pools[1].scaling.min_blocks: expected <= max_blocks (2), got 4",
        "pools[2].scaling.max_blocks: expected an integer >= 0, got int -1",
        "pools[3].hosts: expected a non-empty list of host names (provider ssh), got list []",
        "pools[3].label: duplicate pool label 'cpu'",
    ]
    for e in expected:
        assert any(p.startswith(e) for p in probs), (e, probs)
    assert f"{len(probs)} problems:" in msg and len(probs) == len(expected)


def test_unknown_keys_everywhere(tmp_path):
    _, probs = problems(write(tmp_path, """\
        descripton: x
        scheduler: {hots: 0.0.0.0, security: ssl}
        pools:
          - label: cpu
            provider: slurm
            image: foo
            scalling: {}
        """))
    assert "descripton: unknown key; did you mean 'description'?" in probs
    assert "scheduler.hots: unknown key; did you mean 'host'?" in probs
    assert any(p.startswith("scheduler.security: expected 'none', 'tls'") for p in probs)
    assert "pools[0].image: applies only to provider 'kubernetes', not 'slurm'" in probs
    assert "pools[0].scalling: unknown key; did you mean 'scaling'?" in probs


@pytest.mark.parametrize("text, expected", [
    ("pools: []\n", "pools: expected a non-empty list of pools, got list []"),
    ("description: x\n", "pools: expected a non-empty list of pools, got NoneType None"),
    ("- a\n- b\n", "expected a mapping (a site profile) at the top level, got list"),
    ("pools:\n  - label: a\n   provider: x\n", "line 3, column 4: YAML syntax error"),
    ("pools:\n  - label: a\n    provider: local\n    block: {walltime: 1:30:00}\n",
     "pools[0].block.walltime: expected a quoted string 'HH:MM:SS' (YAML reads unquoted 1:30:00 "
     "as a number), got int 5400"),
    ("pools:\n  - label: a\n    provider: ssh\n",
     "pools[0].hosts: required; expected a non-empty list of host names (provider ssh)"),
    ("pools:\n  - label: a\n    provider: local\n    reachable_from: [b]\n",
     "pools[0].reachable_from: unknown pool label 'b'"),
    # a misspelt provider: its own keys are not reported as well
    ("pools:\n  - {label: a, provider: sshh, hosts: [h], port: 22}\n",
     "pools[0].provider: unknown provider 'sshh'; expected one of: local, slurm, pbs, lsf, sge, "
     "htcondor, oar, kubernetes, ssh; did you mean 'ssh'?"),
    ("pools:\n  - 5\n", "pools[0]: expected a mapping (a pool), got int 5"),
    ("pools:\n  - {label: a, provider: local, container: {runtime: docker}}\n",
     "pools[0].container.image: required; expected a string"),
    ("pools:\n  - {label: a, provider: local, scaling: {max_idletime: 5min}}\n",
     "pools[0].scaling.max_idletime: expected a duration such as '60s' or '5m', got '5min'"),
    ("pools:\n  - {label: a, provider: local, block: [1]}\n",
     "pools[0].block: expected a mapping, got list [1]"),
    ("1: x\npools: [{label: a, provider: local}]\n",
     "1: unknown key; expected one of: name, description, retries, scheduler, pools, limits, "
     "staging"),
])
def test_single_problems(tmp_path, text, expected):
    msg, probs = problems(write(tmp_path, text))
    assert len(probs) == 1 and probs[0].startswith(expected) and msg.startswith(str(tmp_path))


def test_null_sections_and_lists_take_their_defaults(tmp_path):
    p = validate_file(write(tmp_path, """\
        scheduler: null
        limits: null
        pools:
          - {label: a, provider: local, block: null, scaling: null, mpi: null, resources: null}
          - {label: b, provider: slurm, block: {job_extra: null, worker_init: null}}
        """))
    a, b = p.pools
    assert p.scheduler == Scheduler() and p.limits == {} and a.resources == {}
    assert (a.block, a.scaling, a.mpi) == (Block(), Scaling(), Mpi())
    assert b.block.job_extra == b.block.worker_init == ()


def test_each_provider_declares_its_own_keys_and_defaults(tmp_path):
    """Provider keys sit in the pool; their defaults come from the provider's pool type."""
    p = validate_file(write(tmp_path, """\
        pools:
          - {label: s, provider: ssh, hosts: [h1, h2]}
          - {label: k, provider: kubernetes, namespace: science}
          - {label: c, provider: slurm}
        """))
    s, k, c = p.pools
    assert s.options == {"hosts": ("h1", "h2"), "port": 22, "username": None,
                         "connect_options": {}, "remote_python": None}
    assert k.options == {"image": "ghcr.io/dask/dask:latest", "namespace": "science"}
    assert c.options == {} and {t for t in POOL_TYPES.values()} > {Pool}
    shown = p.to_dict()["pools"]
    assert shown[0]["hosts"] == ["h1", "h2"] and shown[1]["image"] == "ghcr.io/dask/dask:latest"
    assert "hosts" not in shown[2] and "image" not in shown[2]


def test_unknown_name_did_you_mean(user_dir):
    with pytest.raises(ProfileError) as info:
        load_profile("slurm-localhst")
    msg = str(info.value)
    assert "did you mean 'slurm-localhost'?" in msg and "available: adhoc-ssh," in msg
    assert str(user_dir) in msg and SHIPPED_DIR in msg
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile("/no/such/file.yaml")


def test_user_profiles_shadow_shipped(user_dir):
    (user_dir / "local.yaml").write_text("description: mine\npools:\n" + POOL)
    (user_dir / "extra.yaml").write_text("pools:\n" + POOL)
    found = available_profiles()
    assert found["local"] == str(user_dir / "local.yaml")
    assert found["extra"] == str(user_dir / "extra.yaml") and "polaris" in found
    assert load_profile("local").description == "mine"


def test_cli_ls_show_check(tmp_path, user_dir):
    (user_dir / "broken.yaml").write_text("pools: []\n")
    r = CliRunner().invoke(profiles, ["ls"])
    assert r.exit_code == 0, r.output
    assert "slurm-localhost" in r.output and "cpu:slurm" in r.output
    assert "broken" in r.output and "INVALID" in r.output

    r = CliRunner().invoke(profiles, ["show", "slurm-localhost"])
    assert r.exit_code == 0, r.output
    shown = yaml.safe_load(r.output)
    assert shown["pools"][0]["scaling"]["max_idletime"] == 20 and shown["pools"][0]["resources"] == {}
    r = CliRunner().invoke(profiles, ["show", "nope"])
    assert r.exit_code == 1 and "unknown profile name" in r.output

    good = os.path.join(SHIPPED_DIR, "polaris.yaml")
    r = CliRunner().invoke(profiles, ["check", good])
    assert r.exit_code == 0 and r.output.strip() == f"{good}: ok (1 pool: gpu:pbs)"
    bad = write(tmp_path, "pools:\n  - label: a\n    provider: local\n    block: {walltme: 1}\n")
    r = CliRunner().invoke(profiles, ["check", bad])
    assert r.exit_code == 1
    assert f"{bad}: pools[0].block.walltme: unknown key; did you mean 'walltime'?" in r.output


def test_a_profiles_staging_section_holds_while_its_client_lives(tmp_path):
    import dask

    import daskflow
    from daskflow.staging.options import staging_options

    path = tmp_path / "staged.yaml"
    path.write_text("name: staged\nscheduler: {dashboard: 127.0.0.1:0}\n"
                    "staging: {s3: {endpoint_url: 'http://127.0.0.1:9'}, transfers: 2}\n"
                    "pools:\n  - label: cpu\n    provider: local\n    workers_per_node: 1\n"
                    "    scaling: {strategy: none, init_blocks: 1, max_blocks: 1}\n")
    before = dask.config.get("daskflow.staging.transfers")
    with daskflow.Client(profile=str(path), set_as_default=False):
        assert staging_options("s3") == {"endpoint_url": "http://127.0.0.1:9"}
        assert dask.config.get("daskflow.staging.transfers") == 2
    assert dask.config.get("daskflow.staging.transfers") == before
    assert staging_options("s3") == {}


def test_bad_staging_section(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("staging: {s3: 'http://x'}\npools: [{label: a, provider: local}]\n")
    with pytest.raises(ProfileError, match="staging.s3: expected a mapping of storage options"):
        validate_file(path)
