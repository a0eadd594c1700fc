"""``parsl.data_provider.data_manager``: Parsl's default staging providers,
and what an executor's ``storage_access=`` list means to daskflow.

daskflow stages every scheme it has a mover for, on every pool; a list of
Parsl's own providers therefore loads unchanged, and only Globus' endpoint
(``GlobusStaging``) carries settings. A provider daskflow cannot stand in
for (a script's own Staging subclass, or anything else) is refused when the
configuration is loaded, naming it, rather than ignored.
"""

from __future__ import annotations

from ..errors import ConfigurationError
from .file_noop import NoOpFileStaging
from .ftp import FTPInTaskStaging, FTPSeparateTaskStaging
from .globus import GlobusStaging
from .http import HTTPInTaskStaging, HTTPSeparateTaskStaging
from .staging import Staging
from .zip import ZipFileStaging

__all__ = ["default_staging", "storage_settings"]

#: the providers an executor without ``storage_access`` uses, as in Parsl
default_staging: list[Staging] = [NoOpFileStaging(), FTPSeparateTaskStaging(),
                                  HTTPSeparateTaskStaging(), ZipFileStaging()]

#: Parsl's providers whose work daskflow's movers do
KNOWN = (NoOpFileStaging, FTPInTaskStaging, FTPSeparateTaskStaging, HTTPInTaskStaging,
         HTTPSeparateTaskStaging, ZipFileStaging, GlobusStaging)


def storage_settings(executors) -> dict:
    """The dask config the executors' ``storage_access`` lists stand for.

    Raises
    ------
    ConfigurationError
        A provider that is not one of Parsl's own (named with its executor),
        or two GlobusStaging providers with different endpoints.
    """
    settings: dict = {}
    for executor in executors:
        providers = getattr(executor, "storage_access", None)
        if providers is None:
            continue
        owner = f"{type(executor).__name__}(label={executor.label!r})"
        if not isinstance(providers, (list, tuple)):
            raise ConfigurationError(f"{owner}: storage_access must be a list of staging "
                                     f"providers, got {type(providers).__name__}")
        for provider in providers:
            if type(provider) not in KNOWN:
                raise ConfigurationError(_refusal(owner, provider))
            if isinstance(provider, GlobusStaging):
                for key, value in provider.settings().items():
                    if settings.setdefault(key, value) != value:
                        raise ConfigurationError(
                            f"{owner}: storage_access has a GlobusStaging whose {key} "
                            f"{value!r} differs from another's {settings[key]!r}; daskflow "
                            "has one Globus endpoint per worker node")
    return settings


def _refusal(owner: str, provider) -> str:
    kind = type(provider)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if not isinstance(provider, Staging):
        return f"{owner}: storage_access entry {name} is not a staging provider"
    if getattr(provider, "refusal", None):  # one of Parsl's that daskflow does not run
        return f"{owner}: storage_access provider {kind.__name__} cannot run on daskflow: " \
               f"{provider.refusal}"
    return (f"{owner}: storage_access provider {name} cannot run on daskflow: daskflow "
            "stages Files in the task body through a mover per URL scheme, not through "
            "Parsl's Staging hooks (stage_in/stage_out/replace_task) and DataFlowKernel. "
            "Use Parsl's own providers (NoOpFileStaging, HTTP*, FTP*, ZipFileStaging, "
            "GlobusStaging) or register a daskflow mover for the scheme (the "
            "'daskflow.staging' entry-point group, docs/staging.md)")
