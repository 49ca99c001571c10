"""Column profile of a table: kind, dtype, missing (and which tokens), distinct, range, counts.

Computed with Arrow kernels column by column (a 20,000-column table takes seconds, not minutes),
as JSON-safe records so a backend can store them beside the version and pages read them back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lib.tabular.columns import pandas_dtypes
from lib.tabular.reading import frame_to_table

HISTOGRAM_BINS = 12
TOP_VALUES = 3
NUMERIC_BLOCK_BYTES = 8 << 20
PROFILE_COLUMNS = (
    "column",
    "kind",
    "dtype",
    "missing_pct",
    "missing_tokens",
    "distinct",
    "min",
    "max",
    "mean",
    "top_values",
    "histogram",
)


def column_kind(data_type: pa.DataType) -> str:
    """numeric, boolean, datetime or text: how the column is read and shown."""
    if pa.types.is_dictionary(data_type):
        return column_kind(data_type.value_type)
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
        return "numeric"
    if pa.types.is_decimal(data_type):
        return "numeric"
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
        return "datetime"
    return "text"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _label(value: Any) -> str:
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ")
        return text[:-9] if text.endswith(" 00:00:00") else text
    return str(value)


def format_tokens(recognised: Mapping[str, int]) -> str:
    """`"?" (263), (empty) (5)`: the tokens read as missing, most frequent first."""
    ordered = sorted(recognised.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{f'{chr(34)}{t}{chr(34)}' if t else '(empty)'} ({n})" for t, n in ordered)


def _record(name: str, kind: str, dtype: str, rows: int, missing: int, tokens: str) -> dict:
    return {
        "column": name,
        "kind": kind,
        "dtype": dtype,
        "missing_pct": round(100.0 * missing / rows, 2) if rows else 0.0,
        "missing_tokens": tokens,
        "distinct": 0,
        "min": None,
        "max": None,
        "mean": None,
        "top_values": "",
        "histogram": [],
    }


def _counted_record(record: dict, column: pa.ChunkedArray) -> dict:
    """Text and booleans: distinct, top values and the most frequent counts, with Arrow."""
    valid = column.drop_null()
    if len(valid) == 0:
        return record
    counted = pc.value_counts(valid)
    order = pc.array_sort_indices(counted.field("counts"), order="descending")
    top = counted.take(order.slice(0, HISTOGRAM_BINS))
    values, counts = top.field("values").to_pylist(), top.field("counts").to_pylist()
    record["distinct"] = len(counted)
    record["top_values"] = ", ".join(
        f"{_label(v)} ({c})" for v, c in zip(values[:TOP_VALUES], counts, strict=False)
    )
    record["histogram"] = [int(c) for c in counts]
    return record


def _histograms(ordered: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """np.histogram's 12 bins of every column of a column-sorted block (finite values only)."""
    rows, k = ordered.shape
    cols = np.arange(k)
    low_at = (ordered == -np.inf).sum(axis=0)
    high_at = valid - (ordered == np.inf).sum(axis=0) - 1
    has = high_at >= low_at
    low = np.where(has, ordered[np.minimum(low_at, rows - 1), cols], 0.0)
    high = np.where(has, ordered[np.clip(high_at, 0, rows - 1), cols], 0.0)
    span = high - low
    with np.errstate(invalid="ignore"):
        bins = (ordered - low) / np.where(span > 0, span, 1.0) * HISTOGRAM_BINS
        np.floor(bins, out=bins)
        np.clip(bins, 0, HISTOGRAM_BINS - 1, out=bins)
        # np.histogram centres a single value: range (v - 0.5, v + 0.5) puts it in the middle.
        bins[:, span == 0] = HISTOGRAM_BINS // 2
        bins += cols * HISTOGRAM_BINS
    index = bins[np.isfinite(ordered)].astype(np.int64)
    counts = np.bincount(index, minlength=k * HISTOGRAM_BINS)
    return counts.reshape(k, HISTOGRAM_BINS)


def _numeric_records(records: list[dict], columns: list[pa.ChunkedArray], datetimes: bool) -> None:
    """Fill min/max/mean, distinct, top values and histogram for a block of numeric columns.

    One 2-D array per block, sorted column-wise: numpy reductions over it give every column's
    statistics without a round trip through Arrow per column (20,000 columns in seconds).
    """
    names = [str(i) for i in range(len(columns))]
    if datetimes:
        columns = [c.cast(pa.timestamp("us")).cast(pa.int64()) for c in columns]
    frame = pa.table(columns, names=names).to_pandas()
    ordered = np.sort(frame.to_numpy(dtype=np.float64, na_value=np.nan), axis=0)
    del frame
    rows = ordered.shape[0]
    valid = rows - np.isnan(ordered).sum(axis=0)  # NaN (missing) sorts last
    present = ~np.isnan(ordered)
    with np.errstate(invalid="ignore", over="ignore"):
        totals = np.add.reduce(ordered, axis=0, where=present)
    del present
    hist = _histograms(ordered, valid)
    for j, record in enumerate(records):
        values = ordered[: valid[j], j]
        if len(values) == 0:
            continue
        starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
        record["distinct"] = len(starts)
        record["histogram"] = [int(c) for c in hist[j]] if hist[j].any() else []
        if datetimes:
            low, high = (np.datetime64(int(v), "us").item() for v in (values[0], values[-1]))
            record["top_values"] = f"{_label(low)} … {_label(high)}"
            continue
        record["min"], record["max"] = _plain(float(values[0])), _plain(float(values[-1]))
        record["mean"] = _plain(float(totals[j] / len(values)))
        counts = np.diff(np.append(starts, len(values)))
        integral = record["dtype"].startswith(("int", "uint"))
        top = np.argsort(-counts, kind="stable")[:TOP_VALUES]
        record["top_values"] = ", ".join(
            f"{_number(values[starts[i]], integral)} ({int(counts[i])})" for i in top
        )


def _number(value: float, integral: bool) -> str:
    return str(int(value)) if integral and math.isfinite(value) else str(float(value))


def profile_records(
    table: pa.Table, missing: Mapping[str, Mapping[str, int]] | None = None
) -> list[dict[str, Any]]:
    """One JSON-safe record per column of the table."""
    missing = missing or {}
    dtypes = pandas_dtypes(table.schema)
    rows = table.num_rows
    records: list[dict[str, Any]] = []
    numeric: dict[bool, list[tuple[dict, pa.ChunkedArray]]] = {False: [], True: []}
    for name, column in zip(table.column_names, table.columns, strict=True):
        name = str(name)
        kind = column_kind(column.type)
        lost = column.null_count
        if pa.types.is_floating(column.type):
            lost += int(pc.sum(pc.is_nan(column)).as_py() or 0)
        record = _record(name, kind, dtypes[name], rows, lost, format_tokens(missing.get(name, {})))
        records.append(record)
        if kind in ("numeric", "datetime"):
            numeric[kind == "datetime"].append((record, column))
        else:
            _counted_record(record, column)
    # Blocks of about NUMERIC_BLOCK_BYTES: wide tables vectorise, long ones stay in budget.
    per_block = max(1, NUMERIC_BLOCK_BYTES // max(1, rows * 8))
    for datetimes, items in numeric.items():
        for start in range(0, len(items), per_block):
            part = items[start : start + per_block]
            _numeric_records([r for r, _ in part], [c for _, c in part], datetimes)
    return records


def profile_from_records(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The profile as the DataFrame pages show (one row per column)."""
    frame = pd.DataFrame.from_records(records, columns=list(PROFILE_COLUMNS))
    for col in ("min", "max", "mean"):
        frame[col] = frame[col].astype("float64")
    return frame


def profile_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Profile of a pandas frame (no missing-token information)."""
    return profile_from_records(profile_records(frame_to_table(frame)))
