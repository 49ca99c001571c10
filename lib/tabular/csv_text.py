"""The text side of a CSV: encoding, header line, delimiter, all from bounded reads of the bytes.

No step here is worse than linear in what it reads, and nothing reads more than the header line
plus `SNIFF_MAX_BYTES`: `csv.Sniffer` is quadratic on crafted lines (a 64 KB line held the GIL
for 23 s), so the delimiter is chosen by splitting a bounded sample with each candidate.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from lib.tabular import fixed_width
from lib.tabular.header_row import (
    SNIFF_MAX_LINES,
    first_row_is_data,
    looks_numeric,
    merge_header_rows,
    numberish,
    second_header_row,
)
from lib.tabular.limits import TableError

CSV_DELIMITERS = ",;\t|"
SNIFF_MAX_BYTES = 64 * 1024
HEADER_MAX_BYTES = 16 * 1024 * 1024
UTF8_BOM = codecs.BOM_UTF8
_CHECK_CHUNK = 1 << 20
# More rows of notes than this below a table are rows of data with cells missing.
FOOTER_MAX_NOTES = 30
# How far down a title block above the header row is looked for.
TITLE_MAX_ROWS = 20
# The csv module refuses a field over 128 KB: a tab-separated line of 20,000 gene columns is
# one such field when split by commas, and a header line may be up to HEADER_MAX_BYTES.
csv.field_size_limit(max(csv.field_size_limit(), HEADER_MAX_BYTES + SNIFF_MAX_BYTES))
_SEP_HINT = re.compile(rb"sep=([^\r\n])\r?\n")
# The five bytes Windows-1252 leaves undefined: a file with one of them is read as Latin-1.
_NOT_CP1252 = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_SPACE_RUN = re.compile(r"[ \t]+")
_LINE_PADDING = re.compile(r"^[ \t]+|[ \t]+(?=\r?$)", re.MULTILINE)
_SPACE_RUN_BYTES = re.compile(rb"[ \t]+")
_PADDED = re.compile(r"\S {2,}\S")
_SPACE_TOKEN = r'(?:"(?:[^"]|"")*"|[^\s"]+)'
_SPACE_TOKENS = re.compile(rf"^{_SPACE_TOKEN}(?: {_SPACE_TOKEN})*\r?$")
_BLANK_LINES = re.compile(rb"(?:[ \t]*\r?\n|[ \t]*\r(?!\n))*")
# The first cell of a totals row below a table ("Total", "Grand total", "TOTAL:", "Sum").
_TOTAL_LABEL = re.compile(r"^((grand|sub)\s*)?totals?\b|^sum:?$", re.IGNORECASE)
_COMMA_DECIMAL = re.compile(r"[-+]?\d*,\d+")
_POINT_DECIMAL = re.compile(r"[-+]?\d*\.\d+")
# An amount with thousands dots and a decimal comma, perhaps with a currency or percent sign.
_WRITTEN_COMMA_DECIMAL = re.compile(
    r"[-+]?\s*[$€£¥]?\s*\d{1,3}(\.\d{3})+,\d+\s*[$€£¥]?\s*%?|[-+]?\d*,\d+\s*(%|[$€£¥])"
)
# `13.510` may be thirteen thousand written with a thousands dot: no evidence either way.
_THOUSANDS_DOTS = re.compile(r"[-+]?[1-9]\d{0,2}(\.\d{3})+")
_LINE_PADDING_BYTES = re.compile(rb"^[ \t]+|[ \t]+(?=\r?$)", re.MULTILINE)


@dataclass(frozen=True)
class CsvLayout:
    """What the reader needs to know before parsing the body."""

    encoding: str  # "utf-8", "cp1252" or "latin-1"
    delimiter: str
    header: list[str]
    header_bytes: int  # length of the header line, newline included
    body_offset: int  # where the header line starts (after a byte-order mark, title lines)
    title_rows: int = 0  # lines above the header row that were a title or blank
    # False when the first row holds values, not names (a file saved without a header row):
    # it is then read as data, and the columns are named column_1, column_2, ...
    header_row: bool = True
    # Space-separated with runs of spaces (a column-aligned file): read once collapsed.
    aligned: bool = False
    # Fixed-width text, cut into columns at the positions blank on every line.
    fixed_width: bool = False
    header_rows: int = 1  # 2 when the names span two rows (merged into one)
    footer_rows: int = 0  # rows below the table that are notes or totals, left out
    footer_bytes: int = 0  # bytes at the end of the file that are not the table (with blanks)


def utf16_as_utf8(data: bytes) -> bytes:
    """The text of a UTF-16 file (as spreadsheets save "Unicode text") as UTF-8 bytes."""
    try:
        return data.decode("utf-16").encode("utf-8")
    except UnicodeDecodeError as exc:
        raise TableError(
            f"The file starts as UTF-16 text but byte {exc.start} does not decode as UTF-16."
        ) from exc


def as_csv_bytes(data: bytes) -> tuple[bytes, str | None]:
    """CSV bytes the reader takes: UTF-16 as UTF-8, and the lone carriage returns that end the
    lines of a classic Mac "CSV (Macintosh)" file as newlines. Returns the bytes and the
    source encoding when it was transcoded."""
    source = None
    if data[:2] in UTF16_BOMS:
        data, source = utf16_as_utf8(data), "utf-16"
    elif b"\x00" in data[:65536]:
        data, source = _without_nul(data)
    if data.find(b"\n", 0, HEADER_MAX_BYTES) < 0 and b"\r" in data[:HEADER_MAX_BYTES]:
        data = data.replace(b"\r", b"\n")
    return data, source


def _without_nul(data: bytes) -> tuple[bytes, str | None]:
    """Text with NUL bytes: UTF-16 written without a byte-order mark (a NUL beside every ASCII
    character) as UTF-8, or a few stray NULs (a database export's padding) left out. Anything
    else is left for `detect_encoding` to refuse as binary."""
    head = data[:65536]
    even, odd = head[0::2], head[1::2]
    for zeros, other, codec in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros.count(0) >= 0.9 * len(zeros) and other.count(0) <= 0.01 * len(other):
            try:
                return data.decode(codec).encode("utf-8"), "utf-16"
            except UnicodeDecodeError:
                break
    controls = sum(head.count(c) for c in range(1, 32) if c not in (9, 10, 13))
    if head.count(0) <= max(1, len(head) // 1000) and not controls:
        return data.replace(b"\x00", b""), None
    return data, None


def detect_encoding(data: bytes | memoryview) -> str:
    """UTF-8 when every byte decodes as UTF-8, else Windows-1252 (what spreadsheets on Windows
    write: `€` is byte 0x80) or Latin-1 where that cannot decode; refuses binary data."""
    view = memoryview(data)
    if b"\x00" in bytes(view[:65536]):
        raise TableError(
            "The file contains NUL bytes: it is binary, not a text CSV "
            "(UTF-8, UTF-16 with a byte-order mark, Windows-1252 or Latin-1 expected; "
            "upload Parquet with a .parquet name)."
        )
    if isinstance(data, bytes) and data.isascii():
        return "utf-8"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # Chunked so the check never holds a decoded copy of the whole file.
        for start in range(0, len(view), _CHECK_CHUNK):
            decoder.decode(view[start : start + _CHECK_CHUNK])
        decoder.decode(b"", final=True)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    head = bytes(view[:65536]).decode("latin-1")
    # Latin-1 decodes any byte; reject text made mostly of control characters.
    controls = sum(1 for ch in head if ord(ch) < 32 and ch not in "\r\n\t")
    if controls > max(5, len(head) // 100):
        raise TableError("The file's bytes do not decode as UTF-8 or Latin-1 text.")
    return "latin-1" if _NOT_CP1252.search(view) else "cp1252"


def title_rows(rows: Sequence[Sequence[Any]], width: int) -> int:
    """How many rows above the header row are a title block: blank rows, rows with one
    filled cell in a table of three or more columns (a report's title, a "generated on" line),
    and comment lines (`# units: kg, usd`: a `#` first, not as many cells as the table; `##`
    always), however many (weather stations write dozens).

    A row narrower than the table (`Sales report, Q1 2024`: a title with a comma) is one too
    when a blank row or the header row follows it: a row naming every column once, in text
    that recurs nowhere below (R's header without a name for its row names is followed by data).

    0 unless a row with two or more filled cells follows within `TITLE_MAX_ROWS` title rows.
    """
    titles = 0
    for skipped, row in enumerate(rows):
        if _comment(row, width):
            continue
        filled = _filled(row)
        if (
            filled == 0
            or (filled == 1 and width >= 3)
            or (_extent(row) < width and _introduces(rows[skipped + 1 :], width))
        ):
            titles += 1
            if titles > TITLE_MAX_ROWS:
                return 0
            continue
        return skipped if filled >= 2 else 0
    return 0


def _extent(row: Sequence[Any]) -> int:
    """Cells up to the last filled one (a sheet pads every row to its width)."""
    return max((j + 1 for j, cell in enumerate(row) if _cell(cell)), default=0)


def _introduces(below: Sequence[Sequence[Any]], width: int) -> bool:
    """Whether the rows below a narrow row start with a blank row or the table's header."""
    if not below:
        return False
    first = below[0]
    if _filled(first) == 0:
        return True
    names = [_cell(c) for c in first[:width]]
    if len(names) < width or _extent(first) != width or not all(map(_text_cell, first[:width])):
        return False
    if len(set(names)) < width:
        return False
    # A header's names are not values of their own columns.
    return not any(
        j < len(row) and _cell(row[j]) == name for row in below[1:] for j, name in enumerate(names)
    )


def _filled(row: Sequence[Any]) -> int:
    return sum(1 for cell in row if _cell(cell))


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _comment(row: Sequence[Any], width: int) -> bool:
    first = _cell(row[0]) if row else ""
    return first.startswith("##") or (first.startswith("#") and len(row) != width)


def footer_rows(rows: Sequence[Sequence[Any]], width: int) -> int:
    """How many of the last rows of a table are not data: blank rows, notes below it (one
    filled cell of text in a table of three or more columns; sparser rows of text behind a
    blank row, as "Source: ..., 2022" splits) and then a totals row (`Total` first, numbers
    beside it, the label nowhere else in its column).

    `rows` are the table's last rows, below its header row, as read.
    """
    count = len(rows)
    top = count
    while top and (_blank(rows[top - 1]) or _note(rows[top - 1], width, strict=False)):
        top -= 1
    if not top:  # no row of data above them: they are the table
        return 0
    # From the end: where the rows below are all blank or one-cell notes.
    strict_from = count
    while strict_from > top and (
        _blank(rows[strict_from - 1]) or _note(rows[strict_from - 1], width)
    ):
        strict_from -= 1
    blank = next((i for i in range(top, count) if _blank(rows[i])), count)
    start = min(blank, strict_from)
    if sum(1 for r in rows[start:] if not _blank(r)) > FOOTER_MAX_NOTES:
        # So many are rows of data with cells missing: only the blank rows at the end go.
        end = count
        while end and _blank(rows[end - 1]):
            end -= 1
        return count - end
    if start and _totals(rows[start - 1], rows[: start - 1]):
        start -= 1
    return count - start


def _blank(row: Sequence[Any]) -> bool:
    return _filled(row) == 0


def _note(row: Sequence[Any], width: int, strict: bool = True) -> bool:
    filled = _filled(row)
    if width < 3 or not row or not filled or not _text_cell(row[0]):
        return False
    return filled == 1 or (not strict and width >= 4 and filled <= width // 2)


def _text_cell(value: Any) -> bool:
    text = _cell(value)
    return bool(text) and isinstance(value, str) and not looks_numeric(text)


def _totals(row: Sequence[Any], above: Sequence[Sequence[Any]]) -> bool:
    cells = [(j, v) for j, v in enumerate(row) if _cell(v)]
    if len(cells) < 2 or not _text_cell(cells[0][1]):
        return False
    j, label = cells[0][0], _cell(cells[0][1])
    if not _TOTAL_LABEL.match(label):
        return False
    numbers = any(not isinstance(v, str) or numberish(_cell(v)) for _, v in cells[1:])
    return numbers and all(len(r) <= j or _cell(r[j]) != label for r in above)


def choose_delimiter(sample: str) -> str:
    """The candidate that splits the sample's records into the same number (> 1) of fields.

    Linear in the sample: each candidate is one pass of `csv.reader`. Ties go to more fields,
    then to the order of CSV_DELIMITERS (comma first); one column means comma.
    """
    best, best_key = ",", None
    for order, delimiter in enumerate(CSV_DELIMITERS):
        widths = [
            len(r) for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r
        ]
        widths = widths[:SNIFF_MAX_LINES]
        if not widths:
            continue
        mode = max(set(widths), key=widths.count)
        if mode < 2:
            continue
        key = (widths.count(mode) / len(widths), widths[0] == mode, mode, -order)
        if best_key is None or key > best_key:
            best, best_key = delimiter, key
    if best_key is None:
        return " " if _space_separated(sample) else best
    if best == "\t" and _aligned_around_tabs(sample, best_key[2]):
        return " "
    # R's write.table separates by spaces and quotes text; a comma inside the quotes
    # ("[50, 75)") splits most lines in two, but not the header line, where spaces split every
    # line alike.
    if not best_key[1] and _space_separated(sample) and _space_tokens(sample):
        return " "
    return best


def _space_tokens(sample: str) -> bool:
    """Most lines are tokens between single spaces, each quoted whole or holding no quote,
    as `write.table` writes them (a comma-separated line of quoted values is not)."""
    lines = [line for line in sample.splitlines() if line.strip()][:SNIFF_MAX_LINES]
    return sum(bool(_SPACE_TOKENS.match(line)) for line in lines) >= 0.8 * len(lines)


def _aligned_around_tabs(sample: str, tab_fields: int) -> bool:
    """Columns aligned with runs of spaces and a tab before the last (UCI's auto-mpg: numbers,
    then a tab and the quoted car name): whitespace splits every line into the same, larger
    number of fields. A tab-separated file whose cells merely hold words keeps its tabs (its
    lines have no runs of spaces between values)."""
    lines = [line for line in sample.splitlines() if line.strip()][:SNIFF_MAX_LINES]
    padded = sum(bool(_PADDED.search(line)) for line in lines)
    if not lines or padded < 0.8 * len(lines):
        return False
    widths = [len(r) for r in csv.reader(io.StringIO(collapse_spaces(sample)), delimiter=" ") if r]
    widths = widths[:SNIFF_MAX_LINES]
    mode = max(set(widths), key=widths.count)
    return mode > tab_fields and widths[0] == mode and widths.count(mode) >= 0.8 * len(widths)


def _space_separated(sample: str) -> bool:
    """Fields between spaces, as R's `write.table` and UCI's `.data` files write them (runs of
    spaces in a column-aligned file count as one): the first line and most others alike."""
    lines = sample if '"' in sample else collapse_spaces(sample)
    widths = [len(r) for r in csv.reader(io.StringIO(lines, newline=""), delimiter=" ") if r]
    widths = widths[:SNIFF_MAX_LINES]
    if not widths:
        return False
    mode = max(set(widths), key=widths.count)
    return mode >= 2 and widths[0] == mode and widths.count(mode) >= 0.8 * len(widths)


def collapse_spaces(text: str) -> str:
    """Column-aligned text as single-space-separated lines (no space at either end)."""
    return _SPACE_RUN.sub(" ", _LINE_PADDING.sub("", text))


def collapse_space_bytes(data: bytes) -> bytes:
    """`collapse_spaces` on bytes (ASCII spaces and tabs only, so any encoding holds)."""
    return _SPACE_RUN_BYTES.sub(b" ", _LINE_PADDING_BYTES.sub(b"", data))


def _line_end(body: memoryview, limit: int = HEADER_MAX_BYTES) -> int:
    """Length of the first line of `body`, newline included."""
    end = bytes(body[:limit]).find(b"\n")
    if end < 0:
        if len(body) > limit:
            raise TableError(
                f"The first line is longer than {limit // (1024 * 1024)} MB: "
                "this is not a CSV with a header row."
            )
        return len(body)
    return end + 1


def _title_bytes(body: memoryview, sample: str, delimiter: str) -> tuple[int, int]:
    """(rows, bytes) of the title block above the header row, if the sample has one."""
    rows = list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter))
    widths = [len(r) for r in rows if r and not r[0].lstrip().startswith("#")]
    if not widths:
        return 0, 0
    skip = title_rows(rows, max(set(widths), key=widths.count))
    size = 0
    for _ in range(skip):
        line = bytes(body[size : size + _line_end(body[size:], SNIFF_MAX_BYTES)])
        # An odd number of quotes leaves a quoted field open past the line end: such a
        # file is left as written (a quoted title on one line, LendingClub's, is a title).
        if line.count(b'"') % 2:
            return 0, 0
        size += len(line)
    return skip, size


def _footer_bytes(
    body: memoryview, header_bytes: int, encoding: str, delimiter: str, width: int
) -> tuple[int, int]:
    """(rows that are not blank, bytes) of the footer below the table (`footer_rows`), read
    from the last SNIFF_MAX_BYTES of the file."""
    start = max(header_bytes, len(body) - SNIFF_MAX_BYTES)
    tail = bytes(body[start:])
    if start > header_bytes:  # whole lines only
        tail = tail[tail.find(b"\n") + 1 :] if b"\n" in tail else b""
    lines = tail.splitlines(keepends=True)
    texts = [line.decode(encoding, errors="replace") for line in lines]
    rows, ends = _records(texts, delimiter)
    if rows is None:
        return 0, 0
    footer = footer_rows(rows, width)
    if not footer:
        return 0, 0
    first = ends[len(rows) - footer - 1] if len(rows) > footer else 0
    # The footer must read the same on its own (the tail may have begun inside a quoted value).
    alone, _ = _records(texts[first:], delimiter)
    if alone != rows[len(rows) - footer :]:
        return 0, 0
    size = sum(len(line) for line in lines[first:])
    return sum(1 for r in rows[len(rows) - footer :] if not _blank(r)), size


def _records(texts: list[str], delimiter: str) -> tuple[list[list[str]] | None, list[int]]:
    """The records of whole lines and, for each, the number of lines read up to its end."""
    reader = csv.reader(iter(texts), delimiter=delimiter)
    rows, ends = [], []
    try:
        for row in reader:
            rows.append(row)
            ends.append(reader.line_num)
    except csv.Error:
        return None, []
    return rows, ends


def _sample(body: memoryview, header_bytes: int, encoding: str) -> str:
    """The whole first line plus whole lines up to SNIFF_MAX_BYTES after it, as text."""
    tail = bytes(body[header_bytes : header_bytes + SNIFF_MAX_BYTES])
    if header_bytes + SNIFF_MAX_BYTES < len(body):
        tail = tail[: tail.rfind(b"\n") + 1]
    return (bytes(body[:header_bytes]) + tail).decode(encoding, errors="replace")


def read_layout(data: bytes | memoryview) -> CsvLayout:
    """Encoding, header and delimiter of CSV bytes, reading at most header + SNIFF_MAX_BYTES."""
    view = memoryview(data)
    encoding = detect_encoding(view)
    offset = len(UTF8_BOM) if encoding == "utf-8" and view[:3] == UTF8_BOM else 0
    # Excel's "sep=;" first line names the delimiter; the header follows it.
    hint = _SEP_HINT.match(bytes(view[offset : offset + 8]))
    if hint:
        offset += hint.end()
    # Blank lines above the table, however many (an export padded with a megabyte of them).
    offset += _BLANK_LINES.match(bytes(view[offset : offset + HEADER_MAX_BYTES])).end()
    body = view[offset:]
    header_bytes = _line_end(body)
    sample = _sample(body, header_bytes, encoding)
    if not sample.strip():
        raise TableError("The file is empty.")
    delimiter = hint.group(1).decode(encoding) if hint else choose_delimiter(sample)
    # A report's title (or blank lines) above the header row is not the header.
    titles, title_size = _title_bytes(body, sample, delimiter)
    if titles:
        offset += title_size
        body = view[offset:]
        header_bytes = _line_end(body)
        sample = _sample(body, header_bytes, encoding)
    rows = list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter))
    header = rows[0] if rows else []
    header_rows = 1
    if len(rows) > 2 and second_header_row(header, rows[1], rows[2:], delimiter):
        first = _line_end(body)
        line = bytes(body[:first]).decode(encoding, errors="replace")
        # Line by line only where the first row is one line (no quoted newline in it).
        if next(csv.reader(io.StringIO(line, newline=""), delimiter=delimiter), []) == header:
            header, rows = merge_header_rows(header, rows[1]), rows[1:]
            offset += first
            body = view[offset:]
            header_bytes = _line_end(body)
            header_rows = 2
    if _trailing_delimiter(header, rows[1:-1] if len(rows) > 2 else rows[1:]):
        # Read as a column with no name: left out when it holds nothing, as such columns are.
        header = [*header, ""]
    footer, footer_size = _footer_bytes(body, header_bytes, encoding, delimiter, len(header))
    return CsvLayout(
        encoding=encoding,
        delimiter=delimiter,
        header=header,
        header_bytes=header_bytes,
        body_offset=offset,
        title_rows=titles,
        header_row=not first_row_is_data(header, rows[1:], delimiter),
        # Quoted text may hold runs of spaces of its own (R's write.table): collapsed only in
        # a file aligned around tabs (auto-mpg), whose quoted names have single spaces.
        aligned=delimiter == " "
        and collapse_spaces(sample) != sample
        and ('"' not in sample or "\t" in sample),
        header_rows=header_rows,
        footer_rows=footer,
        footer_bytes=footer_size,
    )


def _trailing_delimiter(header: list[str], rows: list[list[str]]) -> bool:
    """Every data row ends with a delimiter the header row does not have (`1,2,3,` under
    `a,b,c`): the reader would otherwise take the first column for the rows' index and shift
    every value one column to the left."""
    return bool(rows) and all(len(row) == len(header) + 1 and not row[-1].strip() for row in rows)


def decimal_marks(data: bytes | memoryview, layout: CsvLayout) -> tuple[bool, bool]:
    """Whether the comma is the decimal mark, and whether the file is seen writing one.

    A semicolon-separated file has a decimal comma unless its sample writes numbers with a
    decimal point and never with a decimal comma (`7.4;0.88`, as the UCI wine data):
    spreadsheets write `;` where the comma is the decimal mark, but not every semicolon file
    comes from one. Seen written (`12,5`, `2.937,46 €`), the dot is the thousands mark:
    `1.514` is then fifteen hundred and fourteen in every column of the file."""
    if layout.delimiter != ";":
        return False, False
    start = layout.body_offset + (layout.header_bytes if layout.header_row else 0)
    sample = bytes(data[start : start + SNIFF_MAX_BYTES]).decode(layout.encoding, "replace")
    points = commas = 0
    for row in csv.reader(io.StringIO(sample.rsplit("\n", 1)[0]), delimiter=";"):
        for cell in row:
            cell = cell.strip()
            if _COMMA_DECIMAL.fullmatch(cell) or _WRITTEN_COMMA_DECIMAL.fullmatch(cell):
                commas += 1
            elif _POINT_DECIMAL.fullmatch(cell) and not _THOUSANDS_DOTS.fullmatch(cell):
                points += 1
    return commas > 0 or points == 0, commas > 0


def csv_layout(data: bytes) -> tuple[bytes, CsvLayout]:
    """The bytes to parse and their layout (a fixed-width file's columns cut out as CSV, a
    column-aligned file's spaces collapsed)."""
    layout = read_layout(data)
    if layout.aligned or len(layout.header) == 1:
        cut = _fixed_width_csv(data, layout)
        if cut is not None:
            return cut, replace(read_layout(cut), fixed_width=True)
    if layout.aligned:
        data = collapse_space_bytes(data)
        layout = read_layout(data)
    return data, layout


def _fixed_width_csv(data: bytes, layout: CsvLayout) -> bytes | None:
    """Fixed-width text as CSV bytes, or None. Either no delimiter splits the text (cells with
    spaces inside), or whitespace splits its lines into different numbers of fields (a blank
    cell in the middle of a line would move every value after it one column to the left)."""
    body = bytes(data[layout.body_offset :])
    sample = body[:SNIFF_MAX_BYTES]
    if len(body) > SNIFF_MAX_BYTES:
        sample = sample[: sample.rfind(b"\n") + 1]
    text = sample.decode(layout.encoding, errors="replace")
    spans = fixed_width.column_spans(text)
    if not spans:
        return None
    if layout.aligned:
        # Where whitespace and positions agree on the sample, positions also hold for a blank
        # cell further down; where they disagree and whitespace splits every line alike,
        # whitespace is kept.
        widths = {len(collapse_spaces(line).split(" ")) for line in text.splitlines()}
        widths.discard(1)
        if widths != {len(spans)} and len(widths) < 2:
            return None
    return fixed_width.as_csv(body.decode(layout.encoding, errors="replace"), spans).encode()
