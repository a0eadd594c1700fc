"""Licence limits: a site declares how many copies of a licensed code may run
at once (``limits: {matlab: 10}`` in the profile, or ``daskflow.limits`` in
the config); an app says what one call uses (``@bash_app(limits={"matlab":
1})``).

Each limit is a Dask ``Semaphore`` on the scheduler, so the count holds
across pools and across every client attached to the scheduler, and a
lease held by a worker that dies is given back after Dask's lease timeout.
A call takes its leases in the task body before it runs, in name order (two
calls never wait on each other's half), several leases of one name under a
lock (two calls never hold half of what each needs).
"""

from __future__ import annotations

from contextlib import contextmanager

from ..errors import UnknownLimit

PREFIX = "daskflow-limit-"


def check_limits(app_name: str, wanted) -> dict[str, int]:
    """An app's ``limits=`` option, checked: licence name -> count >= 1."""
    if wanted is None:
        return {}
    if not isinstance(wanted, dict) or not all(
            isinstance(k, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 1
            for k, n in wanted.items()):
        raise TypeError(f"app '{app_name}': limits must map licence names to counts >= 1, "
                        f"got {wanted!r}")
    return dict(wanted)


def resolve(app_name: str, wanted: dict[str, int],
            declared: dict[str, int]) -> tuple[tuple[str, int, int], ...]:
    """``(name, count, total)`` per limit, in name order; a limit nobody
    declared, or a count above its total (the call could never run), fails."""
    out = []
    for name in sorted(wanted):
        if name not in declared:
            raise UnknownLimit(app_name, name, list(declared))
        if wanted[name] > declared[name]:
            raise ValueError(f"app '{app_name}' uses {wanted[name]} of limit {name!r}, "
                             f"which allows {declared[name]} at once: it could never run")
        out.append((name, wanted[name], declared[name]))
    return tuple(out)


@contextmanager
def held(limits: tuple[tuple[str, int, int], ...]):
    """Hold the leases of ``limits`` while the body runs (task body only)."""
    if not limits:
        yield
        return
    from distributed import Lock, Semaphore, rejoin, secede

    taken: list = []
    secede()  # waiting for a licence must not hold a worker thread
    try:
        for name, count, total in limits:
            semaphore = Semaphore(max_leases=total, name=PREFIX + name)
            if count == 1:
                semaphore.acquire()
                taken.append(semaphore)
                continue
            with Lock(f"{PREFIX}{name}-several"):
                for _ in range(count):
                    semaphore.acquire()
                    taken.append(semaphore)
    except BaseException:
        _release(taken)
        raise
    finally:
        rejoin()
    try:
        yield
    finally:
        _release(taken)


def _release(taken: list) -> None:
    for semaphore in reversed(taken):
        semaphore.release()
