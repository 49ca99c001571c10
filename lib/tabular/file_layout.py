"""Where an upload's table was found, for telling the operator after an upload: inside an
archive, on which sheet, below how many title rows, with which rows of the file left out."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import pyarrow as pa

from lib.settings import UploadLimits
from lib.tabular.archives import unpack
from lib.tabular.csv_body import NoteRows
from lib.tabular.csv_text import CsvLayout, as_csv_bytes, csv_layout
from lib.tabular.excel import read_excel
from lib.tabular.header_row import header_names, positional_names, renamed_columns
from lib.tabular.limits import TableError
from lib.tabular.reading import block_size, csv_batches, detect_format, parse_csv


@dataclass(frozen=True)
class FileLayout:
    """How a file's reader found its table, for telling the operator after an upload."""

    title_rows: int = 0
    header_row: bool = True
    header_rows: int = 1
    footer_rows: int = 0
    fixed_width: bool = False  # text cut into columns by position
    note_rows: tuple[str, ...] = ()  # lines of words alone inside the table, left out
    misfit_rows: tuple[tuple[str, str], ...] = ()  # as `ParsedTable`'s
    padded_rows: int = 0
    renamed: tuple[str, ...] = ()  # names given to repeated column names (Date_2)
    unnamed: tuple[int, ...] = ()  # 1-based positions of blank header cells (named column_N)
    sheet: str | None = None
    other_sheets: tuple[str, ...] = ()  # a workbook's sheets with cells that were not read
    sheet_named: bool = False  # the sheet read is the one the operator named
    archive: str | None = None
    member: str | None = None
    other_members: tuple[str, ...] = ()  # the tables of a zip archive beside the one read


def layout_of(file_name: str, data: bytes, sheet: str | None = None) -> FileLayout:
    """Where the table of a file was found: inside an archive, on which sheet (`sheet`: the
    one the operator named), below how many title rows, under a header row or not (a default
    layout for files that do not read)."""
    unbounded = UploadLimits(sys.maxsize, sys.maxsize, sys.maxsize, sys.maxsize)
    try:
        unpacked = unpack(file_name, data, unbounded)
        inner = unpacked.file_name if unpacked.archive == "zip" else None
        found = FileLayout(archive=unpacked.archive, member=inner, other_members=unpacked.others)
        kind = detect_format(unpacked.file_name, unpacked.data)
        if kind == "csv":
            text, layout = csv_layout(as_csv_bytes(unpacked.data)[0])
            odd = _odd_rows(text, layout)
            found = replace(
                found,
                title_rows=layout.title_rows,
                header_row=layout.header_row,
                header_rows=layout.header_rows,
                footer_rows=layout.footer_rows,
                fixed_width=layout.fixed_width,
                note_rows=odd.texts if odd else (),
                renamed=tuple(renamed_columns(layout.header)) if layout.header_row else (),
                unnamed=_unnamed(layout.header) if layout.header_row else (),
            )
            if odd and (odd.short_rows or odd.too_many_short):
                # Which short rows fit their columns takes the columns' types: read it all.
                parsed = parse_csv(unpacked.data, unbounded)
                found = replace(
                    found,
                    note_rows=parsed.note_rows,
                    misfit_rows=parsed.misfit_rows,
                    padded_rows=parsed.padded_rows,
                )
            return found
        if kind == "excel":
            book = read_excel(unpacked.data, unbounded, sheet)
            return replace(
                found,
                title_rows=book.title_rows,
                sheet=book.name,
                sheet_named=bool(sheet),
                other_sheets=book.others,
                header_rows=book.header_rows,
                footer_rows=book.footer_rows,
                renamed=book.renamed,
            )
        return found
    except TableError:
        return FileLayout()


def _unnamed(header: list[str]) -> tuple[int, ...]:
    """Where a header row has a blank cell (a delimiter at the end of every line, a saved
    index): the reader names it column_N, or leaves it out when it holds no value."""
    return tuple(i + 1 for i, name in enumerate(header) if not str(name).strip())


def _odd_rows(data: bytes, layout: CsvLayout) -> NoteRows | None:
    """The notes and short rows the fast reader meets, found by reading the first column;
    None when the forgiving reader reads the file (a row too long for the header)."""
    names = (
        header_names(layout.header) if layout.header_row else positional_names(len(layout.header))
    )
    end = len(data) - layout.footer_bytes
    buffer = pa.py_buffer(data).slice(layout.body_offset, end - layout.body_offset)
    notes = NoteRows()
    batches = csv_batches(
        buffer,
        names,
        layout.delimiter,
        layout.encoding,
        block_size(layout.header_bytes),
        names[:1],
        layout.header_row,
        notes,
    )
    try:
        for _ in batches:
            pass
    except pa.ArrowInvalid:
        return None if not notes.too_many_short else notes
    return notes
