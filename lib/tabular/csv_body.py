"""What a CSV's bytes hold besides its rows, found before and after they are read: documents
that are no table, the header repeated further down, R's way of writing a missing value,
rows and columns with no value."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from lib.tabular.csv_text import CsvLayout
from lib.tabular.limits import TableError


def without_header_repeats(data: bytes, layout: CsvLayout, end: int) -> tuple[bytes, int]:
    """The bytes without the lines that repeat the header row (files joined with `cat`, a
    report repeating its header on every page), and where the table ends in them."""
    start = layout.body_offset + layout.header_bytes
    line = bytes(data[layout.body_offset : start]).rstrip(b"\r\n")
    if not line.strip():
        return data, end
    repeat = re.compile(rb"\n" + re.escape(line) + rb"\r?(?=\n|\Z)")
    body = memoryview(data)[start - 1 : end]  # from the header's line break
    if not repeat.search(body):
        return data, end
    kept = repeat.sub(b"", body)
    return bytes(data[: start - 1]) + kept + bytes(data[end:]), start - 1 + len(kept)


# A line of words alone inside a table ("Loans that do not meet the credit policy" between the
# two parts of a loan file): two words of letters, as no value of one cell is.
_NOTE_WORDS = re.compile(r"[^\W\d_]{2,}\s+[^\W\d_]{2,}")
NOTE_MIN_COLUMNS = 3
# Past this many distinct short rows the file writes rows short on purpose (trailing empty
# cells left off): the forgiving reader pads them all.
SHORT_ROWS_MAX = 1000


class NoteRows:
    """Arrow's handler for rows with the wrong number of cells: a row of one cell of words in a
    table of three or more columns is a note between parts of the table (skipped, and kept to
    be told); a row with fewer cells than the header is skipped and kept (up to
    ``SHORT_ROWS_MAX`` distinct ones) for `lib.tabular.short_rows` to judge; any other such row
    stops the fast reader, as before."""

    def __init__(self) -> None:
        self._found: dict[object, str] = {}
        self._lines: dict[str, None] = {}  # the note rows as written
        self._short: dict[str, None] = {}
        self.too_many_short = False

    def __call__(self, row: pa._csv.InvalidRow) -> str:
        if row.expected_columns >= NOTE_MIN_COLUMNS and row.actual_columns == 1:
            text = row.text.strip().strip('"').strip()
            if _NOTE_WORDS.search(text):
                # Columns read again in a second pass meet the same rows.
                self._found[row.number if row.number is not None else text] = text
                self._lines[row.text] = None
                return "skip"
        if row.actual_columns < row.expected_columns:
            if row.text in self._short or len(self._short) < SHORT_ROWS_MAX:
                self._short[row.text] = None
                return "skip"
            self.too_many_short = True
        return "error"

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(self._found.values())

    @property
    def lines(self) -> tuple[str, ...]:
        """The note rows as the file writes them (quotes and spaces kept)."""
        return tuple(self._lines)

    @property
    def short_rows(self) -> tuple[str, ...]:
        """The rows with fewer cells than the header, as written (each once)."""
        return tuple(self._short)


# What a download link hands out when it is not the data: a sign-in or error page, a report
# (a web page with a table is read for it, `html_tables`).
DOCUMENTS = (
    (
        re.compile(rb"\s*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.I),
        "a web page "
        "(HTML): a sign-in or error page saved instead of the data? Download the file again",
    ),
    (
        re.compile(rb"\s*<\?xml[\s?]", re.I),
        "XML, not a table: save it as CSV, JSON or a spreadsheet",
    ),
    (
        re.compile(rb"%PDF-"),
        "a PDF document, not a table: export its table as CSV or a spreadsheet",
    ),
    (re.compile(rb"\{\\rtf"), "a rich-text document, not a table: save it as CSV"),
    (
        re.compile(rb"Rar!\x1a\x07|7z\xbc\xaf\x27\x1c"),
        "a RAR or 7-Zip archive: unpack it and upload the table file, or a zip of it",
    ),
    (re.compile(rb"\x89PNG|\xff\xd8\xff|GIF8"), "an image, not a table"),
)


def binary(data: bytes) -> bool:
    """NUL bytes at the start: no text file."""
    return b"\x00" in data[:1024]


def refuse_documents(data: bytes) -> None:
    """Refuse, saying what it is, a file that is no table at all but reads as one column."""
    head = data[:1024].removeprefix(b"\xef\xbb\xbf")
    for pattern, what in DOCUMENTS:
        if pattern.match(head):
            raise TableError(f"The file is {what}. Nothing was stored.")


def written_by_r(body: memoryview, layout: CsvLayout) -> bool:
    """R's `write.csv`: every name and text value in quotes, a missing value a bare `NA` (a
    quoted "NA" is text to R, but the reader keeps no quotes). Told by a header row of quoted
    names alone (spreadsheets and pandas quote only the names that need it) and a bare `NA`
    in the first megabyte."""
    if not layout.header_row:
        return False
    header = bytes(body[: layout.header_bytes]).rstrip(b"\r\n")
    fields = header.split(layout.delimiter.encode())
    if not all(len(f) >= 2 and f[:1] == b'"' and f[-1:] == b'"' for f in fields):
        return False
    mark = re.escape(layout.delimiter.encode())
    bare = rb"(?:^|" + mark + rb")NA(?:" + mark + rb"|\r?$)"
    return bool(re.search(bare, body[: 1 << 20], re.M))


def blank_lines(body: memoryview, delimiter: str) -> int:
    """How many lines hold delimiters and nothing else (`,,,`, `"",""`)."""
    if delimiter.isspace():
        return 0  # a line of spaces is an empty line, which the reader skips
    blank = rb'[ \t"]*(?:' + re.escape(delimiter.encode()) + rb'[ \t"]*)+\r?(?=\n|\Z)'
    first = 1 if re.match(blank, body) else 0
    # Led by a line break, the search skips from one to the next (4x faster than `^` lines).
    return first + sum(1 for _ in re.finditer(rb"\n" + blank, body))


def without_blank_rows(
    table: pa.Table, missing: dict[str, dict[str, int]], blank_lines: int
) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    """The table without the rows of `blank_lines` (`,,,`: what a spreadsheet writes for an
    empty row between blocks of data), when they are all its rows without a value; a row of
    missing-value tokens (`?,?,?`) is a record, kept."""
    if not blank_lines or table.num_columns < 2 or table.num_rows == 0:
        return table, missing
    blank = None
    for column in table.columns:
        if column.null_count == 0:
            return table, missing
        nulls = pc.is_null(column)
        blank = nulls if blank is None else pc.and_(blank, nulls)
    count = pc.sum(blank).as_py() or 0
    if count != blank_lines or count == table.num_rows:
        return table, missing
    kept = table.filter(pc.invert(blank))
    fewer = {}
    for name, counts in missing.items():
        counts = dict(counts)
        if counts.get("", 0) >= count:  # the blank rows' cells
            counts[""] -= count
            if not counts[""]:
                del counts[""]
        if counts:
            fewer[name] = counts
    return kept, fewer


def unnamed_empty_columns(table: pa.Table, header: list[str] | None) -> list[str]:
    """Columns with neither a name nor a value: what a delimiter at the end of every line
    makes (a spreadsheet's export of formatted but empty columns). In a file without a header
    row, the empty columns at the right end."""
    names = table.column_names
    empty = [table.column(n).null_count == table.num_rows for n in names]
    if header is not None:
        return [n for n, h, e in zip(names, header, empty, strict=True) if e and not h.strip()]
    keep = len(names)
    while keep > 1 and empty[keep - 1]:
        keep -= 1
    return names[keep:]
