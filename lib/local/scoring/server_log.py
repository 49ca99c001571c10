"""The server's console log, kept to a bounded size.

The supervisor appends the server's stdout and stderr to `server.log` (opened with O_APPEND).
The server cannot reopen that descriptor, so the log is rotated by copy and truncate: past
`max_bytes`, the file is copied to `server.log.1` (replacing the previous copy) and truncated
in place; later writes of every writer land at the new end of the file.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
from pathlib import Path

DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def stderr_log_path(fd: int = 2) -> Path | None:
    """The regular file behind descriptor `fd`, or None (a terminal, a pipe, no /proc)."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None
    return path if path.is_file() else None


class RotatingStderrHandler(logging.StreamHandler):
    """A stderr handler that rotates the file behind stderr once it passes `max_bytes`."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(sys.stderr)
        self.max_bytes = max_bytes
        self.path = stderr_log_path(sys.stderr.fileno()) if max_bytes > 0 else None
        self.rotations = 0

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if self.path is not None:
            try:
                self._rotate_if_large()
            except OSError:
                self.path = None  # the file went away or cannot be copied: stop trying

    def _rotate_if_large(self) -> None:
        fd = self.stream.fileno()
        if os.fstat(fd).st_size <= self.max_bytes:
            return
        self.flush()
        backup = self.path.with_name(self.path.name + ".1")
        tmp = backup.with_name(backup.name + ".tmp")
        shutil.copyfile(self.path, tmp)
        os.replace(tmp, backup)
        os.ftruncate(fd, 0)
        self.rotations += 1
