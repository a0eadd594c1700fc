"""Containers for bash apps: a pool (``container:`` in the site profile) or an
app (``@bash_app(container={...})``) names a runtime and an image, and the
app's command runs inside it, in the task's working directory.

The MPI launcher, if any, stays outside: every rank starts its own container,
as sites recommend for Apptainer with the host's MPI.
"""

from __future__ import annotations

import shlex

from ..shipped import CONTAINER_RUNTIMES, Container


def as_container(app_name: str, value) -> Container | None:
    """An app's ``container=`` option: a dict ``{runtime, image, options}``."""
    if value is None:
        return value
    if isinstance(value, Container):
        return value
    if not isinstance(value, dict) or set(value) - {"runtime", "image", "options"}:
        raise TypeError(f"app '{app_name}': container must be a dict with keys runtime, "
                        f"image and optionally options, got {value!r}")
    runtime, image = value.get("runtime"), value.get("image")
    if runtime not in CONTAINER_RUNTIMES:
        raise ValueError(f"app '{app_name}': container runtime must be one of "
                         f"{', '.join(CONTAINER_RUNTIMES)}, got {runtime!r}")
    options = value.get("options") or []
    if not isinstance(image, str) or not image or not isinstance(options, list) or not all(
            isinstance(o, str) for o in options):
        raise TypeError(f"app '{app_name}': container image must be a non-empty string and "
                        f"options a list of strings, got {value!r}")
    return Container(runtime, image, tuple(options))


def in_container(command: str, container: Container) -> str:
    """The shell command that runs ``command`` under bash inside ``container``."""
    options = " ".join(shlex.quote(o) for o in container.options)
    image, inner = shlex.quote(container.image), shlex.quote(command)
    if container.runtime in ("apptainer", "singularity"):
        head = f'{container.runtime} exec --bind "$PWD" --pwd "$PWD"'
    else:  # podman, docker: the app's variables and working directory go in explicitly
        head = (f'{container.runtime} run --rm --network=host -v "$PWD:$PWD" -w "$PWD" '
                "-e DASKFLOW_APP -e DASKFLOW_TID -e DASKFLOW_MPI_PREFIX")
    return " ".join(p for p in (head, options, image, "bash -c", inner) if p)
