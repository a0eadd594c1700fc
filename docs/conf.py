"""Sphinx configuration: the user guides (Markdown, through MyST) and an API
reference built from the numpydoc docstrings.

Build with ``sphinx-build -W --keep-going -b html docs build/docs``;
``tests/test_docs_build.py`` runs the same and fails on any warning. Nothing
is fetched: no intersphinx, no remote images, so the build works offline.
"""

import os
import sys

# the checkout's daskflow, installed or not
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import daskflow  # noqa: E402

project = "daskflow"
author = "daskflow developers"
copyright = "daskflow developers"
version = release = daskflow.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_parser",
    "sphinx_click",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# The API reference lists members explicitly; numpydoc's own member tables
# would repeat them (and need autosummary stubs).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc sections give the types

# Guides link to each other as ``[staging.md](staging.md)``; headings get
# anchors so that ``file.md#section`` links resolve.
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"daskflow {release}"

# `Name` in a docstring links to it (numpydoc's convention)
default_role = "py:obj"
# and must resolve: the build fails on a broken reference
nitpicky = True

# Curly quotes, but "--help" in command help stays two hyphens (no en dash)
smartquotes_action = "qe"
