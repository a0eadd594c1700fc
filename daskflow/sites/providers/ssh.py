"""Provider ``ssh`` (Parsl's ad hoc provider): each block is one host of
the pool's ``hosts`` (see ``sites.ssh``)."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Optional

from pydantic.dataclasses import dataclass

from ..profile_schema import _SECTION, Check, Positive, Text, _strings
from ..ssh import pick_host, ssh_block
from .base import RANKS, BlockContext, Pool, Provider


@dataclass(frozen=True, config=_SECTION, kw_only=True)
class SshPool(Pool):
    """Provider ``ssh``: workers started over SSH on a fixed list of hosts."""

    hosts: Annotated[tuple[str, ...], Check(
        "a non-empty list of host names (provider ssh)",
        lambda v: _strings(v) and len(v) > 0, tuple)]
    port: Positive = 22
    username: Optional[Text] = None
    connect_options: Annotated[dict, Check("a mapping of asyncssh connect options",
                                           lambda v: isinstance(v, dict), dict, {})] = field(
        default_factory=dict)
    remote_python: Optional[Text] = None


class SSHProvider(Provider):
    """Workers started over SSH; MPI slots are ranks (none by default)."""

    name = "ssh"
    parsl = ("AdHocProvider",)
    options = SshPool
    mpi_unit = RANKS
    file_tls = True
    needs = ("asyncssh", "ssh")

    @classmethod
    def block(cls, pool: Pool, index: int, resources: dict, slots: dict,
              context: BlockContext) -> dict:
        return ssh_block(pool, index, pick_host(pool, context.worker_spec()), resources, slots,
                         context.death_timeout, context.file_tls.get("security"))
