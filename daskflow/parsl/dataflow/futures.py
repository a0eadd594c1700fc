"""``parsl.dataflow.futures``: an app call's future is daskflow's ``AppFuture``."""

from ...client.futures import AppFuture

__all__ = ["AppFuture"]
