"""Reading uploaded tables (CSV with a sniffed delimiter, Parquet), validating them, profiling.

Pure functions of bytes and DataFrames, shared by both backends.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_MAGIC = b"PAR1"
CSV_DELIMITERS = ",;\t|"
HISTOGRAM_BINS = 12


class TableError(ValueError):
    """The uploaded bytes are not a usable table; the message says why."""


@dataclass(frozen=True)
class ParsedTable:
    frame: pd.DataFrame
    file_format: str  # "csv" or "parquet"
    encoding: str | None = None
    delimiter: str | None = None


def detect_format(file_name: str, data: bytes) -> str:
    """Parquet by magic bytes or extension, everything else CSV."""
    lower = file_name.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if data[:4] == PARQUET_MAGIC:
        return "parquet"
    return "csv"


def _decode(data: bytes) -> tuple[str, str]:
    if b"\x00" in data[:65536]:
        raise TableError(
            "The file contains NUL bytes: it is binary, not a text CSV "
            "(UTF-8 or Latin-1 expected; upload Parquet with a .parquet name)."
        )
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        # Latin-1 decodes any byte; reject text made mostly of control characters.
        controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\r\n\t")
        if controls > max(5, len(text[:65536]) // 100):
            raise TableError("The file's bytes do not decode as UTF-8 or Latin-1 text.")
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    raise TableError("The file's bytes do not decode as UTF-8 or Latin-1 text.")


def _sniff_delimiter(sample: str) -> str:
    lines = [ln for ln in sample.splitlines() if ln.strip()][:50]
    if not lines:
        raise TableError("The file is empty.")
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=CSV_DELIMITERS)
        return dialect.delimiter
    except csv.Error:
        # A one-column file, or a header line the sniffer cannot decide on: count candidates.
        counts = {d: lines[0].count(d) for d in CSV_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] > 0 else ","


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_header(header: list[str]) -> None:
    if not header or all(not h.strip() for h in header):
        raise TableError("The first line is empty: a header row with column names is required.")
    blanks = [i + 1 for i, h in enumerate(header) if not h.strip()]
    if blanks:
        raise TableError(f"Column(s) {blanks} have no name in the header row.")
    if all(_looks_numeric(h.strip()) for h in header):
        raise TableError(
            "The first row is all numbers, so the file seems to have no header row: "
            "add a first line with column names."
        )
    _check_duplicates(header)


def _check_duplicates(names: list[str]) -> None:
    seen: dict[str, int] = {}
    dupes = []
    for name in names:
        key = name.strip()
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            dupes.append(key)
    if dupes:
        raise TableError(f"Duplicate column names: {', '.join(repr(d) for d in dupes)}.")


def parse_csv(data: bytes) -> ParsedTable:
    """Parse CSV bytes with a sniffed delimiter (UTF-8 or Latin-1)."""
    if not data.strip():
        raise TableError("The file is empty.")
    text, encoding = _decode(data)
    delimiter = _sniff_delimiter(text[:65536])
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    _check_header(header)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, low_memory=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise TableError(f"The CSV could not be parsed: {exc}".strip()) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise TableError("The file has a header but no data rows.")
    return ParsedTable(frame=frame, file_format="csv", encoding=encoding, delimiter=delimiter)


def parse_parquet(data: bytes) -> ParsedTable:
    """Parse Parquet bytes, with a clear error when they are not Parquet."""
    if not data:
        raise TableError("The file is empty.")
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise TableError(f"The file is not a valid Parquet file ({exc}).") from exc
    names = [str(n) for n in table.column_names]
    _check_duplicates(names)
    frame = table.to_pandas()
    if frame.empty:
        raise TableError("The Parquet file has no rows.")
    return ParsedTable(frame=frame, file_format="parquet")


def parse_table(file_name: str, data: bytes, max_bytes: int | None = None) -> ParsedTable:
    """Validate and parse an uploaded file; raises TableError with a user-facing message."""
    if max_bytes is not None and len(data) > max_bytes:
        raise TableError(
            f"The file is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit."
        )
    if not data:
        raise TableError("The file is empty.")
    fmt = detect_format(file_name, data)
    return parse_parquet(data) if fmt == "parquet" else parse_csv(data)


def _top_values(series: pd.Series, n: int = 3) -> str:
    counts = series.value_counts(dropna=True).head(n)
    return ", ".join(f"{k} ({v})" for k, v in counts.items())


def _histogram(series: pd.Series) -> list[int]:
    values = series.dropna()
    if values.empty:
        return []
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        counts, _ = np.histogram(values.astype(float), bins=HISTOGRAM_BINS)
        return [int(c) for c in counts]
    return [int(c) for c in values.astype(str).value_counts().head(HISTOGRAM_BINS).to_numpy()]


def profile_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column: dtype, missing %, distinct, min/max/mean, top values, histogram."""
    rows = []
    n = len(frame)
    for name in frame.columns:
        col = frame[name]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        rows.append(
            {
                "column": str(name),
                "dtype": str(col.dtype),
                "missing_pct": round(100.0 * float(col.isna().sum()) / n, 2) if n else 0.0,
                "distinct": int(col.nunique(dropna=True)),
                "min": float(col.min()) if numeric and col.notna().any() else None,
                "max": float(col.max()) if numeric and col.notna().any() else None,
                "mean": float(col.mean()) if numeric and col.notna().any() else None,
                "top_values": _top_values(col),
                "histogram": _histogram(col),
            }
        )
    return pd.DataFrame(rows)


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Serialize a frame to Parquet (the stored, typed copy of a version)."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
