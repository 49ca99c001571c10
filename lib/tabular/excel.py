"""Spreadsheets (.xlsx, .xlsm, .xlsb, .xls, .ods): the first sheet as an Arrow table, within limits.

Read with calamine (a Rust reader; about 10x openpyxl's read-only mode on a 50,000-row sheet).
Cells keep the types the spreadsheet gave them where a column is all of one kind (numbers,
booleans, dates); a column holding text (or a mix) is handed on as text, which the caller
types as it types CSV text (missing-value tokens, numbers written for people, date forms). A
zip-based workbook's declared sizes are checked before anything is inflated, and the sheet's
dimensions before its cells are converted.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import pyarrow as pa

from lib.settings import UploadLimits
from lib.tabular.csv_text import TITLE_MAX_ROWS, footer_rows, title_rows
from lib.tabular.header_row import (
    check_header,
    header_names,
    merge_header_rows,
    renamed_columns,
    second_header_row,
)
from lib.tabular.limits import TableError, check_columns, check_decoded_size, check_rows

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the binary .xls format
# A password-protected .xlsx is an OLE file holding this stream (its name in UTF-16).
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
# A zip is a workbook when it holds one of these parts (.xlsx/.xlsm, .xlsb, .ods).
WORKBOOK_PARTS = ("xl/workbook.xml", "xl/workbook.bin", "content.xml")
# Bytes a non-text cell is counted as against the decoded-size limit.
CELL_BYTES = 8
# Rows between checks of the decoded size while reading.
CHECK_EVERY = 10_000
# Rows below a possible title block that decide the sheet's usual number of filled cells.
SNIFF_ROWS = 50
# Rows at the end of a sheet looked at for notes and a totals row below the table.
FOOTER_MAX_ROWS = 50
# Whole numbers up to this size are integers (spreadsheets store every number as a double).
MAX_EXACT_INT = 2**53


@dataclass(frozen=True)
class Sheet:
    """The table of a workbook, and where in the workbook it was found."""

    table: pa.Table
    title_rows: int = 0
    name: str | None = None  # set when it is not the first sheet
    header_rows: int = 1  # 2 when the column names span two rows
    renamed: tuple[str, ...] = ()  # names given to repeated column names (Date_2)
    footer_rows: int = 0  # rows below the table (notes, a totals row) left out
    others: tuple[str, ...] = ()  # the workbook's other sheets with cells, not read


def read_excel(data: bytes, limits: UploadLimits, sheet_name: str | None = None) -> Sheet:
    """The worksheet holding the table (`_table_sheet`): its first row names the columns
    (below a title block, if it has one; two rows when the second names them again), the
    rows below are the data, down to any notes or totals row below them."""
    from python_calamine import CalamineWorkbook  # noqa: PLC0415 - only spreadsheets need it

    if data[:4] == ZIP_MAGIC:
        _check_zip(data, limits)
    elif data[:4] != OLE_MAGIC:
        raise TableError("The file is not a spreadsheet: upload a CSV, Parquet or .xlsx file.")
    elif ENCRYPTED_PACKAGE in data:
        raise TableError(
            "The workbook is password-protected: save a copy without a password (or export "
            "the sheet as CSV) and upload that. Nothing was stored."
        )
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        index, sheet, others = _named_sheet(book, sheet_name) if sheet_name else _table_sheet(book)
        rows = iter(sheet.iter_rows())
        head = list(itertools.islice(rows, TITLE_MAX_ROWS + SNIFF_ROWS))
    except TableError:
        raise
    except Exception as exc:  # noqa: BLE001 - the reader's errors are many and all mean "unreadable"
        raise TableError(f"The file is not a readable spreadsheet ({exc}).") from exc
    check_rows(max(0, sheet.total_height - 1), limits)
    check_columns(sheet.total_width, limits)
    counts = [sum(1 for v in row if v != "") for row in head]
    widths = [c for c in counts if c]
    # The table's width is its fullest row (the header): a sparse table's commonest row is
    # narrower, and would make a one-cell title a row of the table.
    titles = title_rows(head, max(widths)) if widths else 0
    header_rows = 1
    below = [[_text(v) for v in row] for row in head[titles:]]
    if len(below) > 2 and second_header_row(below[0], below[1], below[2:], ","):
        head[titles + 1] = merge_header_rows(below[0], below[1])
        titles, header_rows = titles + 1, 2
    data_rows = itertools.chain(head[titles + 1 :], rows)
    first = sheet.start[0] + titles + 1  # the sheet row of the first data row
    data_rows = _merged_down(data_rows, _vertical_merges(sheet, first), first, sheet.start[1])
    table, renamed, footer = _sheet_table(
        itertools.chain(head[titles : titles + 1], data_rows), limits
    )
    return Sheet(
        table,
        titles - header_rows + 1,
        sheet.name if index else None,
        header_rows,
        tuple(renamed),
        footer,
        others,
    )


def _vertical_merges(sheet: Any, first: int) -> dict[int, list[tuple[int, int]]]:
    """Cells merged down one column below the header: top row -> [(column, last row)]."""
    try:
        ranges = sheet.merged_cell_ranges or []
    except Exception:  # noqa: BLE001 - a format without merges (.xls from some writers)
        return {}
    tops: dict[int, list[tuple[int, int]]] = {}
    for (top, column), (last, right) in ranges:
        if last > top and right == column and top >= first:
            tops.setdefault(top, []).append((column, last))
    return tops


def _merged_down(
    rows: Iterator[list[Any]], tops: dict[int, list[tuple[int, int]]], first: int, left: int
) -> Iterator[list[Any]]:
    """Rows with a cell merged down a column (a report's `North` over its three months) read
    as the sheet shows it: its value on every row it spans, not on the first alone."""
    if not tops:
        yield from rows
        return
    carried: dict[int, tuple[Any, int]] = {}  # column index -> (value, last row)
    for number, row in enumerate(rows, start=first):
        for column, last in tops.get(number, ()):
            if 0 <= column - left < len(row):
                carried[column - left] = (row[column - left], last)
        for j, (value, last) in list(carried.items()):
            if number > last:
                del carried[j]
            elif j < len(row) and row[j] == "":
                row = [*row[:j], value, *row[j + 1 :]]
        yield row


def _table_sheet(book: Any) -> tuple[int, Any, tuple[str, ...]]:
    """The sheet to read (index, loaded sheet) and the names of the other sheets with cells.

    Of the visible worksheets, the biggest that holds a table (a row of two or more names
    above a row of two or more values), else the first with cells: a cover page, a contents
    list or a hidden lookup sheet is passed over; a data dictionary is smaller than the data.
    """
    sheets = book.sheets_metadata
    visible = [
        i
        for i, meta in enumerate(sheets)
        if str(meta.visible).endswith("Visible") and str(meta.typ).endswith("WorkSheet")
    ] or list(range(len(sheets)))
    best, best_key, best_sheet, filled = None, None, None, []
    for index in visible:
        sheet = book.get_sheet_by_index(index)
        head = list(itertools.islice(iter(sheet.iter_rows()), TITLE_MAX_ROWS + SNIFF_ROWS))
        if not any(v != "" for row in head for v in row):
            continue
        filled.append(index)
        key = (_holds_table(head), sheet.height * sheet.width)
        if best_key is None or key > best_key:
            best, best_key, best_sheet = index, key, sheet  # kept: loading parses the sheet
    if best is None:
        first = visible[0] if visible else 0
        return first, book.get_sheet_by_index(first), ()
    return best, best_sheet, tuple(str(sheets[i].name) for i in filled if i != best)


def _named_sheet(book: Any, name: str) -> tuple[int, Any, tuple[str, ...]]:
    """The sheet the operator named (index, loaded sheet) (spaces and case aside), and the other sheets
    with cells; refuses a name the workbook does not have, listing the ones it has."""
    names = [str(meta.name) for meta in book.sheets_metadata]
    wanted = name.strip().casefold()
    index = next((i for i, n in enumerate(names) if n.strip().casefold() == wanted), None)
    if index is None:
        shown = ", ".join(names[:20])
        raise TableError(f"The workbook has no sheet named {name!r}: its sheets are {shown}.")
    others = []
    for i, other in enumerate(names):
        if i != index:
            head = itertools.islice(iter(book.get_sheet_by_index(i).iter_rows()), SNIFF_ROWS)
            if any(v != "" for row in head for v in row):
                others.append(other)
    return index, book.get_sheet_by_index(index), tuple(others)


def _holds_table(head: list[list[Any]]) -> bool:
    counts = [sum(1 for v in row if v != "") for row in head]
    names = next((i for i, c in enumerate(counts) if c >= 2), None)
    return names is not None and any(c >= 2 for c in counts[names + 1 :])


def _check_zip(data: bytes, limits: UploadLimits) -> None:
    """Refuse a workbook whose parts would inflate past the decoded-size limit."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
            if not any(part in archive.namelist() for part in WORKBOOK_PARTS):
                raise TableError(
                    "The file is a zip archive but not a spreadsheet: upload the CSV, "
                    "Parquet or .xlsx file itself."
                )
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as exc:
        raise TableError(f"The file is not a readable spreadsheet ({exc}).") from exc
    check_decoded_size(inflated, limits)


def _sheet_table(rows: Any, limits: UploadLimits) -> tuple[pa.Table, list[str], int]:
    """The table below the header row, its renamed columns, and how many rows at its end
    were notes or totals (left out)."""
    header = next(rows, None)
    header = None if header is None else [None if v == "" else v for v in header]
    if header is None or all(v is None for v in header):
        raise TableError("The first row of the sheet is empty: it must name the columns.")
    names = _trimmed([_text(v) if v is not None else "" for v in header])
    repeated = list(names)  # a row like this further down is the header again, not data
    columns: list[list[Any]] = [[] for _ in names]
    count = decoded = 0
    last: deque[list[Any]] = deque(maxlen=FOOTER_MAX_ROWS)
    for row in rows:
        values = _trimmed([None if v == "" else v for v in row])
        if (
            values
            and values[0] == header[0]
            and [_text(v) if v is not None else "" for v in values] == repeated
        ):
            continue  # tables stacked on one sheet under the same header
        last.append(values)
        if not values:
            continue  # formatted but empty rows
        if len(values) > len(names):  # cells right of the header: columns without a name
            names += [""] * (len(values) - len(names))
            columns += [[None] * count for _ in range(len(values) - len(columns))]
        for i, column in enumerate(columns):
            value = values[i] if i < len(values) else None
            column.append(value)
            decoded += len(value) if isinstance(value, str) else CELL_BYTES
        count += 1
        check_rows(count, limits, at_least=True)
        if count % CHECK_EVERY == 0:
            check_decoded_size(decoded, limits, at_least=True)
    check_decoded_size(decoded, limits)
    footer = footer_rows(list(last), len(names))
    dropped = sum(1 for values in list(last)[len(last) - footer :] if values) if footer else 0
    if dropped:
        count -= dropped
        columns = [column[:count] for column in columns]
    if count == 0:
        raise TableError("The sheet has a header row but no data rows.")
    # Columns with neither a name nor a value (between the table and a note beside it).
    kept = [
        i
        for i, (name, column) in enumerate(zip(names, columns, strict=True))
        if str(name).strip() or any(v is not None for v in column)
    ]
    if len(kept) < len(names):
        names, columns = [names[i] for i in kept], [columns[i] for i in kept]
    names = [str(n) for n in names]
    check_header(names)
    check_columns(len(names), limits)
    renamed = renamed_columns(names)
    names = header_names(names)
    table = pa.table([_column(values) for values in columns], names=names)
    return table, renamed, dropped


def _trimmed(values: list[Any]) -> list[Any]:
    """Without the empty cells at the end of a row."""
    end = len(values)
    while end and values[end - 1] is None:
        end -= 1
    return values[:end]


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _column(values: list[Any]) -> pa.Array:
    """One column: typed when every cell is of one kind, else its cells as text."""
    kinds = {_kind(v) for v in values if v is not None}
    if kinds == {"bool"}:
        return pa.array(values, pa.bool_())
    if kinds == {"int"}:
        return pa.array([None if v is None else int(v) for v in values], pa.int64())
    if kinds <= {"int", "float"} and kinds:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if kinds == {"datetime"}:
        stamps = [None if v is None else _as_datetime(v) for v in values]
        return pa.array(stamps, pa.timestamp("us"))
    if not kinds:
        return pa.nulls(len(values), pa.float64())
    return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "int" if value.is_integer() and abs(value) < MAX_EXACT_INT else "float"
    if isinstance(value, datetime | date) and not isinstance(value, time):
        return "datetime"
    return "text"


def _as_datetime(value: date) -> datetime:
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
