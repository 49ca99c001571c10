"""JSON tables, as APIs and data portals hand them out.

Read: an array of records (`DataFrame.to_json(orient="records")`, most REST APIs), JSON Lines
(one record a line), an object holding an array of records (`{"data": [...]}`, `{"results":
[...]}`, pandas' `table` layout, or deeper: `{"response": {"docs": [...]}}`), GeoJSON features (their properties), pandas' `split` layout
(`{"columns": [...], "data": [[...]]}`), an array of arrays (a first row of names is the header),
an object of equally long arrays (one a column) and pandas' default `columns` and `index`
layouts (an object of objects). A nested object becomes `parent.child` columns; a list is kept
as its JSON text. Every value is handed on as text and typed as CSV text is, so `1`, `"1"` and
`true` read as a CSV cell would.

Records are decoded one at a time and the columns kept as Arrow text in batches, so the rows
and the decoded size are checked against the limits while reading.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

import pyarrow as pa

from lib.settings import UploadLimits
from lib.tabular.header_row import header_names
from lib.tabular.limits import TableError, check_columns, check_decoded_size, check_rows

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".geojson")
BATCH_ROWS = 65_536
# Files up to this size are decoded in one call (4x as fast; about ten times their size in
# Python objects at once); bigger ones a record at a time, the limits checked as they grow.
WHOLE_DECODE_CHARS = 32 << 20
_START = re.compile(r"\s*")
_DECODER = json.JSONDecoder()
_ROW_LABEL = re.compile(r"^\d+$")


def is_json(file_name: str, data: bytes) -> bool:
    """JSON by extension, or by its first characters (`[{`, `{"`, an array over lines)."""
    if file_name.lower().endswith(JSON_SUFFIXES):
        return True
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith((b"[{", b"[[", b"[\n", b"[\r", b'{"'))


def read_json_table(data: bytes, limits: UploadLimits) -> pa.Table:
    """The table a JSON file holds, every column as text (typed afterwards)."""
    text = _decode(data)
    start = _START.match(text).end()
    if start == len(text):
        raise TableError("The file is empty.")
    columns = _Columns(limits)
    whole = len(text) <= min(WHOLE_DECODE_CHARS, limits.max_uncompressed_bytes // 16)
    if text[start] == "[":
        items = _decoded(text) if whole else None
        columns.add_items(items if isinstance(items, list) else _array_items(text, start))
    elif text[start] == "{":
        first, end = _value_at(text, start)
        rest = _START.match(text, end).end()
        if rest < len(text):  # JSON Lines: one record after another
            columns.add_record(first)
            records = _decoded_lines(text[rest:]) if whole else None
            columns.add_items(records if records is not None else _lines(text, rest))
        else:
            columns.add_items(_records_of(first))
    else:
        raise TableError(_NO_TABLE)
    return columns.table()


_NO_TABLE = (
    "The JSON holds no table: an array of records, JSON Lines, or an object holding an array "
    "of records is read. Nothing was stored."
)


def _decoded(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _decoded_lines(text: str) -> list[dict] | None:
    """One record a line, each decoded in one call; None when a record spans lines or a line
    is not a record (read record by record then, which says where)."""
    try:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (json.JSONDecodeError, RecursionError):
        return None
    return records if all(isinstance(r, dict) for r in records) else None


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        if encoding == "utf-16" and data[:2] not in (b"\xff\xfe", b"\xfe\xff"):
            continue
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise TableError("The JSON file is not UTF-8 text. Nothing was stored.") from exc


def _value_at(text: str, index: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, index)
    except json.JSONDecodeError as exc:
        raise TableError(
            f"The file is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            "Nothing was stored."
        ) from exc
    except RecursionError as exc:
        raise TableError("The JSON nests too deep to be a table. Nothing was stored.") from exc


def _array_items(text: str, start: int) -> Iterator[Any]:
    """The items of the array at `start`, decoded one at a time; nothing may follow it."""
    index = _START.match(text, start + 1).end()
    if index < len(text) and text[index] == "]":
        index += 1
    else:
        while True:
            item, index = _value_at(text, index)
            yield item
            index = _START.match(text, index).end()
            mark = text[index : index + 1]
            if mark == "]":
                index += 1
                break
            if mark != ",":
                raise TableError(_invalid(text, index, "',' or ']' expected"))
            index = _START.match(text, index + 1).end()
    index = _START.match(text, index).end()
    if index != len(text):
        raise TableError(_invalid(text, index, "extra data after the array"))


def _lines(text: str, index: int) -> Iterator[Any]:
    while index < len(text):
        record, index = _value_at(text, index)
        if not isinstance(record, dict):
            raise TableError(_invalid(text, index, "a line that is not a record"))
        yield record
        index = _START.match(text, index).end()


def _invalid(text: str, index: int, what: str) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return (
        f"The file is not valid JSON: {what} at line {line}, column {column}. Nothing was stored."
    )


def _records_of(whole: dict) -> list[Any]:
    """The rows of a JSON object: the layout it is written in decides."""
    if whole.get("type") == "FeatureCollection" and isinstance(whole.get("features"), list):
        return whole["features"]
    names, rows = whole.get("columns"), whole.get("data")
    if _is_name_list(names) and isinstance(rows, list) and all(isinstance(r, list) for r in rows):
        return [dict(zip(names, row, strict=False)) for row in rows]
    records = _records_inside(whole)
    if records:
        return records
    values = list(whole.values())
    lengths = {len(v) for v in values if isinstance(v, list)}
    if values and len(lengths) == 1 and all(isinstance(v, list) for v in values):
        # Columns as lists (`json.dump(frame.to_dict("list"))`): one value of each a row.
        names = list(whole)
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
    if values and all(isinstance(v, dict) for v in values):
        labels = list(whole)
        if all(_ROW_LABEL.match(str(k)) for k in labels):  # pandas "index": rows by label
            return values
        # pandas "columns" (what `DataFrame.to_json()` writes): columns by name, then rows.
        row_labels: dict[str, None] = {}
        for column in values:
            row_labels.update(dict.fromkeys(column))
        return [{name: whole[name].get(r) for name in labels} for r in row_labels]
    if values and not any(isinstance(v, list) for v in values):
        return [whole]  # one record alone
    raise TableError(_NO_TABLE)


def _records_inside(whole: dict, depth: int = 3) -> list[dict] | None:
    """The longest array of records in the object or the objects inside it (`{"results":
    [...]}`, Solr's `{"response": {"docs": [...]}}`), looking `depth` levels down."""
    best: list[dict] | None = None
    level = [whole]
    for _ in range(depth):
        found = [v for obj in level for v in obj.values() if _is_records(v)]
        if found:
            best = max(found, key=len)
            break
        level = [v for obj in level for v in obj.values() if isinstance(v, dict)]
    return best


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def _is_name_list(names: Any) -> bool:
    return isinstance(names, list) and bool(names) and all(isinstance(n, str) for n in names)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False)


_SCALARS = {str, int, float, bool, type(None)}


def _text_array(values: list[Any]) -> pa.Array:
    """One column of a batch as Arrow text: `1`, `1.5`, `true`, strings as they are."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:
        return pa.array(values, pa.string())
    if (
        kinds <= _SCALARS
        and str not in kinds
        and (bool not in kinds or kinds <= {bool, type(None)})
    ):
        try:  # numbers or booleans alone: cast in Arrow
            return pa.array(values).cast(pa.string())
        except (OverflowError, pa.ArrowException):  # an integer past 64 bits
            pass
    return pa.array([_cell(v) for v in values], pa.string())


def _names(records: list[dict]) -> dict[str, None]:
    """The keys of the records, in the order they first appear."""
    return dict.fromkeys(chain.from_iterable(records))


def _batch_columns(
    records: list[dict], prefix: str = "", names: dict[str, None] | None = None
) -> dict[str, pa.Array]:
    """The columns of a batch of records; a nested object becomes `parent.child` columns."""
    names = _names(records) if names is None else names
    out: dict[str, pa.Array] = {}
    for name in names:
        values = [r.get(name) for r in records]
        column = f"{prefix}{name}"
        if dict in set(map(type, values)):
            objects = [v if type(v) is dict else {} for v in values]
            others = [None if type(v) is dict else v for v in values]
            if any(v is not None for v in others):  # a value beside objects keeps the name
                out[column] = _text_array(others)
            for sub, array in _batch_columns(objects, f"{column}.").items():
                out.setdefault(sub, array)
            continue
        out.setdefault(column, _text_array(values))
    return out


class _Columns:
    """Text columns filled a batch of records at a time, kept as Arrow arrays."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.chunks: dict[str, list[pa.Array]] = {}
        self.batch: list[dict] = []
        self.rows = 0  # rows already in `chunks`
        self.nbytes = 0
        self.header: list[str] | None = None  # an array of arrays' first row, when names

    def add_item(self, item: Any) -> None:
        if isinstance(item, dict):
            if item.get("type") == "Feature" and isinstance(item.get("properties"), dict):
                geometry = item.get("geometry")
                properties = item["properties"]
                item = {**properties, "geometry": geometry} if geometry else properties
            self.add_record(item)
        elif isinstance(item, list):
            if self.rows == 0 and not self.batch and self.header is None and _is_name_list(item):
                self.header = [str(n) for n in item]
                return
            names = self.header or []
            if len(item) > len(names):
                names = names + [f"column_{i + 1}" for i in range(len(names), len(item))]
            self.add_record(dict(zip(names, item, strict=False)))
        else:
            raise TableError(
                "The JSON array holds single values, not records: a table is an array of "
                "objects (or of arrays). Nothing was stored."
            )

    def add_items(self, items: Iterable[Any]) -> None:
        """Items of an array: plain records a batch at a time, anything else one by one."""
        if not isinstance(items, list):
            for item in items:
                self.add_item(item)
            return
        for first in range(0, len(items), BATCH_ROWS):
            part = items[first : first + BATCH_ROWS]
            if all(type(i) is dict and i.get("type") != "Feature" for i in part):
                self.batch.extend(part)
                if len(self.batch) >= BATCH_ROWS:
                    self._flush()
            else:
                for item in part:
                    self.add_item(item)

    def add_record(self, record: dict) -> None:
        self.batch.append(record)
        if len(self.batch) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.batch:
            return
        size = len(self.batch)
        top = _names(self.batch)
        check_columns(len(self.chunks.keys() | top.keys()), self.limits)  # before building any
        columns = _batch_columns(self.batch, names=top)
        self.batch = []
        check_columns(len(set(self.chunks) | set(columns)), self.limits)
        for name, array in columns.items():
            if name not in self.chunks:
                self.chunks[name] = [pa.nulls(self.rows, pa.string())] if self.rows else []
            self.chunks[name].append(array)
            self.nbytes += array.nbytes
        for name, chunks in self.chunks.items():
            if name not in columns:
                chunks.append(pa.nulls(size, pa.string()))
        self.rows += size
        check_rows(self.rows, self.limits, at_least=True)
        check_decoded_size(self.nbytes, self.limits, at_least=True)

    def table(self) -> pa.Table:
        self._flush()
        if not self.chunks or self.rows == 0:
            raise TableError("The JSON holds no rows. Nothing was stored.")
        names = header_names(list(self.chunks))  # blank names by position, repeats numbered
        columns = [pa.chunked_array(c, pa.string()) for c in self.chunks.values()]
        return pa.table(columns, names=names)
