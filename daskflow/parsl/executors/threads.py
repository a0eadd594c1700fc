"""``parsl.executors.threads``."""

from . import ThreadPoolExecutor

__all__ = ["ThreadPoolExecutor"]
