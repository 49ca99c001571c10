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
) -> list[tuple]:
    """(Bin, keys..., Requests, Failed, SumMs, MinMs, MaxMs) rows, ordered by bin and keys."""
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
        f" SUM(Failed), SUM(SumMs), MIN(MinMs), MAX(MaxMs) FROM ({source})"
        f" GROUP BY {group} ORDER BY {group}"
    )
    return conn.execute(sql, params).fetchall()


def _histograms(
    conn: sqlite3.Connection, query: TelemetryQuery, bin_s: int | None, keys: Sequence[str]
) -> tuple[dict[tuple, int], np.ndarray]:
    """Groups (Bin, keys...) -> row of their summed latency histograms (a bucket per column)."""
    if bin_s is not None and (bin_s <= 0 or bin_s % 60):
        raise ValueError(f"bin_s must be a positive multiple of 60 seconds, got {bin_s}")
    since_us, until_us = span_us(query)
    pieces, raw = cover(since_us, until_us, grains_for(bin_s))
    endpoint = "" if query.endpoint is None else " AND Endpoint = ?"
    extra = [] if query.endpoint is None else [query.endpoint]
    picks = [("Endpoint", "Deployment").index(k) for k in keys]
    index: dict[tuple, int] = {}
    gids: list[np.ndarray] = []
    buckets: list[np.ndarray] = []
    counts: list[np.ndarray] = []

    def group(t: int, names: tuple[str, str]) -> int:
        key = (t // bin_s * bin_s if bin_s else 0, *(names[i] for i in picks))
        return index.setdefault(key, len(index))

    if pieces:
        sql = " UNION ALL ".join(
            "SELECT BinStart, Endpoint, Deployment, Hist FROM LatencyRollup"
            f" WHERE Grain = ? AND BinStart >= ? AND BinStart < ?{endpoint}"
            for _ in pieces
        )
        params = [v for grain, a, b in pieces for v in (grain, a, b, *extra)]
        for t, e, d, blob in conn.execute(sql, params):
            hist = decode_hist(blob)
            gids.append(np.full(len(hist), group(t, (e, d))))
            buckets.append(hist["bucket"])
            counts.append(hist["count"])
    edge_gids: list[int] = []
    edge_buckets: list[int] = []
    for start, end in raw:
        rows = conn.execute(
            "SELECT TimeGenerated, Endpoint, Deployment, DurationMs FROM AppRequests"
            f" WHERE TimeGenerated >= ? AND TimeGenerated < ?{endpoint}",
            [_iso_us(start), _iso_us(end), *extra],
        )
        for t, e, d, ms in rows:
            edge_gids.append(group(int(epoch(t)), (e or "", d or "")))
            edge_buckets.append(bucket_of(ms))
    if edge_gids:
        gids.append(np.array(edge_gids))
        buckets.append(np.array(edge_buckets))
        counts.append(np.ones(len(edge_gids), np.int64))
    if not index:
        return index, np.zeros((0, 1), np.int64)
    gid = np.concatenate(gids)
    bucket = np.concatenate(buckets).astype(np.int64)
    width = int(bucket.max()) + 1
    flat = np.bincount(
        gid * width + bucket, weights=np.concatenate(counts), minlength=len(index) * width
    )
    return index, flat.astype(np.int64).reshape(len(index), width)


def _percentiles(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """p50/p95/p99 per row of histograms: the first bucket whose running count reaches the
    rank ceil(q * n), read as that bucket's midpoint."""
    cum = matrix.cumsum(axis=1)
    total = cum[:, -1] if len(cum) else np.zeros(0)
    out = {}
    for q in PERCENTILES:
        rank = np.maximum(1, np.ceil(q / 100 * total - 1e-9))
        out[f"p{q}"] = bucket_values((cum >= rank[:, None]).argmax(axis=1))
    return out


def histogram(conn: sqlite3.Connection, query: TelemetryQuery) -> pd.DataFrame:
    """Bucket, Requests over the whole window (buckets with requests, ascending)."""
    _, matrix = _histograms(conn, query, None, [])
    row = matrix.sum(axis=0)
    found = np.flatnonzero(row)
    return pd.DataFrame({"Bucket": found, "Requests": row[found]})


def _times(bins: Sequence[int]) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(bins, dtype="int64"), unit="s", utc=True)


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
    rows = count_rows(conn, query, bin_s, keys)
    if not rows:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    index, matrix = _histograms(conn, query, bin_s, keys)
    pct = _percentiles(matrix)
    n = len(keys)
    at = np.array([index[row[: n + 1]] for row in rows])
    requests = np.array([r[n + 1] for r in rows], dtype=np.int64)
    sums = np.array([r[n + 3] for r in rows], dtype=float)
    # A percentile lies between the fastest and the slowest request it is taken over.
    low = np.array([r[n + 4] for r in rows], dtype=float)
    high = np.array([r[n + 5] for r in rows], dtype=float)
    columns = {
        "TimeGenerated": _times([r[0] for r in rows]),
        "Endpoint": [r[1 + keys.index("Endpoint")] for r in rows] if "Endpoint" in keys else "",
        "Deployment": (
            [r[1 + keys.index("Deployment")] for r in rows] if "Deployment" in keys else ""
        ),
        "Requests": requests,
        "Failed": np.array([r[n + 2] for r in rows], dtype=np.int64),
        **{name: np.clip(values[at], low, high) for name, values in pct.items()},
        "MeanMs": sums / requests,
    }
    return pd.DataFrame(columns)[SUMMARY_COLUMNS]


def result_codes(conn: sqlite3.Connection, query: TelemetryQuery, bin_s: int) -> pd.DataFrame:
    """`CODE_COLUMNS`: requests per bin and result code."""
    rows = count_rows(conn, query, bin_s, ["ResultCode"])
    if not rows:
        return pd.DataFrame(columns=CODE_COLUMNS)
    return pd.DataFrame(
        {
            "TimeGenerated": _times([r[0] for r in rows]),
            "ResultCode": [str(r[1]) for r in rows],
            "Requests": np.array([r[2] for r in rows], dtype=np.int64),
        }
    )[CODE_COLUMNS]


def status_codes(conn: sqlite3.Connection, query: TelemetryQuery) -> pd.DataFrame:
    """`STATUS_COLUMNS`: requests per result code, most frequent first."""
    rows = sorted(count_rows(conn, query, None, ["ResultCode"]), key=lambda r: (-r[2], r[1]))
    return pd.DataFrame(
        {
            "ResultCode": [str(r[1]) for r in rows],
            "Requests": np.array([r[2] for r in rows], dtype=np.int64),
        }
    )[STATUS_COLUMNS]


def kpis(conn: sqlite3.Connection, query: TelemetryQuery) -> RequestKpis:
    """The window's tiles."""
    rows = count_rows(conn, query, None, [])
    if not rows or not rows[0][1]:
        return RequestKpis(percentile_error=PERCENTILE_ERROR)
    _, total, failed, sum_ms, low, high = rows[0]
    _, matrix = _histograms(conn, query, None, [])
    pct = {name: float(np.clip(v[0], low, high)) for name, v in _percentiles(matrix).items()}
    return RequestKpis(
        requests=int(total),
        failed=int(failed),
        p50=pct["p50"],
        p95=pct["p95"],
        p99=pct["p99"],
        mean_ms=float(sum_ms) / total,
        percentile_error=PERCENTILE_ERROR,
    )
