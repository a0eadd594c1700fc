"""Provider ``kubernetes``: each block is one pod (see ``sites.kubernetes``)."""

from __future__ import annotations

from typing import Optional

from pydantic.dataclasses import dataclass

from ..kubernetes import PodBlock
from ..launchers import node_suffixes
from ..profile_schema import _SECTION, Text
from .base import BlockContext, Pool, Provider


@dataclass(frozen=True, config=_SECTION, kw_only=True)
class KubernetesPool(Pool):
    """Provider ``kubernetes``: one pod per block."""

    image: Optional[Text] = "ghcr.io/dask/dask:latest"
    namespace: Optional[Text] = "default"


class KubernetesProvider(Provider):
    """Pods created through the Kubernetes API; MPI slots are nodes."""

    name = "kubernetes"
    parsl = ("KubernetesProvider",)
    options = KubernetesPool
    needs = ("dask_kubernetes", "kubernetes")

    @classmethod
    def block(cls, pool: Pool, index: int, resources: dict, slots: dict,
              context: BlockContext) -> dict:
        block = {"cls": PodBlock, "options": {
            "pool": pool, "resources": {**resources, **slots}, "token": context.token,
            "index": index, "death_timeout": context.death_timeout,
            "security": context.security}}
        suffixes = node_suffixes(pool)
        if suffixes != [""]:  # --nworkers N names them NAME-0, NAME-1, ...
            block["group"] = suffixes
        return {f"{pool.label}-{index}": block}
