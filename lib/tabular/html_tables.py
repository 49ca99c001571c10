"""Tables in HTML: what "export to Excel" writes in many web applications (a `report.xls` that
is a web page) and a table saved from a web page.

The biggest `<table>` (by cells) is read: its first row names the columns (two rows of `<th>`
make one name each, as two header rows of a CSV do), `colspan` repeats a header cell over the
columns it spans, `rowspan` repeats a cell down the rows it spans, and a cell's text is what a
browser shows (tags dropped, spaces collapsed, footnote marks such as `[1]` left out). Values are
handed on as text and typed as CSV cells are.
"""

from __future__ import annotations

import html
import re

import pyarrow as pa

from lib.settings import UploadLimits
from lib.tabular.header_row import header_names, merge_header_rows, second_header_row
from lib.tabular.limits import TableError, check_columns, check_decoded_size, check_rows

_SPACES = re.compile(r"\s+")
# What a cell costs in memory while the page is parsed (a tuple and its text), counted against
# the decoded-size limit as the cells come.
CELL_BYTES = 160
_FOOTNOTE = re.compile(r"\[(\d+|[a-z]|note \d+|citation needed)\]")
_HTML = re.compile(rb"\s*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<table[\s>])", re.I)


def is_html_table(data: bytes) -> bool:
    """A web page with a `<table>` in it."""
    head = data[:1024].removeprefix(b"\xef\xbb\xbf")
    return bool(_HTML.match(head)) and (b"<t" in data or b"<T" in data)


_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S)
_TAG = re.compile(r"<(/?)(table|tr|td|th|br)\b([^>]*)>", re.I)
_ANY_TAG = re.compile(r"<[^>]*>")
_SPAN = re.compile(r"""\b(colspan|rowspan)\s*=\s*["']?\s*(\d+)""", re.I)


class _Tables:
    """Every table of a page as rows of (text, is_header, colspan, rowspan) cells.

    A lexer of the table tags alone (the standard library's `HTMLParser` handles every tag of
    the page and took 7.2 s where this takes 3.4 s on a 10 MB table); text between them is
    a cell's, other tags dropped from it, entities decoded.
    """

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.tables: list[list[list[tuple[str, bool, int, int]]]] = []
        self._open: list[list[list[tuple[str, bool, int, int]]]] = []  # nested tables
        self._cell: list[str] | None = None
        self._cell_attrs: tuple[bool, int, int] = (False, 1, 1)
        self._bytes = 0

    def feed(self, text: str) -> None:
        text = _HIDDEN.sub(" ", text)
        position = 0
        for match in _TAG.finditer(text):
            if self._cell is not None:
                self._cell.append(text[position : match.start()])
            position = match.end()
            closing, tag, attrs = match.group(1), match.group(2).lower(), match.group(3)
            if closing:
                self._end(tag)
            else:
                self._start(tag, attrs)
        while self._open:
            self._end("table")

    def _start(self, tag: str, attrs: str) -> None:
        if tag == "table":
            self._end_cell()
            self._open.append([])
        elif tag == "tr" and self._open:
            self._end_cell()
            self._open[-1].append([])
            check_rows(len(self._open[-1]) - 1, self.limits, at_least=True)
        elif tag in ("td", "th") and self._open:
            self._end_cell()
            if not self._open[-1]:
                self._open[-1].append([])
            spans = {k.lower(): v for k, v in _SPAN.findall(attrs)}
            self._cell = []
            self._cell_attrs = (
                tag == "th",
                _span(spans.get("colspan")),
                _span(spans.get("rowspan")),
            )
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def _end(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._end_cell()
        elif tag == "table" and self._open:
            self._end_cell()
            rows = [r for r in self._open.pop() if r]
            if rows:
                self.tables.append(rows)

    def _end_cell(self) -> None:
        if self._cell is None or not self._open:
            return
        text = html.unescape(_ANY_TAG.sub("", "".join(self._cell)))
        text = _FOOTNOTE.sub("", _SPACES.sub(" ", text)).strip()
        self._open[-1][-1].append((text, *self._cell_attrs))
        self._cell = None
        self._bytes += CELL_BYTES + len(text)
        if self._bytes > self.limits.max_uncompressed_bytes:
            check_decoded_size(self._bytes, self.limits, at_least=True)


def _span(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))
    except ValueError:
        return 1


def _grid(
    rows: list[list[tuple[str, bool, int, int]]], limits: UploadLimits
) -> tuple[list[list[str]], int]:
    """The table as a grid of texts (spans repeated), and how many leading rows are headers."""
    grid: list[list[str]] = []
    below: dict[int, tuple[str, int]] = {}  # column -> (text, rows still to fill)
    headers = 0
    for number, cells in enumerate(rows):
        row: list[str] = []
        queue = list(cells)
        column = 0
        while queue or any(c >= column for c in below):
            if column in below:
                text, left = below[column]
                row.append(text)
                below[column] = (text, left - 1)
                if left <= 1:
                    del below[column]
                column += 1
                continue
            if not queue:
                column += 1
                row.append("")
                continue
            text, _, colspan, rowspan = queue.pop(0)
            check_columns(column + colspan, limits)  # spans make a row wide from a few bytes
            for _ in range(colspan):
                if rowspan > 1:
                    below[column] = (text, rowspan - 1)
                row.append(text)
                column += 1
        grid.append(row)
        if number == headers and cells and all(is_header for _, is_header, _, _ in cells):
            headers += 1
    width = max(len(r) for r in grid)
    return [r + [""] * (width - len(r)) for r in grid], headers


def read_html_table(data: bytes, limits: UploadLimits) -> pa.Table:
    """The biggest table of an HTML page, every column as text (typed afterwards)."""
    text = data.decode("utf-8-sig", errors="replace")
    parser = _Tables(limits)
    parser.feed(text)
    tables = [t for t in parser.tables if len(t) >= 2 and max(len(r) for r in t) >= 2]
    if not tables:
        raise TableError(
            "The file is a web page (HTML) without a table: a sign-in or error page saved "
            "instead of the data? Download the file again. Nothing was stored."
        )
    grid, headers = _grid(max(tables, key=lambda t: sum(len(r) for r in t)), limits)
    header, body = grid[0], grid[1:]
    if headers >= 2 or (len(body) > 2 and second_header_row(header, body[0], body[1:], ",")):
        header, body = merge_header_rows(header, body[0]), body[1:]
    check_columns(len(header), limits)
    check_rows(len(body), limits)
    if not body:
        raise TableError("The table in the web page has a header but no data rows.")
    columns = [pa.array([row[j] or None for row in body], pa.string()) for j in range(len(header))]
    check_decoded_size(sum(c.nbytes for c in columns), limits)
    return pa.table(columns, names=header_names(header))
