"""Weka's ARFF files (how OpenML and many UCI data sets are handed out) as CSV the reader types.

The header's `@attribute` lines name the columns; the `@data` section is comma-separated rows
with `?` for a missing value. Rows without quotes are handed on as they are (no copy of the
text); rows with quoted values are rewritten once as CSV.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from lib.tabular.csv_text import CsvLayout, detect_encoding
from lib.tabular.header_row import header_names
from lib.tabular.limits import TableError

ARFF_SUFFIX = ".arff"
# Comments (`%`) and blank lines may come before `@relation`.
_RELATION = re.compile(rb"\A(?:\xef\xbb\xbf)?(?:[ \t]*(?:%[^\n]*)?\r?\n)*[ \t]*@relation\b", re.I)
_DATA = re.compile(rb"^[ \t]*@data[ \t]*\r?$", re.I | re.M)
_ATTRIBUTE = re.compile(r"^\s*@attribute\s+", re.I)
_HEADER_MAX_BYTES = 16 * 1024 * 1024
_BARE_MISSING = re.compile(rb"(?<![^,\n])[ \t]*\?[ \t]*(?=[,\r\n]|\Z)")


@dataclass(frozen=True)
class ArffTable:
    """CSV bytes for the reader, and their layout (names from the header)."""

    data: bytes
    layout: CsvLayout
    relation: str


def is_arff(file_name: str, data: bytes) -> bool:
    """An `.arff` name, or text that starts with `@relation` (after comments)."""
    return file_name.lower().endswith(ARFF_SUFFIX) or bool(_RELATION.match(data[:65536]))


def arff_as_csv(data: bytes) -> ArffTable:
    """The table of an ARFF file as CSV bytes with a header row; refuses sparse and relational
    data, which are not one row per line."""
    found = _DATA.search(data, 0, _HEADER_MAX_BYTES)
    if found is None:
        raise TableError("The ARFF file has no @data line: its rows could not be found.")
    encoding = detect_encoding(data[: found.start()])
    header = data[: found.start()].decode(encoding, errors="replace")
    names, relation = _attributes(header)
    body = data[found.end() :].lstrip(b"\r\n")
    first = next((line.strip() for line in body[:65536].splitlines() if _is_row(line)), b"")
    if first.startswith(b"{"):
        raise TableError(
            "The ARFF file is sparse ({index value, ...} rows): save it as dense ARFF or CSV."
        )
    encoding = detect_encoding(body) if encoding == "utf-8" else encoding
    # `?` is ARFF's missing value in every column, text ones too: an empty cell to the reader.
    if b"?" in body:
        body = _BARE_MISSING.sub(b"", body)
    quoted = b"'" in body or b'"' in body
    comments = bool(re.search(rb"^[ \t]*%", body, re.M))  # (the reader skips blank lines)
    if quoted or comments:
        body, encoding = _rewritten(body, encoding), "utf-8"
    line = _csv_line(header_names(names)).encode(encoding, errors="replace")
    layout = CsvLayout(
        encoding=encoding,
        delimiter=",",
        header=header_names(names),
        header_bytes=len(line),
        body_offset=0,
    )
    return ArffTable(line + body, layout, relation)


def _attributes(header: str) -> tuple[list[str], str]:
    names: list[str] = []
    relation = ""
    for raw in header.splitlines():
        text = raw.strip()
        if not text or text.startswith("%"):
            continue
        if text.lower().startswith("@relation"):
            relation = _unquote(text[len("@relation") :].strip())
            continue
        match = _ATTRIBUTE.match(text)
        if not match:
            continue
        name, kind = _name_and_rest(text[match.end() :])
        if kind.lower().startswith("relational"):
            raise TableError(
                f"The ARFF attribute {name!r} is relational (a table inside a cell): "
                "save the data flat as CSV."
            )
        names.append(name)
    if not names:
        raise TableError("The ARFF header names no @attribute: the columns could not be named.")
    return names, relation


def _name_and_rest(text: str) -> tuple[str, str]:
    """An attribute's name (quoted, when it has spaces) and its type."""
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        while end > 0 and text[end - 1] == "\\":
            end = text.find(text[0], end + 1)
        if end > 0:
            return text[1:end].replace("\\" + text[0], text[0]), text[end + 1 :].strip()
    parts = text.split(None, 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in ("'", '"'):
        return text[1:-1]
    return text


def _is_row(line: bytes) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith(b"%")


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def _rewritten(body: bytes, encoding: str) -> bytes:
    """Rows with quoted values (`'<=50K'`, `"New York"`) as CSV, comments and blanks left out."""
    text = body.decode(encoding, errors="replace")
    rows = (
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("%")
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    quote = "'" if re.search(r"(^|,)\s*'", text, re.M) else '"'
    reader = csv.reader(rows, quotechar=quote, escapechar="\\", skipinitialspace=True)
    try:
        for row in reader:
            writer.writerow(row)
    except csv.Error as exc:
        raise TableError(f"The ARFF rows could not be read: {exc}.") from exc
    return out.getvalue().encode("utf-8")
