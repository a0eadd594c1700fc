"""A Parsl configuration file as a daskflow site profile (``daskflow
profiles from-parsl``): the file runs with ``import parsl`` giving
``daskflow.parsl``, its Config is translated as ``parsl.load`` would, and
the YAML written says in comments what a profile cannot hold, so nothing
is dropped silently."""

from __future__ import annotations

import os
import runpy
import socket
import sys
from dataclasses import dataclass, field

import yaml

from ..sites.profile import Profile, parse_profile
from .config import Config
from .errors import ConfigurationError
from .holders import Holder
from .importer import install
from .translate import translate_to_profile

#: Config keywords a profile holds (the pools, their scaling, the retries)
IN_PROFILE = ("executors", "retries", "strategy", "max_idletime")
#: what becomes of Config keywords a profile cannot hold, where there is more to say
OUTSIDE = {
    "exit_mode": "with daskflow.Client(profile=...) as client: closes the cluster at the end "
                 "of the block ('cleanup'); wait for your futures inside it for 'wait'",
    "run_dir": "dask config daskflow.run-dir (below)",
    "monitoring": "provenance is recorded (daskflow.provenance.enabled, below); the dashboard's "
                  "Workflow page shows the run",
}


@dataclass
class Translated:
    """The YAML text of a profile and the warnings that go with it."""

    text: str
    profile: Profile  #: validated
    warnings: list[str] = field(default_factory=list)


def load_config(path: str) -> Config:
    """The Parsl ``Config`` that the Python file ``path`` defines, as
    ``config`` or returned by ``fresh_config()`` (Parsl's test configs)."""
    install()
    here = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, here)  # its own modules import, as when it runs as a script
    try:
        namespace = runpy.run_path(path, run_name="__parsl_config__")
    finally:
        sys.path.remove(here)
    config = namespace.get("config")
    if config is None and callable(namespace.get("fresh_config")):
        config = namespace["fresh_config"]()
    if not isinstance(config, Config):
        found = "nothing" if config is None else type(config).__name__
        raise ConfigurationError(f"{path}: expected a variable 'config' holding a "
                                 "parsl.config.Config, or a function fresh_config() returning "
                                 f"one; found {found}")
    return config


def _plain(value) -> bool:
    """Whether YAML can hold ``value`` as data."""
    try:
        yaml.safe_dump(value)
    except yaml.YAMLError:
        return False
    return True


def _data(value) -> bool:
    """Whether ``value`` is data a profile could come from (YAML's, or Parsl's holders)."""
    if isinstance(value, (list, tuple)):
        return all(_data(v) for v in value)
    return isinstance(value, Holder) or _plain(value)


def _shown(value) -> str:
    if callable(value) and hasattr(value, "__qualname__"):
        return f"<{type(value).__name__} {value.__qualname__}>"
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _outside(config, plan) -> tuple[list[str], list[str], set[str]]:
    """Comment lines for the keywords a profile does not hold, the warnings
    for those given as Python objects (no YAML equivalent), and the latter's
    ``Class.keyword`` names."""
    unused = set(plan.unused)
    lines, warnings, objects = [], [], set()
    for holder in (config, *config.executors):
        kind = type(holder).__name__
        name = kind if holder is config else f"{kind}(label={holder.label!r})"
        for keyword, value in holder.changed().items():
            if holder is config and keyword in IN_PROFILE:
                continue
            line = f"{name}.{keyword}={_shown(value)}"
            if not _data(value):
                warning = (f"{line}: a Python object, which a YAML profile cannot hold (keep "
                           "it in the script, or see the dask config settings)")
                warnings.append(warning)
                lines.append(warning)
                objects.add(f"{kind}.{keyword}")
            elif holder is config and f"Config.{keyword}" not in unused:
                lines.append(f"{line}: {OUTSIDE.get(keyword, 'see the dask config settings')}")
    return lines, warnings, objects


def _settings(config, plan) -> list[str]:
    """``plan.settings`` but the retries (which the profile holds) as nested dask config."""
    nested: dict = {}
    for key, value in plan.settings.items():
        if key == "daskflow.retries":
            continue
        if key == "daskflow.run-dir":
            value = config.run_dir  # relative to where the script runs, as in Parsl
        *parents, leaf = key.split(".")
        at = nested
        for part in parents:
            at = at.setdefault(part, {})
        at[leaf] = value if _plain(value) else f"<{_shown(value)}: no YAML equivalent>"
    if not nested:
        return []
    return yaml.safe_dump(nested, sort_keys=False, default_flow_style=False).splitlines()


class _Quoted(str):
    """A string written in quotes (a walltime: YAML 1.1 reads 1:30:00 as a number)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Quoted, lambda dumper, v: dumper.represent_scalar("tag:yaml.org,2002:str", v, style='"'))


def _dump(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def _comment(lines: list[str], indent: str = "") -> str:
    out = ""
    for line in lines:
        lead = line[:len(line) - len(line.lstrip())]
        more = "    " if lead else ""  # an item's continuation lines are indented
        for n, part in enumerate(_wrapped(line.strip(), 95 - len(indent) - len(lead)) or [""]):
            out += f"{indent}# {lead}{more if n else ''}{part}".rstrip() + "\n"
    return out


def _wrapped(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([line] if line else [])


def _ordered(data, like):
    """``data`` with the keys of each mapping in the order of ``like`` (the
    validated profile: the schema's order)."""
    if isinstance(data, dict) and isinstance(like, dict):
        keys = [k for k in like if k in data] + [k for k in data if k not in like]
        return {k: _ordered(data[k], like.get(k)) for k in keys}
    if isinstance(data, list) and isinstance(like, list) and len(data) == len(like):
        return [_ordered(d, o) for d, o in zip(data, like)]
    return data


def _readable(pool: dict) -> dict:
    """A pool as people write it: walltime quoted, memory in GiB or MiB when exact."""
    block = dict(pool.get("block") or {})
    if not block:
        return pool
    if "walltime" in block:
        block["walltime"] = _Quoted(block["walltime"])
    memory = block.get("memory")
    if isinstance(memory, int):
        for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
            if memory % size == 0:
                block["memory"] = f"{memory // size}{unit}"
                break
    return {**pool, "block": block}


def to_profile(config, name: str, source: str) -> Translated:
    """The profile of ``config`` (named ``name``; ``source``: the file it
    came from), validated, as YAML with its comments and warnings."""
    plan = translate_to_profile(config)
    data = {**plan.profile, "name": name,
            "description": f"translated from the Parsl configuration {os.path.basename(source)}"}
    profile = parse_profile(data, source, name)
    outside, warnings, objects = _outside(config, plan)
    settings = _settings(config, plan)
    head = [f"daskflow site profile translated from the Parsl configuration {source} by "
            "'daskflow profiles from-parsl'. Use it with daskflow.Client(profile=PATH) or "
            "'daskflow run --profile PATH script.py'; check it with 'daskflow profiles check "
            "PATH'."]
    if any(p["provider"] != "local" for p in data["pools"]) and not any(
            getattr(e, "address", None) for e in config.executors):
        head += ["", f"scheduler.host is the address of the machine this was written on "
                     f"({socket.gethostname()}): the workers must reach the scheduler there; "
                     "change it if the script runs elsewhere."]
    if outside:
        head += ["", "Not in this profile (a profile says where work runs, not how a run "
                     "behaves):"] + [f"  {line}" for line in outside]
    if settings:
        head += ["", "The same behaviour as dask config (~/.config/dask/daskflow.yaml, or "
                     "dask.config.set):"] + [f"  {line}" for line in settings]
    unused = [u for u in plan.unused if u not in objects]  # those are warned about above
    if unused:
        head += ["", "Accepted, without meaning on Dask (parsl.load warns about them too): "
                 + ", ".join(unused)]
    data = _ordered(data, profile.to_dict())
    text = _comment(head) + _dump({k: v for k, v in data.items() if k != "pools"})
    text += "pools:\n"
    labels = {pool: parsl for parsl, pool in plan.labels.items()}
    for pool, executor in zip(data["pools"], config.executors):
        provider = getattr(executor, "provider", None)
        note = f"{type(executor).__name__}(label={labels[pool['label']]!r})" + (
            f" with {type(provider).__name__}" if provider is not None else "")
        body = _dump([_readable(pool)])
        text += _comment([note], "  ") + "".join(f"  {line}\n" for line in body.splitlines())
    return Translated(text, profile, warnings)


__all__ = ["Translated", "load_config", "to_profile"]
