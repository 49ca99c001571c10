"""What the dataset upload form needs besides widgets: names, token lists, duplicate files."""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pandas as pd

from lib.names import name_part
from lib.tabular import MISSING_TOKENS, layout_of
from lib.tabular.csv_body import SHORT_ROWS_MAX
from lib.tabular.disguised import disguised_missing, disguised_note, disguised_tokens
from lib.tabular.number_words import numbers_spoiled_by_words, spoiled_note


class _Versioned(Protocol):
    version: int
    sha256: str


def default_dataset_name(file_name: str) -> str:
    """A dataset name from an uploaded file's name (`Titanic 3.csv` -> `Titanic-3`,
    `adult.data.gz` -> `adult`)."""
    name = re.sub(r"\.(gz|gzip|zip)$", "", file_name, flags=re.IGNORECASE)
    stem = name_part(Path(name).stem).strip("-._")
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


def reread_suggestions(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """What a registered table suggests reading as missing: (notes, tokens to add).

    Number columns kept text by a few words (`refused`), and values set apart at a number
    column's end (Pima's zeros, a station's -999) as `column=value` tokens for those columns.
    """
    notes, add = [], []
    for column, words in numbers_spoiled_by_words(frame).items():
        notes.append(spoiled_note(column, words))
        add += [w for w in words if w not in add]
    disguised = disguised_missing(frame)
    if disguised:
        notes.append(disguised_note(disguised, len(frame)))
        add += disguised_tokens(disguised)
    return notes, add


def with_tokens(text: str, words: Iterable[str]) -> str:
    """The form's token text with `words` added (those it already has, in any case, once)."""
    have = {t.strip().lower() for t in text.split(",")}
    extra = []
    for word in words:
        if word.strip().lower() not in have:
            have.add(word.strip().lower())
            extra.append(word.strip())
    return ", ".join([text.strip().rstrip(","), *extra]) if text.strip() else ", ".join(extra)


def recognised_summary(profile_rows: Sequence[Mapping[str, object]], limit: int = 12) -> str:
    """`**age**: "?" (263) · **fare**: "?" (1)` for the columns where cells were read as missing."""
    parts = [
        f"**{row['column']}**: {row['missing_tokens']}"
        for row in profile_rows
        if row.get("missing_tokens")
    ]
    more = f" · and {len(parts) - limit} more columns" if len(parts) > limit else ""
    return " · ".join(parts[:limit]) + more


def _unnamed_notes(positions: tuple[int, ...], columns: set[str]) -> list[str]:
    """Blank header cells: named after their position when their column holds values, else
    left out (a delimiter ending every line)."""
    named = [f"column_{p}" for p in positions if f"column_{p}" in columns]
    dropped = [p for p in positions if f"column_{p}" not in columns]
    notes = []
    if named:
        shown = ", ".join(f"**{n}**" for n in named[:10])
        more = f" and {len(named) - 10} more" if len(named) > 10 else ""
        notes.append(
            f"The header row leaves {len(named)} column{'s' if len(named) > 1 else ''} with "
            f"values unnamed: named {shown}{more} after {'their' if len(named) > 1 else 'its'} "
            "position."
        )
    if dropped:
        what = f"{len(dropped)} columns" if len(dropped) > 1 else "A column"
        notes.append(
            f"{what} with neither a name nor a value (a delimiter at the end of every line): "
            "left out."
        )
    return notes


def layout_notes(
    file_name: str, data: bytes, sheet: str | None = None, columns: list[str] | None = None
) -> list[str]:
    """What to tell the operator about where the table of an uploaded file was found;
    ``columns``: the registered version's column names (to say what became of unnamed ones)."""
    layout = layout_of(file_name, data, sheet)
    notes = []
    if layout.archive in ("gzip", "bzip2", "xz"):
        notes.append(f"The file is {layout.archive}-compressed: read the table inside it.")
    if layout.member and layout.other_members:
        shown = ", ".join(f"**{name}**" for name in layout.other_members[:5])
        more = f" and {len(layout.other_members) - 5} more" if len(layout.other_members) > 5 else ""
        notes.append(
            f"Read **{layout.member}**, the training table of the zip archive; not read: "
            f"{shown}{more}. To register one of them, upload it on its own."
        )
    elif layout.member:
        notes.append(f"Read **{layout.member}**, the one table in the zip archive.")
    if layout.sheet and not layout.sheet_named:
        notes.append(
            f"Read the sheet **{layout.sheet}**: of the workbook's sheets, it holds the "
            "biggest table."
        )
    if layout.other_sheets:
        shown = ", ".join(f"**{name}**" for name in layout.other_sheets[:10])
        more = f" and {len(layout.other_sheets) - 10} more" if len(layout.other_sheets) > 10 else ""
        notes.append(
            f"Not read: the sheets {shown}{more}. To use one, name it under **Sheet** and "
            "upload the workbook again."
        )
    if layout.fixed_width:
        notes.append(
            "The file is fixed-width text (no delimiter between values): its columns were cut "
            "where every line is blank."
        )
    if layout.title_rows and layout.header_row:
        titles = layout.title_rows
        rows = f"{titles} rows were" if titles > 1 else "row was"
        notes.append(
            f"The first {rows} a title or blank, above the header row: left out, and the "
            f"column names read from row {titles + 1}."
        )
    elif layout.title_rows:
        titles = layout.title_rows
        rows = f"{titles} rows were" if titles > 1 else "row was"
        notes.append(f"The first {rows} a title or blank, above the table: left out.")
    if layout.header_rows == 2:
        notes.append(
            "The column names span two rows (the second names the columns again, or gives "
            "their units): read as one name per column."
        )
    if layout.footer_rows:
        footer = layout.footer_rows
        rows = f"last {footer} rows below the table hold" if footer > 1 else "last row holds"
        notes.append(f"The {rows} notes or totals, not data: left out.")
    if layout.note_rows:
        count = len(layout.note_rows)
        lines = f"{count} lines" if count > 1 else "A line"
        hold = "hold" if count > 1 else "holds"
        notes.append(
            f"{lines} inside the table {hold} only words, not values "
            f"(“{textwrap.shorten(layout.note_rows[0], 80, placeholder=' …')}”): left out."
        )
    if layout.misfit_rows:
        count = len(layout.misfit_rows)
        row, value = layout.misfit_rows[0]
        lines = f"{count} lines have" if count > 1 else "A line has"
        notes.append(
            f"{lines} fewer cells than the header row and values that do not fit their columns "
            f"(“{textwrap.shorten(row, 80, placeholder=' …')}”: {value}): a cell left out in "
            "the middle of a line moves the rest of it one column left. Left out; fix the line "
            "and upload again to keep it."
        )
    if layout.padded_rows:
        count = (
            f"More than {SHORT_ROWS_MAX:,} lines have"
            if layout.padded_rows > SHORT_ROWS_MAX
            else (f"{layout.padded_rows} lines have" if layout.padded_rows > 1 else "A line has")
        )
        notes.append(f"{count} fewer cells than the header row: their last cells are missing.")
    if layout.renamed:
        shown = ", ".join(f"**{name}**" for name in layout.renamed[:10])
        more = f" and {len(layout.renamed) - 10} more" if len(layout.renamed) > 10 else ""
        notes.append(f"Column names repeat: the repeats are named {shown}{more}.")
    if layout.unnamed and columns is not None:
        notes += _unnamed_notes(layout.unnamed, set(columns))
    if not layout.header_row:
        first = "The first row of the table" if layout.title_rows else "The first row"
        notes.append(
            f"{first} holds values, not column names: it is read as data, and the "
            "columns are named column_1, column_2, ... by position."
        )
    if notes:
        notes.append("The file itself is kept as uploaded.")
    return notes
