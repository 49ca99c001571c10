"""Small helpers shared by pages: the cached workspace and display formatting."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from lib.backend import open_workspace
from lib.settings import load_settings
from lib.workspace import Workspace


@st.cache_resource(show_spinner=False)
def _open_workspace(home: str, backend: str) -> Workspace:
    return open_workspace(load_settings())


def workspace() -> Workspace:
    """The workspace for the current settings (one per home folder and backend)."""
    settings = load_settings()
    return _open_workspace(str(settings.home), settings.backend)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def ago(when: datetime | None) -> str:
    """'3 min ago' style relative time."""
    if when is None:
        return ""
    seconds = (datetime.now(UTC) - when).total_seconds()
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"
