"""Open the embedded local workspace under the settings' home folder."""

from __future__ import annotations

from lib.local.datasets import LocalDatasets
from lib.local.store import Store
from lib.settings import Settings
from lib.workspace import Workspace


def open_local_workspace(settings: Settings) -> Workspace:
    store = Store(settings.home)
    return Workspace(
        kind="local",
        description=f"Local workspace at {settings.home}",
        reason=settings.backend_reason,
        settings=settings,
        datasets=LocalDatasets(store, max_upload_bytes=settings.max_upload_mb * 1024 * 1024),
        extras={"store": store},
    )
