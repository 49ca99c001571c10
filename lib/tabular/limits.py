"""Refusals: the one error type of table reading and the checks against the upload limits."""

from __future__ import annotations

from lib.settings import UploadLimits


class TableError(ValueError):
    """The uploaded bytes are not a usable table; the message says why."""


def _mb(n: float) -> str:
    mb = 1024 * 1024
    if n < mb:
        return f"{int(n):,} bytes"
    return f"{n // mb:,.0f} MB" if n % mb == 0 else f"{n / mb:,.1f} MB"


def check_file_size(size: int, limits: UploadLimits) -> None:
    """Refuse a file over the upload limit."""
    if size > limits.max_upload_bytes:
        raise TableError(
            f"The file is {_mb(size)}, over the {_mb(limits.max_upload_bytes)} limit "
            "(setting OPSDECK_MAX_UPLOAD_MB)."
        )


def check_columns(columns: int, limits: UploadLimits) -> None:
    """Refuse a table wider than the column limit."""
    if columns > limits.max_columns:
        raise TableError(
            f"The table has {columns:,} columns, over the limit of {limits.max_columns:,} "
            "(setting OPSDECK_MAX_COLUMNS)."
        )


def check_rows(rows: int, limits: UploadLimits, *, at_least: bool = False) -> None:
    """Refuse a table longer than the row limit (`at_least` while still reading)."""
    if rows > limits.max_rows:
        count = f"more than {limits.max_rows:,}" if at_least else f"{rows:,}"
        raise TableError(
            f"The table has {count} rows, over the limit of {limits.max_rows:,} "
            "(setting OPSDECK_MAX_ROWS)."
        )


def check_decoded_size(nbytes: int, limits: UploadLimits, *, at_least: bool = False) -> None:
    """Refuse a table whose decoded size in memory is over the limit."""
    if nbytes > limits.max_uncompressed_bytes:
        size = f"more than {_mb(limits.max_uncompressed_bytes)}" if at_least else _mb(nbytes)
        raise TableError(
            f"The table decodes to {size} in memory, over the limit of "
            f"{_mb(limits.max_uncompressed_bytes)} (setting OPSDECK_MAX_UNCOMPRESSED_MB); "
            "nothing was stored."
        )
