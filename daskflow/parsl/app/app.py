"""``parsl.app.app``: Parsl's decorators, making daskflow apps that need a
loaded configuration (``NoDataFlowKernelError`` before ``parsl.load``, as
in Parsl) and pin with the configuration's executor labels."""

from __future__ import annotations

import contextlib
import logging
from typing import Callable

from ...client import session as _client
from ...client.apps import App
from ...client.arguments import futures_in
from ...client.futures import as_app_future
from ...errors import UnknownResourceKeys, UnpicklableArgument
from ..dataflow.dflow import DataFlowKernelLoader, task_log
from ..executors.errors import InvalidResourceSpecification


class ParslApp(App):
    """A daskflow app whose ``executors=`` are Parsl executor labels.

    As in Parsl, a malformed ``stdout=``/``stderr=`` fails the call's future
    (``BadStdStreamFile``), not the call, and the loaded configuration's
    ``retry_handler`` and ``std_autopath`` apply.

    On a worker (calls inside join apps) it travels as a plain ``App``,
    pinned to the pools the labels named when it was called here.
    """

    check_streams_at_call = False

    def __init__(self, func: Callable, kind: str, *, executors="all", data_flow_kernel=None,
                 **options):
        super().__init__(func, kind, executors=executors, **options)
        self.parsl_executors = executors
        self._pinned_by = None  # the kernel whose pools self.executors names
        self._kernel = data_flow_kernel  # Parsl's data_flow_kernel=: calls go to its client
        self._dfk = None  # the kernel of the call being made

    def _pin(self):
        # NoDataFlowKernelError before parsl.load
        self._dfk = dfk = self._kernel if self._kernel is not None \
            else DataFlowKernelLoader.dfk()
        if self.parsl_executors != "all" and self._pinned_by is not dfk:
            self.executors = dfk.pools_for(self.parsl_executors)
            self._pinned_by = dfk
        return dfk

    def _run_retry_handler(self):
        handler = self._dfk.config.retry_handler if self._dfk is not None else None
        return handler if handler is not None else super()._run_retry_handler()

    def _std_autopath(self, task_record: dict, stream: str):
        autopath = self._dfk.config.std_autopath if self._dfk is not None else None
        if autopath is None:
            return super()._std_autopath(task_record, stream)
        return autopath(task_record, stream)

    def __call__(self, *args, **kwargs):
        dfk = self._pin()
        if self._kernel is None:
            future = self._submit(args, kwargs)
        else:
            with dfk.client.as_current():
                future = self._submit(args, kwargs)
        self._record(dfk, future, args, kwargs, task_log.isEnabledFor(logging.INFO))
        return future

    def _submit(self, args: tuple, kwargs: dict):
        try:
            return super().__call__(*args, **kwargs)
        except UnpicklableArgument as exc:  # Parsl's SerializationError, on the future
            return _failed_call(self.name, exc, kwargs)
        except UnknownResourceKeys as exc:  # on the future too, as Parsl's executors do
            return _failed_call(self.name, InvalidResourceSpecification(
                set(exc.unknown), str(exc)), kwargs)

    def map(self, *iterables, **kwargs):
        dfk = self._pin()
        with dfk.client.as_current() if self._kernel is not None else contextlib.nullcontext():
            futures = super().map(*iterables, **kwargs)
        logs = task_log.isEnabledFor(logging.INFO)
        for future, args in zip(futures, zip(*iterables)):
            self._record(dfk, future, args, kwargs, logs)
        return futures

    def _record(self, dfk, future, args, kwargs, logs: bool) -> None:
        """What Parsl keeps of a call: the kernel's task table, the future's
        task record (not its arguments: upstream futures there would keep
        their results on the cluster) and, while the kernel logs, parsl.log."""
        dfk.track(future)
        future.task_record = {"id": future.tid, "func_name": self.name,
                              "func": self.__wrapped__}
        if logs:
            log_call(future, (args, kwargs))


def _failed_call(app_name: str, exc: BaseException, kwargs: dict):
    """A call whose arguments cannot be sent to a worker: as in Parsl, its
    future fails (with ``SerializationError``, daskflow's UnpicklableArgument),
    rather than the call, so a loop of calls goes on."""
    session, tid, run = _client.current()
    future = session.client.submit(_raise, exc, key=f"{app_name}-{tid}-unsent-{run.token}",
                                   pure=False)
    return as_app_future(future, tid=tid, app_name=app_name, stdout=kwargs.get("stdout"),
                         stderr=kwargs.get("stderr"), outputs=[])


def _raise(exc: BaseException):
    raise exc


def log_call(future, arguments) -> None:
    """Parsl's records of a call and of each call it depends on, with the
    ``parsl.task``, ``parsl.app_name`` and ``parsl.dependency_task`` fields
    that tools reading Parsl's log filter on (no argument values)."""
    tid, name = future.tid, future.app_name
    task_log.info("Task %s submitted for App %s", tid, name,
                  extra={"parsl.task": tid, "parsl.app_name": name})
    for dependency in futures_in(arguments):
        upstream = getattr(dependency, "tid", None)
        if upstream is not None:
            task_log.info("Task %s depends on task %s", tid, upstream,
                          extra={"parsl.task": tid, "parsl.dependency_task": upstream})



def _decorator(kind: str, takes_executors: bool = True):
    def decorator(function: Callable | None = None, data_flow_kernel=None, cache: bool = False,
                  executors="all", ignore_for_cache=None, **options):
        if not takes_executors and executors != "all":
            raise TypeError(f"{kind}_app() got an unexpected keyword argument 'executors'")

        def make(func: Callable) -> ParslApp:
            return ParslApp(func, kind, cache=cache, executors=executors,
                            ignore_for_cache=ignore_for_cache, data_flow_kernel=data_flow_kernel,
                            **options)

        return make(function) if function is not None else make

    decorator.__name__ = decorator.__qualname__ = f"{kind}_app"
    decorator.__doc__ = (f"Parsl's ``@{kind}_app``: a daskflow app (see daskflow's "
                         f"``{kind}_app`` for its options) that needs ``parsl.load`` first.")
    return decorator


python_app = _decorator("python")
bash_app = _decorator("bash")
join_app = _decorator("join", takes_executors=False)

__all__ = ["ParslApp", "bash_app", "join_app", "python_app"]
