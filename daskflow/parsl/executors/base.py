"""``parsl.executors.base``: Parsl's executor base class. Configurations name
its subclasses; a user-written one (its own ``submit``) is refused by
``parsl.load``, since on daskflow the Dask scheduler runs every app."""

from . import ParslExecutor

__all__ = ["ParslExecutor"]
