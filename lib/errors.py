"""The one user-facing error type of the seam (re-exported by `lib.workspace`)."""

from __future__ import annotations


class WorkspaceError(Exception):
    """A user-facing error: the message is shown as is."""
