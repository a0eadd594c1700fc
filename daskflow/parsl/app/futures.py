"""``parsl.app.futures``: an output File's future is daskflow's ``DataFuture``."""

from ...client.futures import DataFuture

__all__ = ["DataFuture"]
