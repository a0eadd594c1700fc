"""Providers as a family, as dask-jobqueue's job classes: one small class
per provider (see ``base``), looked up by name (``PROVIDERS``) or by the
Parsl provider it stands for (``provider_for_parsl``). Adding a provider is
one subclass of ``Provider`` with a ``name``, defined anywhere."""

from .base import POOL_TYPES, PROVIDERS, BlockContext, Pool, Provider, provider_for_parsl
# the members, in the order profiles list them
from .local import LocalProvider
from .batch import (BatchProvider, HTCondorPool, HTCondorProvider, LSFProvider, OARProvider,
                    PBSProvider, SGEProvider, SlurmProvider)
from .kubernetes import KubernetesPool, KubernetesProvider
from .ssh import SSHProvider, SshPool

__all__ = ["POOL_TYPES", "PROVIDERS", "BatchProvider", "BlockContext", "HTCondorPool",
           "HTCondorProvider", "KubernetesPool", "KubernetesProvider", "LSFProvider",
           "LocalProvider", "OARProvider", "PBSProvider", "Pool", "Provider", "SGEProvider",
           "SSHProvider", "SlurmProvider", "SshPool", "provider_for_parsl"]
