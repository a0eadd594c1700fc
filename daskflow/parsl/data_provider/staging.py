"""``parsl.data_provider.staging.Staging``: Parsl's staging provider interface.

In daskflow, Files are staged by movers (``daskflow.staging``), one per URL
scheme, inside the task body on the worker. Parsl's own providers
(``file_noop``, ``http``, ``ftp``, ``zip``, ``globus``) are kept as the
names of the schemes daskflow's movers stage, so ``storage_access=`` lists
of them load unchanged (``data_manager.storage_settings``). A provider class
of a script's own runs Parsl's DataFlowKernel machinery (``dm.dfk``, apps
launched for staging), which daskflow does not have: ``parsl.load`` refuses
it, naming it; a daskflow mover for its scheme takes its place.
"""

from __future__ import annotations

from .files import File

__all__ = ["Staging"]


class Staging:
    """A staging provider: which Files it stages and how.

    ``schemes`` is daskflow's addition: the URL schemes whose daskflow mover
    does this provider's work (empty for a provider of a script's own).
    The hooks keep Parsl's signatures and defaults (stage nothing).
    """

    schemes: tuple[str, ...] = ()

    def can_stage_in(self, file: File) -> bool:
        """Whether this provider stages ``file`` in."""
        return file.scheme in self.schemes

    def can_stage_out(self, file: File) -> bool:
        """Whether this provider stages ``file`` out."""
        return file.scheme in self.schemes

    def stage_in(self, dm, executor: str, file: File, parent_fut):
        """Parsl's hook to launch stage-in work; daskflow's movers do it in the task."""
        return None

    def stage_out(self, dm, executor: str, file: File, app_fu):
        """Parsl's hook to launch stage-out work; daskflow's movers do it in the task."""
        return None

    def replace_task(self, dm, executor: str, file: File, func):
        """Parsl's hook to wrap the app for stage-in; daskflow's task body stages."""
        return None

    def replace_task_stage_out(self, dm, executor: str, file: File, func):
        """Parsl's hook to wrap the app for stage-out; daskflow's task body stages."""
        return None
