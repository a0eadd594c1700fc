"""``parsl.data_provider.files.File``: daskflow's ``File``."""

from ...files import File

__all__ = ["File"]
