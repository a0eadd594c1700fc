"""The documentation builds with Sphinx without a single warning (broken
references included: ``nitpicky``), and its pages hold the guides, every
public name and every command."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import click
import pytest

import daskflow
import daskflow.provenance
from daskflow.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
GUIDES = sorted(name[:-3] for name in os.listdir(DOCS) if name.endswith(".md"))

pytestmark = pytest.mark.slow  # about 15 s: it imports dask and renders every page


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> str:
    """Build the docs as ``sphinx-build -W --keep-going -b html docs OUT``
    and return OUT; any warning fails the build."""
    out = tmp_path_factory.mktemp("html")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         "-d", str(tmp_path_factory.mktemp("doctrees")), DOCS, str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    if proc.returncode:
        pytest.fail(f"sphinx-build failed (warnings are errors):\n{proc.stderr[-5000:]}",
                    pytrace=False)
    return str(out)


def read(html: str, page: str) -> str:
    with open(os.path.join(html, page), encoding="utf-8") as f:
        return f.read()


def test_every_guide_is_a_page_in_the_index(html):
    index = read(html, "index.html")
    assert GUIDES, DOCS
    for guide in GUIDES:
        assert os.path.isfile(os.path.join(html, f"{guide}.html")), guide
        assert f'href="{guide}.html"' in index, f"{guide} is not in the index's toctree"
    assert 'href="api.html"' in index


def test_api_page_documents_every_public_name(html):
    api = read(html, "api.html")
    names = [f"daskflow.{n}" for n in daskflow.__all__]
    names += [f"daskflow.provenance.{n}" for n in daskflow.provenance.__all__]
    missing = [n for n in names if f'id="{n}"' not in api]
    assert not missing, f"not in docs/api.rst: {missing}"


def test_shared_parameter_text_is_filled_in(html):
    """The decorators' shared options reach each of them, placeholders gone."""
    api = read(html, "api.html")
    assert "%(" not in api
    for kind in ("python", "bash", "join"):
        start = api.index(f'id="daskflow.{kind}_app"')
        block = api[start:api.index('id="daskflow.', start + 1)]  # up to the next object
        for option in ("retries", "retry_handler", "walltime", "cache", "ignore_for_cache",
                       "executors", "limits"):
            assert re.search(rf"<strong>{option}</strong>", block), (kind, option)
        assert ("<strong>container</strong>" in block) == (kind == "bash"), kind


def walk(command: click.Command, path: tuple[str, ...] = ("daskflow",)):
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


def test_api_page_documents_every_command(html):
    api = read(html, "api.html")
    missing = [" ".join(p) for p in walk(main) if f'id="{"-".join(p)}"' not in api]
    assert not missing, f"commands missing from the CLI reference: {missing}"
