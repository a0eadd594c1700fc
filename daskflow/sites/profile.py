"""Site profiles: validation with clear errors, and loading by name.

A profile is a YAML file describing one Dask scheduler and one or more pools
of workers (Parsl's executors). Its schema, keys and defaults are declared
once, in :mod:`daskflow.sites.profile_schema`; here pydantic's errors become
problems that name the file, the field path (``pools[1].scaling.max_blocks``)
and what was expected, all reported at once in a :class:`ProfileError`, and
the checks that span fields (labels, ``reachable_from``, block counts) run.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing

import dask
import yaml
from pydantic import ValidationError

from .profile_schema import (  # noqa: F401  (the profile types are imported from here)
    CONTAINER_RUNTIMES, LAUNCHERS, MPI_LAUNCHERS, PROFILE, STRATEGIES, Block, Container, Mpi,
    Pool, Profile, Scaling, Scheduler, provider_keys, show)
from .providers import POOL_TYPES, PROVIDERS  # noqa: F401

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "site_profiles")
_STAGING_SETTINGS = ("dir", "transfers", "secede", "cache")


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


def _locate(loc: tuple) -> tuple[str, type, str | None]:
    """pydantic's ``('pools', 0, 'slurm', 'block', 'nodes')`` as the field path
    ``pools[0].block.nodes``, the section type holding its last key, and the
    pool's provider."""
    path, owner, provider = "", Profile, None
    for i, key in enumerate(loc):
        if i == 2 and loc[0] == "pools":  # the tag that chose the pool's type
            owner, provider = POOL_TYPES.get(key, Pool), key
            continue
        path += f"[{key}]" if isinstance(key, int) else f".{key}" if path else str(key)
        if isinstance(key, str) and i < len(loc) - 1:
            hint = owner.__pydantic_fields__[key].annotation
            args = (hint, *typing.get_args(hint))  # a section, or Optional[section]
            owner = next((t for t in args if dataclasses.is_dataclass(t)), None)
    return path or "(top level)", owner, provider


def _unknown_key(owner: type, provider: str | None, key) -> str:
    for other, pool_type in POOL_TYPES.items():
        if provider and other != provider and key in provider_keys(pool_type):
            return f"applies only to provider {other!r}, not {provider!r}"
    allowed = [f.name for f in dataclasses.fields(owner) if f.init]
    close = difflib.get_close_matches(str(key), allowed, n=1)
    return "unknown key; " + (f"did you mean {close[0]!r}?" if close
                              else f"expected one of: {', '.join(allowed)}")


def _problem(error: dict) -> str:
    """One pydantic error as a problem: ``field.path: what is wrong``."""
    kind, loc = error["type"], error["loc"]
    if kind == "invalid_key":  # a key that is not a string, e.g. YAML's ``1: x``
        loc = loc[:-1] + (str(loc[-1]),)
    path, owner, provider = _locate(loc)
    if kind == "daskflow":
        msg = error["ctx"]["message"]
    elif kind in ("unexpected_keyword_argument", "invalid_key"):
        msg = _unknown_key(owner, provider, loc[-1])
    elif kind == "missing":
        check = owner.__pydantic_fields__[loc[-1]].metadata[-1]
        msg = f"required; expected {check.expected}"
    elif kind == "dataclass_type":
        msg = f"expected a mapping{' (a pool)' if provider == loc[-1] else ''}, got " + show(
            error["input"])
    else:  # not expected from the schema; pydantic's words then
        msg = error["msg"]
    return f"{path}: {msg}"


def _across_fields(data: dict, bad: set[str]) -> list[str]:
    """Problems between fields of the raw ``data``, among values not already in ``bad``."""
    problems = []
    staging = data.get("staging")
    for key, value in staging.items() if isinstance(staging, dict) else ():
        if key not in _STAGING_SETTINGS and not isinstance(value, dict):
            problems.append(f"staging.{key}: expected a mapping of storage options for URL "
                            f"scheme {key!r} (or one of: {', '.join(_STAGING_SETTINGS)}), "
                            f"got {show(value)}")
    pools = data.get("pools")
    pools = [(f"pools[{i}]", p) for i, p in enumerate(pools if isinstance(pools, list) else [])
             if isinstance(p, dict)]
    labels: list = []
    for path, pool in pools:
        label = pool.get("label")
        if f"{path}.label" not in bad and label in labels:
            problems.append(f"{path}.label: duplicate pool label {label!r}; labels must be unique")
        elif f"{path}.label" not in bad and label is not None:
            labels.append(label)
        scaling, sp = pool.get("scaling") or {}, f"{path}.scaling"
        if not isinstance(scaling, dict) or f"{sp}.max_blocks" in bad:
            continue
        defaults = Scaling()
        top = scaling.get("max_blocks", defaults.max_blocks)
        for key in ("init_blocks", "min_blocks"):
            n = scaling.get(key, getattr(defaults, key))
            if f"{sp}.{key}" not in bad and n > top:
                problems.append(f"{sp}.{key}: expected <= max_blocks ({top}), got {n}")
    for path, pool in pools:
        reach = pool.get("reachable_from", "all")
        for other in () if reach == "all" or f"{path}.reachable_from" in bad else reach:
            if other not in labels:
                problems.append(f"{path}.reachable_from: unknown pool label {other!r}; "
                                f"expected one of: {', '.join(labels)}")
    return problems


def parse_profile(data, source: str, default_name: str) -> Profile:
    """Validate raw YAML ``data`` read from ``source``; raise :class:`ProfileError` listing all."""
    if not isinstance(data, dict):
        raise ProfileError(source, [
            f"expected a mapping (a site profile) at the top level, got {show(data)}"])
    try:
        profile = PROFILE.validate_python({"name": default_name, **data})
        problems = []
    except ValidationError as e:
        problems = [_problem(error) for error in e.errors()]
    problems += _across_fields(data, {p.split(": ")[0] for p in problems})
    if not problems:  # batch jobs end at their walltime: their workers drain before it
        problems = [f"pools[{i}].{problem}" for i, pool in enumerate(profile.pools)
                    if pool.provider_class.batch and (problem := pool.block.drain_problem())]
    if problems:  # each pool's problems together, in the order of the pools
        raise ProfileError(source, sorted(problems, key=lambda p: int(
            p[6:p.index("]")]) if p.startswith("pools[") else -1))
    object.__setattr__(profile, "path", source)
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
