"""``parsl.version``: the Parsl release whose interface this mirrors, with
daskflow's version as its local part."""

from ..version import __version__ as DASKFLOW_VERSION

PARSL_VERSION = "2026.10.26"
VERSION = f"{PARSL_VERSION}+daskflow.{DASKFLOW_VERSION}"

__all__ = ["VERSION"]
