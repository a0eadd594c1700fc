"""Containers for bash apps: a pool (``container:`` in the site profile) or an
app (``@bash_app(container={...})``) names a runtime and an image, and the
app's command runs inside it, in the task's working directory.

The MPI launcher, if any, stays outside: every rank starts its own container,
as sites recommend for Apptainer with the host's MPI. The command's streams
are redirected outside (the runtime passes the container's on), and its
exit code is the container's.
"""

from __future__ import annotations

import os
import secrets
import shlex
from typing import Iterable

from ..shipped import CONTAINER_RUNTIMES, Container


def as_container(app_name: str, value) -> Container | None:
    """An app's ``container=`` option: a dict ``{runtime, image, options,
    runtime_options}`` (the last two optional lists of strings)."""
    if value is None:
        return value
    if isinstance(value, Container):
        return value
    if not isinstance(value, dict) or set(value) - {"runtime", "image", "options",
                                                    "runtime_options"}:
        raise TypeError(f"app '{app_name}': container must be a dict with keys runtime, "
                        f"image and optionally options and runtime_options, got {value!r}")
    runtime, image = value.get("runtime"), value.get("image")
    if runtime not in CONTAINER_RUNTIMES:
        raise ValueError(f"app '{app_name}': container runtime must be one of "
                         f"{', '.join(CONTAINER_RUNTIMES)}, got {runtime!r}")
    options = value.get("options") or []
    runtime_options = value.get("runtime_options") or []
    if not isinstance(image, str) or not image or not all(
            isinstance(o, list) and all(isinstance(x, str) for x in o)
            for o in (options, runtime_options)):
        raise TypeError(f"app '{app_name}': container image must be a non-empty string, and "
                        f"options and runtime_options lists of strings, got {value!r}")
    return Container(runtime, image, tuple(options), tuple(runtime_options))


def in_container(command: str, container: Container,
                 mounts: Iterable[str] = ()) -> tuple[str, list[str] | None]:
    """The shell command that runs ``command`` under bash inside
    ``container``, with the task's working directory and the directories
    ``mounts`` (those of the call's local Files) at the same paths; and the
    command that removes the container if the call is killed (None: killing
    the process group is enough).

    podman and docker run a container apart from the process that asked for
    it: killing that process (a walltime) would leave the container running.
    So it gets a name of its own, and the returned command removes it.
    """
    options = " ".join(shlex.quote(o) for o in container.options)
    image, inner = shlex.quote(container.image), shlex.quote(command)
    runtime = " ".join(shlex.quote(o) for o in (container.runtime, *container.runtime_options))
    extra = sorted({os.path.abspath(m) for m in mounts})
    if container.runtime in ("apptainer", "singularity"):
        binds = " ".join(f"--bind {shlex.quote(m)}" for m in extra)
        head = f'{runtime} exec --bind "$PWD" {binds} --pwd "$PWD"'.replace("  ", " ")
        cleanup = None
    else:  # podman, docker: the app's variables and working directory go in explicitly
        name = f"daskflow-{secrets.token_hex(8)}"
        volumes = " ".join(f"-v {shlex.quote(m)}:{shlex.quote(m)}" for m in extra)
        head = (f'{runtime} run --rm --name {name} --network=host -v "$PWD:$PWD" '
                f'{volumes} -w "$PWD" -e DASKFLOW_APP -e DASKFLOW_TID -e DASKFLOW_MPI_PREFIX'
                ).replace("  ", " ")
        cleanup = [container.runtime, *container.runtime_options, "rm", "-f", name]
        if container.runtime == "podman":
            cleanup[-1:-1] = ["-t", "0"]  # at once (docker's rm -f does not wait)
    return " ".join(p for p in (head, options, image, "bash -c", inner) if p), cleanup
