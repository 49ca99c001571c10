"""Rows with fewer cells than the header row.

A row whose last cells were left off (an export that stops a line at its last value) is read
with them missing. A row with a cell left out in the middle has the rest of its values one
column left of where they belong: a download's row with no category puts its rating under the
category, its review count under the rating, "3.0M" under the review counts. Read as it is, it
turns those columns into text. Such a row — one whose values do not fit the types the other rows
give their columns — is left out and said.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

import pyarrow as pa

from lib.tabular.columns import ColumnBuilder, date_formats, is_textual


def misfits(
    texts: Sequence[str],
    table: pa.Table,
    delimiter: str,
    tokens: tuple[str, ...],
    decimal_comma: bool = False,
    thousands_dots: bool = False,
) -> dict[str, str]:
    """The short rows (as written) whose values do not fit the columns `table` (read without
    them) typed, each with its first such value (`Reviews "3.0M"`)."""
    rows = [_cells(text, delimiter) for text in texts]
    formats = date_formats(table.schema)
    bad: dict[int, str] = {}
    for j, column in enumerate(table.schema):
        if is_textual(column.type):
            continue
        at = [(i, row[j]) for i, row in enumerate(rows) if j < len(row) and i not in bad]
        if not at or _fit(
            [v for _, v in at], column, formats, tokens, (decimal_comma, thousands_dots)
        ):
            continue
        for i, value in at:  # the rare column some row does not fit: which rows
            if not _fit([value], column, formats, tokens, (decimal_comma, thousands_dots)):
                bad[i] = f'{column.name} "{value.strip()}"'
    return {texts[i]: bad[i] for i in sorted(bad)}


def _cells(text: str, delimiter: str) -> list[str]:
    return next(csv.reader(io.StringIO(text), delimiter=delimiter), [])


def _fit(
    values: list[str],
    column: pa.Field,
    formats: dict[str, str],
    tokens: tuple[str, ...],
    marks: tuple[bool, bool],
) -> bool:
    """True when `values` read as the column's type, as the reader types a column."""
    builder = ColumnBuilder(column.name, tokens, *marks)
    builder.add(pa.array(values, pa.string()))
    if builder.kind == "unknown":
        return True  # missing-value tokens or empty cells only
    if builder.needs_reread:
        return False
    kind, kind_of = column.type, builder.kind
    if pa.types.is_integer(kind):
        return kind_of == "int"
    if pa.types.is_floating(kind):
        return kind_of in ("int", "float", "formatted")
    if pa.types.is_boolean(kind):
        return kind_of == "bool"
    if pa.types.is_timestamp(kind):
        written = formats.get(column.name)
        fits = builder.datetime_fits if kind_of == "datetime" else []
        if written:
            return written in fits
        return any(isinstance(f, pa.DataType) for f in fits)
    return True


def without_lines(
    data: bytes, begin: int, end: int, texts: Sequence[str], encoding: str
) -> tuple[bytes, int]:
    """`data` without the lines between `begin` and `end` that are one of `texts` exactly,
    and where the table ends in what is left."""
    if not texts:
        return data, end
    written = sorted({t.encode(encoding, "replace") for t in texts}, key=len, reverse=True)
    line = re.compile(rb"(?<=\n)(?:" + b"|".join(map(re.escape, written)) + rb")\r?(?:\n|\Z)")
    kept = line.sub(b"", b"\n" + bytes(data[begin:end]))[1:]
    return bytes(data[:begin]) + kept + bytes(data[end:]), begin + len(kept)
