"""The Logs page's aggregates, computed in SQL over roll-ups and the raw rows of a window's edges.

A window [since, until) is read as whole roll-up bins of the coarsest grains that nest in the
chart bins (`rollups.cover`) plus the raw rows of its ragged edges (under a minute each side),
so counts equal a direct count of the raw rows, and the work depends on the window and the
chart bins, not on how many requests they hold. Percentiles are read from the summed latency
buckets with window functions: the first bucket whose running count reaches rank ceil(q * n).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from lib.appinsights import (
    CODE_COLUMNS,
    STATUS_COLUMNS,
    SUMMARY_COLUMNS,
    RequestKpis,
    TelemetryQuery,
)
from lib.local.telemetry.rollups import (
    PERCENTILE_ERROR,
    US,
    bucket_of,
    bucket_values,
    cover,
    decode_hist,
    epoch,
    grains_for,
)
from lib.local.telemetry.schema import iso_utc

# Windows without an end run to here (2100-01-01); without a start, from the epoch.
FAR_FUTURE_S = 4_102_444_800
PERCENTILES = (50, 95, 99)
KEY_COLUMNS = ("Endpoint", "Deployment", "ResultCode")
_RAW_TIME = "CAST(strftime('%s', TimeGenerated) AS INTEGER)"


def span_us(query: TelemetryQuery) -> tuple[int, int]:
    """The query's window in epoch microseconds (open ends: the epoch, 2100)."""
    since = query.since.timestamp() if query.since is not None else 0
    until = query.until.timestamp() if query.until is not None else FAR_FUTURE_S
    return round(since * US), round(until * US)


def _iso_us(us: int) -> str:
    return iso_utc(datetime.fromtimestamp(us // US, UTC).replace(microsecond=us % US))


def _source(
    query: TelemetryQuery, bin_s: int | None, rollup: str, rollup_cols: str, raw_cols: str
) -> tuple[str, list]:
    """UNION ALL of the window's roll-up bins and raw edge rows, with a `T` time column."""
    if bin_s is not None and (bin_s <= 0 or bin_s % 60):
        raise ValueError(f"bin_s must be a positive multiple of 60 seconds, got {bin_s}")
    since_us, until_us = span_us(query)
    pieces, raw = cover(since_us, until_us, grains_for(bin_s))
    endpoint = "" if query.endpoint is None else " AND Endpoint = ?"
    extra = [] if query.endpoint is None else [query.endpoint]
    parts, params = [], []
    for grain, start, end in pieces:
        parts.append(
            f"SELECT BinStart AS T, {rollup_cols} FROM {rollup}"
            f" WHERE Grain = ? AND BinStart >= ? AND BinStart < ?{endpoint}"
        )
        params += [grain, start, end, *extra]
    for start, end in raw:
        parts.append(
            f"SELECT {_RAW_TIME} AS T, {raw_cols} FROM AppRequests"
            f" WHERE TimeGenerated >= ? AND TimeGenerated < ?{endpoint}"
        )
        params += [_iso_us(start), _iso_us(end), *extra]
    if not parts:  # an empty window
        parts.append(f"SELECT 0 AS T, {rollup_cols} FROM {rollup} WHERE 0")
    return " UNION ALL ".join(parts), params


def _bin(bin_s: int | None) -> str:
    return f"(T / {int(bin_s)}) * {int(bin_s)}" if bin_s else "0"


def count_rows(
    conn: sqlite3.Connection, query: TelemetryQuery, bin_s: int | None, keys: Sequence[str]
) -> pd.DataFrame:
    """Bin, keys..., Requests, Failed, SumMs, MinMs, MaxMs."""
    source, params = _source(
        query,
        bin_s,
        "RequestRollup",
        "Endpoint, Deployment, ResultCode, Requests, Failed, SumMs, MinMs, MaxMs",
        "coalesce(Endpoint, '') AS Endpoint, coalesce(Deployment, '') AS Deployment,"
        " ResultCode, 1 AS Requests, 1 - Success AS Failed, DurationMs AS SumMs,"
        " DurationMs AS MinMs, DurationMs AS MaxMs",
    )
    group = ", ".join(["Bin", *keys])
    sql = (
        f"SELECT {_bin(bin_s)} AS Bin{''.join(', ' + k for k in keys)}, SUM(Requests),"
        f" SUM(Failed), SUM(SumMs), MIN(MinMs), MAX(MaxMs) FROM ({source}) GROUP BY {group}"
    )
    columns = ["Bin", *keys, "Requests", "Failed", "SumMs", "MinMs", "MaxMs"]
    return pd.DataFrame(conn.execute(sql, params).fetchall(), columns=columns)


def _histograms(
    conn: sqlite3.Connection, query: TelemetryQuery, bin_s: int | None, keys: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The groups (Bin, keys...) and their summed latency histograms, one row per group."""
    if bin_s is not None and (bin_s <= 0 or bin_s % 60):
        raise ValueError(f"bin_s must be a positive multiple of 60 seconds, got {bin_s}")
    since_us, until_us = span_us(query)
    pieces, raw = cover(since_us, until_us, grains_for(bin_s))
    endpoint = "" if query.endpoint is None else " AND Endpoint = ?"
    extra = [] if query.endpoint is None else [query.endpoint]
    picks = [("Endpoint", "Deployment").index(k) for k in keys]
    index: dict[tuple, int] = {}
    gids, buckets, counts = [], [], []

    def add(
        t: int, names: tuple[str, str], hist_buckets: np.ndarray, hist_counts: np.ndarray
    ) -> None:
        key = (t // bin_s * bin_s if bin_s else 0, *(names[i] for i in picks))
        gid = index.setdefault(key, len(index))
        gids.append(np.full(len(hist_buckets), gid))
        buckets.append(hist_buckets)
        counts.append(hist_counts)

    if pieces:
        sql = " UNION ALL ".join(
            "SELECT BinStart, Endpoint, Deployment, Hist FROM LatencyRollup"
            f" WHERE Grain = ? AND BinStart >= ? AND BinStart < ?{endpoint}"
            for _ in pieces
        )
        params = [v for grain, a, b in pieces for v in (grain, a, b, *extra)]
        for t, e, d, blob in conn.execute(sql, params):
            hist = decode_hist(blob)
            add(t, (e, d), hist["bucket"], hist["count"])
    for start, end in raw:
        rows = conn.execute(
            "SELECT TimeGenerated, Endpoint, Deployment, DurationMs FROM AppRequests"
            f" WHERE TimeGenerated >= ? AND TimeGenerated < ?{endpoint}",
            [_iso_us(start), _iso_us(end), *extra],
        )
        for t, e, d, ms in rows:
            one = np.array([bucket_of(ms)])
            add(int(epoch(t)), (e or "", d or ""), one, np.ones(1, np.int64))
    groups = pd.DataFrame(list(index), columns=["Bin", *keys])
    if not index:
        return groups, np.zeros((0, 1), np.int64)
    gid = np.concatenate(gids)
    bucket = np.concatenate(buckets).astype(np.int64)
    width = int(bucket.max()) + 1
    flat = np.bincount(
        gid * width + bucket, weights=np.concatenate(counts), minlength=len(index) * width
    )
    return groups, flat.astype(np.int64).reshape(len(index), width)


def histogram(conn: sqlite3.Connection, query: TelemetryQuery) -> pd.DataFrame:
    """Bucket, Requests over the whole window (buckets with requests, ascending)."""
    _, matrix = _histograms(conn, query, None, [])
    row = matrix.sum(axis=0)
    found = np.flatnonzero(row)
    return pd.DataFrame({"Bucket": found, "Requests": row[found]})


def percentile_rows(
    conn: sqlite3.Connection, query: TelemetryQuery, bin_s: int | None, keys: Sequence[str]
) -> pd.DataFrame:
    """Bin, keys..., p50, p95, p99 (ms, nearest rank within one bucket)."""
    groups, matrix = _histograms(conn, query, bin_s, keys)
    cum = matrix.cumsum(axis=1)
    total = cum[:, -1] if len(cum) else np.zeros(0)
    for q in PERCENTILES:
        rank = np.maximum(1, np.ceil(q / 100 * total - 1e-9))
        # The first bucket whose running count reaches the rank.
        groups[f"p{q}"] = bucket_values((cum >= rank[:, None]).argmax(axis=1))
    return groups


def _clamp(frame: pd.DataFrame) -> pd.DataFrame:
    # A percentile lies between the fastest and the slowest request it is taken over.
    for name in (f"p{q}" for q in PERCENTILES):
        frame[name] = np.clip(frame[name].to_numpy(dtype=float), frame["MinMs"], frame["MaxMs"])
    return frame


def _times(bins: pd.Series) -> pd.Series:
    return pd.to_datetime(bins.astype("int64"), unit="s", utc=True)


def summary(
    conn: sqlite3.Connection,
    query: TelemetryQuery,
    bin_s: int,
    by: Sequence[str] = ("Endpoint", "Deployment"),
) -> pd.DataFrame:
    """`SUMMARY_COLUMNS` per bin and `by` columns (those not split by hold "")."""
    keys = [k for k in ("Endpoint", "Deployment") if k in by]
    unknown = set(by) - {"Endpoint", "Deployment"}
    if unknown:
        raise ValueError(f"summary splits by Endpoint and/or Deployment, not {sorted(unknown)}")
    counts = count_rows(conn, query, bin_s, keys)
    if counts.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    frame = _clamp(counts.merge(percentile_rows(conn, query, bin_s, keys), on=["Bin", *keys]))
    for column in ("Endpoint", "Deployment"):
        if column not in keys:
            frame[column] = ""
    frame["MeanMs"] = frame["SumMs"] / frame["Requests"]
    frame["TimeGenerated"] = _times(frame["Bin"])
    frame = frame.astype({"Requests": "int64", "Failed": "int64"})
    return frame.sort_values(["Bin", *keys], ignore_index=True)[SUMMARY_COLUMNS]


def result_codes(conn: sqlite3.Connection, query: TelemetryQuery, bin_s: int) -> pd.DataFrame:
    """`CODE_COLUMNS`: requests per bin and result code."""
    counts = count_rows(conn, query, bin_s, ["ResultCode"])
    if counts.empty:
        return pd.DataFrame(columns=CODE_COLUMNS)
    counts["TimeGenerated"] = _times(counts["Bin"])
    counts["Requests"] = counts["Requests"].astype("int64")
    return counts.sort_values(["Bin", "ResultCode"], ignore_index=True)[CODE_COLUMNS]


def status_codes(conn: sqlite3.Connection, query: TelemetryQuery) -> pd.DataFrame:
    """`STATUS_COLUMNS`: requests per result code, most frequent first."""
    counts = count_rows(conn, query, None, ["ResultCode"])
    if counts.empty:
        return pd.DataFrame(columns=STATUS_COLUMNS)
    counts["Requests"] = counts["Requests"].astype("int64")
    order = counts.sort_values(["Requests", "ResultCode"], ascending=[False, True])
    return order.reset_index(drop=True)[STATUS_COLUMNS]


def kpis(conn: sqlite3.Connection, query: TelemetryQuery) -> RequestKpis:
    """The window's tiles."""
    counts = count_rows(conn, query, None, [])
    total = int(counts["Requests"].fillna(0).sum()) if not counts.empty else 0
    if not total:
        return RequestKpis(percentile_error=PERCENTILE_ERROR)
    row = _clamp(counts.merge(percentile_rows(conn, query, None, []), on="Bin")).iloc[0]
    return RequestKpis(
        requests=total,
        failed=int(row["Failed"]),
        p50=float(row["p50"]),
        p95=float(row["p95"]),
        p99=float(row["p99"]),
        mean_ms=float(row["SumMs"]) / total,
        percentile_error=PERCENTILE_ERROR,
    )
