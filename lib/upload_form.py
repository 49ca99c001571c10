"""What the dataset upload form needs besides widgets: names, token lists, duplicate files."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from lib.tabular import MISSING_TOKENS, title_rows_of


class _Versioned(Protocol):
    version: int
    sha256: str


def default_dataset_name(file_name: str) -> str:
    """A dataset name from an uploaded file's name (`Titanic 3.csv` -> `Titanic-3`)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(file_name).stem).strip("-._")
    return stem[:100] or "dataset"


def default_token_text() -> str:
    """The non-empty default tokens as the form shows them."""
    return ", ".join(t for t in MISSING_TOKENS if t)


def tokens_from_form(text: str, empty_is_missing: bool = True) -> list[str]:
    """The token list from the form: comma-separated words, plus the empty cell if ticked."""
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    return ([""] if empty_is_missing else []) + tokens


def has_digest(data: bytes, sha256: str) -> bool:
    """Whether `data` is exactly the file whose SHA-256 is `sha256`."""
    return hashlib.sha256(data).hexdigest() == sha256


def identical_version(versions: Iterable[_Versioned], data: bytes) -> _Versioned | None:
    """The newest version whose file has exactly these bytes, if any."""
    digest = hashlib.sha256(data).hexdigest()
    same = [v for v in versions if v.sha256 == digest]
    return max(same, key=lambda v: v.version) if same else None


def recognised_summary(profile_rows: Sequence[Mapping[str, object]], limit: int = 12) -> str:
    """`**age**: "?" (263) · **fare**: "?" (1)` for the columns where cells were read as missing."""
    parts = [
        f"**{row['column']}**: {row['missing_tokens']}"
        for row in profile_rows
        if row.get("missing_tokens")
    ]
    more = f" · and {len(parts) - limit} more columns" if len(parts) > limit else ""
    return " · ".join(parts[:limit]) + more


def title_note(file_name: str, data: bytes) -> str | None:
    """What to tell the operator when a title block above the header row was left out."""
    titles = title_rows_of(file_name, data)
    if not titles:
        return None
    rows = f"{titles} rows were" if titles > 1 else "row was"
    return (
        f"The first {rows} a title or blank, above the header row: left out, and the column "
        f"names read from row {titles + 1}. The file itself is kept as uploaded."
    )
