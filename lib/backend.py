"""The composition root: which backend serves this dashboard process."""

from __future__ import annotations

from lib.settings import Settings, load_settings
from lib.workspace import Workspace


def open_workspace(settings: Settings | None = None) -> Workspace:
    """Azure when a workspace is configured, else the embedded local workspace."""
    settings = settings or load_settings()
    if settings.backend == "azure":
        from lib.azure.workspace import open_azure_workspace

        return open_azure_workspace(settings)
    from lib.local.workspace import open_local_workspace

    return open_local_workspace(settings)
