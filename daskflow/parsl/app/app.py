"""``parsl.app.app``: Parsl's decorators, making daskflow apps that need a
loaded configuration (``NoDataFlowKernelError`` before ``parsl.load``, as
in Parsl) and pin with the configuration's executor labels."""

from __future__ import annotations

from typing import Callable

from ...client.apps import App
from ..dataflow.dflow import DataFlowKernelLoader


class ParslApp(App):
    """A daskflow app whose ``executors=`` are Parsl executor labels.

    As in Parsl, a malformed ``stdout=``/``stderr=`` fails the call's future
    (``BadStdStreamFile``), not the call, and the loaded configuration's
    ``retry_handler`` and ``std_autopath`` apply.

    On a worker (calls inside join apps) it travels as a plain ``App``,
    pinned to the pools the labels named when it was called here.
    """

    check_streams_at_call = False

    def __init__(self, func: Callable, kind: str, *, executors="all", **options):
        super().__init__(func, kind, executors=executors, **options)
        self.parsl_executors = executors
        self._pinned_by = None  # the kernel whose pools self.executors names
        self._dfk = None  # the kernel of the call being made

    def _pin(self):
        self._dfk = dfk = DataFlowKernelLoader.dfk()  # NoDataFlowKernelError before parsl.load
        if self.parsl_executors != "all" and self._pinned_by is not dfk:
            self.executors = dfk.pools_for(self.parsl_executors)
            self._pinned_by = dfk

    def _run_retry_handler(self):
        handler = self._dfk.config.retry_handler if self._dfk is not None else None
        return handler if handler is not None else super()._run_retry_handler()

    def _std_autopath(self, task_record: dict, stream: str):
        autopath = self._dfk.config.std_autopath if self._dfk is not None else None
        if autopath is None:
            return super()._std_autopath(task_record, stream)
        return autopath(task_record, stream)

    def __call__(self, *args, **kwargs):
        self._pin()
        future = super().__call__(*args, **kwargs)
        # what Parsl scripts read of a call's task record; not its arguments
        # (upstream futures there would keep their results on the cluster)
        future.task_record = {"id": future.tid, "func_name": self.name,
                              "func": self.__wrapped__}
        return future

    def map(self, *iterables, **kwargs):
        self._pin()
        return super().map(*iterables, **kwargs)


def _decorator(kind: str, takes_executors: bool = True):
    def decorator(function: Callable | None = None, data_flow_kernel=None, cache: bool = False,
                  executors="all", ignore_for_cache=None, **options):
        if data_flow_kernel is not None:
            raise TypeError("data_flow_kernel= is not supported: daskflow apps run on the "
                            "loaded configuration (parsl.load)")
        if not takes_executors and executors != "all":
            raise TypeError(f"{kind}_app() got an unexpected keyword argument 'executors'")

        def make(func: Callable) -> ParslApp:
            return ParslApp(func, kind, cache=cache, executors=executors,
                            ignore_for_cache=ignore_for_cache, **options)

        return make(function) if function is not None else make

    decorator.__name__ = decorator.__qualname__ = f"{kind}_app"
    decorator.__doc__ = (f"Parsl's ``@{kind}_app``: a daskflow app (see daskflow's "
                         f"``{kind}_app`` for its options) that needs ``parsl.load`` first.")
    return decorator


python_app = _decorator("python")
bash_app = _decorator("bash")
join_app = _decorator("join", takes_executors=False)

__all__ = ["ParslApp", "bash_app", "join_app", "python_app"]
