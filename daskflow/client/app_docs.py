"""The docstrings of the app decorators and ``App``, with the parameter text
they share written once (as dask-jobqueue's ``job_parameters``).

``App`` takes ``SHARED`` through ``@filled`` (see ``daskflow.docstrings``).
The decorators are made by one factory, so their docstrings are composed here
too (``decorator_doc``).
"""

from __future__ import annotations

from .. import docstrings

SHARED = {
    "app_options": """\
retries : int, optional
    How many more tries after a failure; the last try's exception surfaces.
    Default: the site profile's ``retries``, else the ``daskflow.retries``
    config (0).
retry_handler : callable, optional
    ``retry_handler(exception, task_record) -> float``, what a failure costs
    (1 without a handler): tries go on while the costs add up to at most
    ``retries``, so an ``inf`` cost stops them.
walltime : float, optional
    Seconds one try may run before it is stopped with `AppTimeout`; None: no
    limit. A call's own ``walltime=`` wins.
cache : bool or {"content"}, default False
    Reuse the result of an earlier call of the same app source with equal
    arguments, in this run and later ones (the checkpoint store). With
    ``"content"``, Files count by their content rather than their URL.
ignore_for_cache : list of str, optional
    Parameters of the function left out of the cache key (a thread count,
    a log path).
executors : "all" or list of str, default "all"
    Labels of the pools whose workers may run the app (``Client.pools``); a
    label the client lacks fails at call time.
limits : dict of str to int, optional
    Licence limits one call holds while it runs, e.g. ``{"matlab": 1}``.
    Each is declared with its total in the site profile or the
    ``daskflow.limits`` config; the total holds across pools and clients.
batch : bool, default True
    Let bursts of short calls share chunk tasks (transparent batching; off
    everywhere with ``daskflow.batching.enabled``). False: a task per call.
priority : float, default 0
    Dask's task priority of the app's calls: among calls ready to run, the
    higher goes first (a call may give its own, ``priority=``).
""",
    "container": """\
container : dict, optional
    Bash apps only: run the command in ``{"runtime": ..., "image": ...,
    "options": [...]}`` (runtime ``apptainer``, ``singularity``, ``podman`` or
    ``docker``), instead of the pool's ``container:`` if any.
""",
    "decorator_function": """\
function : callable, optional
    The function to make an app of. Omitted when the decorator is called
    with options: ``@python_app(retries=2)``.
""",
    "decorator_tail": """\
data_flow_kernel : None
    Parsl's; refused, since daskflow uses the current Dask client.

Returns
-------
App
    The app, or (without ``function``) a decorator that makes it.

Raises
------
TypeError, ValueError
    An option is invalid (raised where the app is defined; the message
    names the app).

See Also
--------
App.__call__ : what a call does, and Parsl's call keywords.
App.map : many calls in one round trip.
""",
}

filled = docstrings.filled(SHARED)  # class or function decorator


DECORATORS = {
    "python": """\
Make a function a Python app: each call runs it in a Dask task.

A call returns an `AppFuture` at once. Futures among its arguments are
dependencies: the task runs when they are done, on their values, which move
worker to worker.

Parameters
----------
%(decorator_function)s
%(app_options)s
%(decorator_tail)s

Examples
--------
>>> @python_app
... def multiply(a, b):
...     return a * b
>>> multiply(multiply(2, 3), 4).result()  # doctest: +SKIP
24
>>> @python_app(retries=2, walltime=60, cache=True, ignore_for_cache=["seed"])
... def simulate(x, seed=0):
...     ...
""",
    "bash": """\
Make a function a bash app: it returns a command line, run by ``bash -c``.

The function runs on the worker; its command runs there in a new session, in
the worker's working directory, with ``$DASKFLOW_APP`` and ``$DASKFLOW_TID``
set. The future's result is 0; a non-zero exit raises `BashExitFailure`
(naming where stderr went, or its tail), and a walltime kills the command's
whole process group (`AppTimeout`).

Parameters
----------
%(decorator_function)s
%(app_options)s
%(container)s
%(decorator_tail)s

Examples
--------
>>> @bash_app
... def compress(inputs=(), outputs=(), stderr="compress.err"):
...     return f"gzip -c {inputs[0]} > {outputs[0]}"
>>> f = compress(inputs=[File("data.txt")], outputs=[File("data.txt.gz")])  # doctest: +SKIP
>>> f.outputs[0].result()  # doctest: +SKIP
<File data.txt.gz>
""",
    "join": """\
Make a function a join app: it returns futures, and its own future their results.

The function runs in a Dask task on a worker and returns a future or a list
of futures of other app calls; the join's future resolves to their result
(or list of results). The task secedes while it waits, so deep recursion
does not deadlock even with one thread per worker. Calls made inside get
task ids under the join's (``"7.1"``, ``"7.2"``, ...). Returning anything but
futures, or inner futures that fail, raise `JoinError`.

Parameters
----------
%(decorator_function)s
%(app_options)s
%(decorator_tail)s

Examples
--------
>>> @join_app
... def fibonacci(n):
...     if n < 2:
...         return add(n, 0)
...     return add(fibonacci(n - 1), fibonacci(n - 2))
""",
}


def decorator_doc(kind: str) -> str:
    """The docstring of ``@{kind}_app``."""
    return docstrings.fill(DECORATORS[kind], SHARED)
