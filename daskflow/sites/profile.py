"""Site profiles: their schema, validation with clear errors, and loading by name.

A profile is a YAML file describing one Dask scheduler and one or more pools
of workers (Parsl's executors). Validation is done by hand so that every
problem names the file, the field path (``pools[1].scaling.max_blocks``) and
what was expected, and all problems are reported at once in a
:class:`ProfileError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Any

import dask
import yaml
from dask.utils import parse_bytes, parse_timedelta

PROVIDERS = ("local", "slurm", "pbs", "lsf", "sge", "htcondor", "oar", "kubernetes", "ssh")
LAUNCHERS = ("single", "srun", "mpiexec", "aprun")
MPI_LAUNCHERS = ("mpiexec", "srun", "aprun")
CONTAINER_RUNTIMES = ("apptainer", "singularity", "podman", "docker")
STRATEGIES = ("simple", "none")
#: provider-specific pool keys and their defaults (``None`` after ``hosts``: required)
PROVIDER_OPTIONS: dict[str, dict[str, Any]] = {
    "ssh": {"hosts": None, "port": 22, "username": None, "connect_options": {},
            "remote_python": None},
    "kubernetes": {"image": "ghcr.io/dask/dask:latest", "namespace": "default"},
}
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "site_profiles")
_WALLTIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
_MISSING = object()


class ProfileError(ValueError):
    """A site profile that cannot be loaded; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = str(source), list(problems)
        if len(self.problems) == 1:
            msg = f"{self.source}: {self.problems[0]}"
        else:
            msg = f"{self.source}: {len(self.problems)} problems:\n" + "\n".join(
                f"  {p}" for p in self.problems)
        super().__init__(msg)


@dataclass(frozen=True)
class Scheduler:
    """Where the scheduler listens; ``security``: ``"none"``, ``"tls"`` or a dict of TLS files."""

    host: str = "127.0.0.1"
    dashboard: str | None = "127.0.0.1:8787"
    security: str | dict = "none"


@dataclass(frozen=True)
class Block:
    """One block: one batch job, pod or ssh host group. ``memory`` is bytes per node."""

    nodes: int = 1
    cores: int | None = None
    memory: int | None = None
    walltime: str = "00:10:00"
    queue: str | None = None
    account: str | None = None
    job_extra: tuple[str, ...] = ()
    worker_init: tuple[str, ...] = ()

    @property
    def walltime_seconds(self) -> int:
        """The walltime in seconds."""
        h, m, s = map(int, self.walltime.split(":"))
        return h * 3600 + m * 60 + s


@dataclass(frozen=True)
class Scaling:
    """Parsl's block scaling; ``max_idletime`` is in seconds."""

    strategy: str = "simple"
    init_blocks: int = 1
    min_blocks: int = 0
    max_blocks: int = 1
    parallelism: float = 1.0
    max_idletime: float = 120.0


@dataclass(frozen=True)
class Mpi:
    """How a pool runs MPI apps: ``launcher`` (a name in ``MPI_LAUNCHERS`` or
    a command template with ``{ranks}``, ``{nodes}``, ``{ranks_per_node}``)
    and the ``slots`` of one block (ranks for local and ssh pools, nodes for
    batch pools; 0: no MPI apps). ``slots`` None: the provider's default."""

    launcher: str | None = None
    slots: int | None = None


@dataclass(frozen=True)
class Container:
    """A container that bash apps run in."""

    runtime: str
    image: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pool:
    """A pool of workers (a Parsl executor). ``options`` holds the provider-specific keys."""

    label: str
    provider: str
    launcher: str = "single"
    block: Block = field(default_factory=Block)
    workers_per_node: int | None = 1
    threads_per_worker: int = 1
    resources: dict = field(default_factory=dict)
    scaling: Scaling = field(default_factory=Scaling)
    reachable_from: str | tuple[str, ...] = "all"
    mpi: Mpi = field(default_factory=Mpi)
    container: Container | None = None
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """A validated site profile; ``path`` is the file it came from."""

    name: str
    description: str = ""
    retries: int = 0
    scheduler: Scheduler = field(default_factory=Scheduler)
    pools: tuple[Pool, ...] = ()
    limits: dict = field(default_factory=dict)
    staging: dict = field(default_factory=dict)
    path: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        """The profile as plain YAML-ready data, defaults filled in (valid profile input)."""
        out = _plain(dataclasses.asdict(self))
        out.pop("path")
        for pool in out["pools"]:
            pool.update(pool.pop("options"))
        return out


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _show(v) -> str:
    return f"{type(v).__name__} {v!r}" if not isinstance(v, str) else repr(v)


class _Checker:
    """Reads raw YAML data field by field, collecting every problem with its field path."""

    def __init__(self):
        self.problems: list[str] = []

    def err(self, path: str, msg: str) -> None:
        self.problems.append(f"{path or '(top level)'}: {msg}")

    def mapping(self, value, path: str, allowed, hints: dict | None = None) -> dict:
        """``value`` as a dict (``{}`` if null or wrong); reports keys not in ``allowed``."""
        if value is None or not isinstance(value, dict):
            if value is not None:
                self.err(path, f"expected a mapping, got {_show(value)}")
            return {}
        for key in value:
            if key in allowed:
                continue
            if hints and key in hints:
                self.err(_join(path, key), hints[key])
                continue
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = (f"did you mean {close[0]!r}?" if close
                    else f"expected one of: {', '.join(allowed)}")
            self.err(_join(path, key), f"unknown key; {hint}")
        return value

    def get(self, m: dict, key: str, path: str, default, check, expected: str, nullable=False):
        """``check(m[key])``, or ``default`` if absent; ``check`` raises on bad values."""
        v = m.get(key, _MISSING)
        if v is _MISSING or (v is None and nullable):
            if default is _MISSING and v is _MISSING:
                self.err(_join(path, key), f"required; expected {expected}")
            return None if v is None or default is _MISSING else default
        try:
            return check(v)
        except (TypeError, ValueError):
            self.err(_join(path, key), f"expected {expected}, got {_show(v)}")
            return None if default is _MISSING else default

    def integer(self, m, key, path, default, minimum=0, nullable=False):
        return self.get(m, key, path, default, lambda v: _ok(_isint(v) and v >= minimum, v),
                        f"an integer >= {minimum}", nullable)

    def string(self, m, key, path, default, nullable=False):
        return self.get(m, key, path, default, lambda v: _ok(isinstance(v, str), v), "a string",
                        nullable)

    def choice(self, m, key, path, default, choices):
        v = m.get(key, _MISSING)
        if v is not _MISSING and v not in choices:
            close = difflib.get_close_matches(str(v), choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.err(_join(path, key),
                     f"unknown {key} {v!r}; expected one of: {', '.join(choices)}{hint}")
            return None if default is _MISSING else default
        return self.get(m, key, path, default, lambda v: v, f"one of: {', '.join(choices)}")

    def strings(self, m, key, path, expected="a list of strings", nonempty=False):
        def check(v):
            return tuple(_ok(isinstance(v, list) and (v or not nonempty)
                             and all(isinstance(s, str) for s in v), v))
        return self.get(m, key, path, _MISSING if nonempty else (), check, expected, not nonempty)


def _ok(cond, v):
    if not cond:
        raise ValueError
    return v


def _isint(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _walltime(v):  # an int here is YAML 1.1 reading unquoted 1:30:00 as 5400
    return _ok(isinstance(v, str) and _WALLTIME.match(v), v)


def _parallelism(v):
    return float(_ok((_isint(v) or isinstance(v, float)) and 0 < v <= 1, v))


def _size(v):
    return _ok(parse_bytes(_ok(_isint(v) or isinstance(v, str), v)) > 0, parse_bytes(v))


def _duration(v):
    n = parse_timedelta(_ok(_isint(v) or isinstance(v, (float, str)), v), default="seconds")
    return float(_ok(n >= 0, n))


def _address(v):
    return _ok(isinstance(v, str) and v.rpartition(":")[2].isdigit() and ":" in v, v)


def _security(v):
    keys = {"tls_ca_file", "tls_cert", "tls_key"}
    return v if v in ("none", "tls") else dict(_ok(
        isinstance(v, dict) and set(v) == keys and all(isinstance(x, str) for x in v.values()), v))


def _resources(v):
    return dict(_ok(isinstance(v, dict) and all(
        isinstance(k, str) and (_isint(n) or isinstance(n, float)) and n > 0
        for k, n in v.items()), v))


_POOL_KEYS = ("label", "provider", "launcher", "block", "workers_per_node", "threads_per_worker",
              "resources", "scaling", "reachable_from", "mpi", "container")


def _mpi(c: _Checker, raw, path: str) -> Mpi:
    m = c.mapping(raw, path, ("launcher", "slots"))
    launcher = c.string(m, "launcher", path, None, nullable=True)
    if launcher is not None and launcher not in MPI_LAUNCHERS and "{ranks}" not in launcher:
        c.err(_join(path, "launcher"), f"expected one of: {', '.join(MPI_LAUNCHERS)}, or a "
              f"command template using {{ranks}} (and {{nodes}}, {{ranks_per_node}}), "
              f"got {launcher!r}")
    return Mpi(launcher=launcher, slots=c.integer(m, "slots", path, None, nullable=True))


def _container(c: _Checker, raw, path: str) -> Container | None:
    if raw is None:
        return None
    m = c.mapping(raw, path, ("runtime", "image", "options"))
    runtime = c.choice(m, "runtime", path, _MISSING, CONTAINER_RUNTIMES)
    image = c.string(m, "image", path, _MISSING)
    options = c.strings(m, "options", path)
    return Container(runtime, image, options) if runtime and image else None


_STAGING_SETTINGS = ("dir", "transfers", "secede", "cache")


def _staging(c: _Checker, raw) -> dict:
    """The ``staging:`` section: daskflow's staging settings and, per URL
    scheme, a mapping of that scheme's storage options (see docs/staging.md)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        c.err("staging", f"expected a mapping, got {_show(raw)}")
        return {}
    for key, value in raw.items():
        if key not in _STAGING_SETTINGS and not isinstance(value, dict):
            c.err(_join("staging", key), "expected a mapping of storage options for URL "
                  f"scheme {key!r} (or one of: {', '.join(_STAGING_SETTINGS)}), got {_show(value)}")
    return dict(raw)


def _limits(v):
    return dict(_ok(isinstance(v, dict) and all(
        isinstance(k, str) and _isint(n) and n >= 1 for k, n in v.items()), v))


def _pool(c: _Checker, raw, path: str) -> Pool | None:
    if not isinstance(raw, dict):
        c.err(path, f"expected a mapping (a pool), got {_show(raw)}")
        return None
    provider = c.choice(raw, "provider", path, _MISSING, PROVIDERS)
    own = PROVIDER_OPTIONS.get(provider, {})
    others = {k: f"applies only to provider {p!r}, not {provider!r}"
              for p, opts in PROVIDER_OPTIONS.items() if p != provider for k in opts}
    c.mapping(raw, path, _POOL_KEYS + tuple(own) + (tuple(others) if provider is None else ()),
              others)
    label = c.get(raw, "label", path, _MISSING,
                  lambda v: _ok(isinstance(v, str) and v.isidentifier(), v),
                  "an identifier (letters, digits, _; not starting with a digit)")
    bp, sp = _join(path, "block"), _join(path, "scaling")
    b = c.mapping(raw.get("block"), bp, [f.name for f in dataclasses.fields(Block)])
    block = Block(
        nodes=c.integer(b, "nodes", bp, 1, minimum=1),
        cores=c.integer(b, "cores", bp, None, minimum=1, nullable=True),
        memory=c.get(b, "memory", bp, None, _size, "a size such as '2GB' or '512MiB'", True),
        walltime=c.get(b, "walltime", bp, "00:10:00", _walltime,
                       "a quoted string 'HH:MM:SS' (YAML reads unquoted 1:30:00 as a number)"),
        queue=c.string(b, "queue", bp, None, nullable=True),
        account=c.string(b, "account", bp, None, nullable=True),
        job_extra=c.strings(b, "job_extra", bp), worker_init=c.strings(b, "worker_init", bp))
    s = c.mapping(raw.get("scaling"), sp, [f.name for f in dataclasses.fields(Scaling)])
    scaling = Scaling(
        strategy=c.choice(s, "strategy", sp, "simple", STRATEGIES),
        init_blocks=c.integer(s, "init_blocks", sp, 1),
        min_blocks=c.integer(s, "min_blocks", sp, 0),
        max_blocks=c.integer(s, "max_blocks", sp, 1),
        parallelism=c.get(s, "parallelism", sp, 1.0, _parallelism, "a number p with 0 < p <= 1"),
        max_idletime=c.get(s, "max_idletime", sp, 120.0, _duration,
                           "a duration such as '60s' or '5min'"))
    bad = {p.split(":")[0] for p in c.problems}  # compare only values that were valid
    for k in ("init_blocks", "min_blocks"):
        if {_join(sp, k), _join(sp, "max_blocks")} & bad:
            continue
        if getattr(scaling, k) > scaling.max_blocks:
            c.err(_join(sp, k),
                  f"expected <= max_blocks ({scaling.max_blocks}), got {getattr(scaling, k)}")
    options = {}
    for key, default in own.items():
        if key == "hosts":
            options[key] = c.strings(raw, key, path, nonempty=True,
                                     expected="a non-empty list of host names (provider ssh)")
        elif key == "port":
            options[key] = c.integer(raw, key, path, default, minimum=1)
        elif key == "connect_options":
            options[key] = c.get(raw, key, path, {}, lambda v: dict(_ok(isinstance(v, dict), v)),
                                 "a mapping of asyncssh connect options", True) or {}
        else:
            options[key] = c.string(raw, key, path, default, nullable=True)
    reach = c.get(raw, "reachable_from", path, "all", lambda v: v if v == "all" else tuple(_ok(
        isinstance(v, list) and all(isinstance(x, str) for x in v), v)),
        "'all' or a list of pool labels")
    return Pool(
        label=label, provider=provider,
        launcher=c.choice(raw, "launcher", path, "single", LAUNCHERS),
        block=block, workers_per_node=c.integer(raw, "workers_per_node", path, 1, 1, nullable=True),
        threads_per_worker=c.integer(raw, "threads_per_worker", path, 1, minimum=1),
        resources=c.get(raw, "resources", path, {}, _resources,
                        "a mapping of name to positive number", True) or {},
        scaling=scaling, options=options, reachable_from=reach,
        mpi=_mpi(c, raw.get("mpi"), _join(path, "mpi")),
        container=_container(c, raw.get("container"), _join(path, "container")))


def parse_profile(data, source: str, default_name: str) -> Profile:
    """Validate raw YAML ``data`` read from ``source``; raise :class:`ProfileError` listing all."""
    if not isinstance(data, dict):
        raise ProfileError(source, [
            f"expected a mapping (a site profile) at the top level, got {_show(data)}"])
    c = _Checker()
    c.mapping(data, "", ("name", "description", "retries", "scheduler", "pools", "limits",
                         "staging"))
    sm = c.mapping(data.get("scheduler"), "scheduler", ("host", "dashboard", "security"))
    scheduler = Scheduler(
        host=c.string(sm, "host", "scheduler", "127.0.0.1"),
        dashboard=c.get(sm, "dashboard", "scheduler", "127.0.0.1:8787", _address, "'host:port'",
                        True),
        security=c.get(sm, "security", "scheduler", "none", _security,
                       "'none', 'tls' or a mapping {tls_ca_file, tls_cert, tls_key}"))
    raw_pools, pools = data.get("pools"), []
    if not isinstance(raw_pools, list) or not raw_pools:
        c.err("pools", f"expected a non-empty list of pools, got {_show(raw_pools)}")
    else:
        pools = [_pool(c, p, f"pools[{i}]") for i, p in enumerate(raw_pools)]
    labels = [p.label for p in pools if p is not None and p.label is not None]
    seen = set()
    for i, p in enumerate(pools):
        if p is not None and p.label is not None:
            if p.label in seen:
                c.err(f"pools[{i}].label",
                      f"duplicate pool label {p.label!r}; labels must be unique")
            seen.add(p.label)
        for other in () if p is None or p.reachable_from == "all" else p.reachable_from:
            if other not in labels:
                c.err(f"pools[{i}].reachable_from",
                      f"unknown pool label {other!r}; expected one of: {', '.join(labels)}")
    profile = Profile(
        name=c.string(data, "name", "", default_name),
        description=c.string(data, "description", "", "", nullable=True) or "",
        retries=c.integer(data, "retries", "", 0), scheduler=scheduler, pools=tuple(pools),
        limits=c.get(data, "limits", "", {}, _limits,
                     "a mapping of licence name to a count >= 1", True) or {},
        staging=_staging(c, data.get("staging")),
        path=source)
    if c.problems:
        raise ProfileError(source, c.problems)
    return profile


def validate_file(path) -> Profile:
    """Read and validate the profile file at ``path``."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ProfileError(path, [f"cannot read: {e.strerror or e}"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ProfileError(path, [f"{where}YAML syntax error: {problem}"]) from None
    return parse_profile(data, path, os.path.splitext(os.path.basename(path))[0])


def search_dirs() -> list[str]:
    """The directories searched for profiles by name, first wins: the user's, then the shipped."""
    return [os.path.join(dask.config.PATH, "daskflow", "profiles"), SHIPPED_DIR]


def available_profiles() -> dict[str, str]:
    """Profile name -> file path; the user's profiles shadow the shipped ones."""
    found: dict[str, str] = {}
    for d in search_dirs():
        if os.path.isdir(d):
            for fn in sorted(os.listdir(d)):
                stem, ext = os.path.splitext(fn)
                if ext in (".yaml", ".yml"):
                    found.setdefault(stem, os.path.join(d, fn))
    return dict(sorted(found.items()))


def load_profile(name_or_path: str) -> Profile:
    """Load a profile from a ``.yaml``/``.yml`` path, or by name from :func:`search_dirs`."""
    s = os.fspath(name_or_path)
    if s.endswith((".yaml", ".yml")) or os.sep in s or os.path.isfile(s):
        return validate_file(s)
    found = available_profiles()
    if s in found:
        return validate_file(found[s])
    close = difflib.get_close_matches(s, list(found), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ProfileError(f"site profile {s!r}", [
        f"unknown profile name{hint}\n  available: {', '.join(found) or '(none)'}"
        f"\n  searched: {', '.join(search_dirs())}"])
