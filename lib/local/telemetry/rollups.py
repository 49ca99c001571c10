"""Request roll-ups: counts and a log-spaced latency histogram per time bin, endpoint, deployment.

The writer adds every batch of raw rows to the roll-ups of all grains in the same transaction,
so a window's counts are exact: `cover` splits it into whole bins of the coarsest grains that
fit plus raw rows at its ragged edges (under a minute on each side).

Latency buckets grow by `BUCKET_RATIO`; a bucket reads as its geometric midpoint, so a
percentile taken from bucket counts is within `PERCENTILE_ERROR` (2 %) of the raw-row
percentile of the same rank (nearest rank: the value at rank ceil(q * n)).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np

from lib.local.telemetry.schema import GRAINS

BUCKET_RATIO = 1.04
MIN_MS = 0.001  # durations at or below 1 µs share bucket 0, which reads as 0 ms
PERCENTILE_ERROR = math.sqrt(BUCKET_RATIO) - 1
_LOG_RATIO = math.log(BUCKET_RATIO)
BASE_GRAIN = GRAINS[0]
US = 1_000_000

_COUNTS_UPSERT = """
INSERT INTO RequestRollup (Grain, BinStart, Endpoint, Deployment, ResultCode, Requests, Failed,
                           SumMs, MinMs, MaxMs)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (Grain, BinStart, Endpoint, Deployment, ResultCode) DO UPDATE SET
    Requests = Requests + excluded.Requests,
    Failed = Failed + excluded.Failed,
    SumMs = SumMs + excluded.SumMs,
    MinMs = min(MinMs, excluded.MinMs),
    MaxMs = max(MaxMs, excluded.MaxMs)
"""
_LATENCY_UPSERT = """
INSERT INTO LatencyRollup (Grain, BinStart, Endpoint, Deployment, Requests, Hist)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (Grain, BinStart, Endpoint, Deployment) DO UPDATE SET
    Requests = Requests + excluded.Requests,
    Hist = hist_add(Hist, excluded.Hist)
"""
# A histogram is stored sparse: (bucket, count) pairs, buckets ascending.
HIST_DTYPE = np.dtype([("bucket", "<u2"), ("count", "<u4")])


def encode_hist(buckets: Sequence[int], counts: Sequence[int]) -> bytes:
    """Sparse histogram bytes from parallel bucket and count lists."""
    out = np.empty(len(buckets), HIST_DTYPE)
    out["bucket"], out["count"] = buckets, counts
    return out[np.argsort(out["bucket"], kind="stable")].tobytes()


def decode_hist(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, HIST_DTYPE)


def hist_add(a: bytes | None, b: bytes | None) -> bytes | None:
    """SQLite function: the sum of two stored histograms."""
    if a is None or b is None:
        return a if b is None else b
    both = np.concatenate([decode_hist(a), decode_hist(b)])
    buckets, where = np.unique(both["bucket"], return_inverse=True)
    return encode_hist(buckets, np.bincount(where, weights=both["count"]).astype(np.int64))


def bucket_of(ms: float) -> int:
    """The latency bucket of a duration in ms."""
    if not ms > MIN_MS:  # also NaN
        return 0
    return 1 + int(math.log(ms / MIN_MS) / _LOG_RATIO)


def bucket_values(buckets: np.ndarray | Sequence[int]) -> np.ndarray:
    """The duration each bucket reads as: its geometric midpoint (bucket 0: 0 ms)."""
    b = np.asarray(buckets, dtype=float)
    values = MIN_MS * np.power(BUCKET_RATIO, b - 0.5)
    return np.where(b > 0, values, 0.0)


def bucket_floor(bucket: int) -> float:
    """The smallest duration in a bucket."""
    return 0.0 if bucket <= 0 else MIN_MS * BUCKET_RATIO ** (bucket - 1)


class Rollup:
    """A batch of requests summed per minute and key, to be added to every grain's roll-ups."""

    __slots__ = ("counts", "latency")

    def __init__(self) -> None:
        # (minute, endpoint, deployment, code) -> [requests, failed, sum_ms, min_ms, max_ms]
        self.counts: dict[tuple, list] = {}
        # (minute, endpoint, deployment, bucket) -> requests
        self.latency: dict[tuple, int] = {}

    def add(
        self, t: float, endpoint: str, deployment: str, code: str, failed: bool, ms: float
    ) -> None:
        minute = int(t) // BASE_GRAIN * BASE_GRAIN
        key = (minute, endpoint, deployment, code)
        c = self.counts.get(key)
        if c is None:
            self.counts[key] = [1, int(failed), ms, ms, ms]
        else:
            c[0] += 1
            c[1] += failed
            c[2] += ms
            if ms < c[3]:
                c[3] = ms
            elif ms > c[4]:
                c[4] = ms
        lkey = (minute, endpoint, deployment, bucket_of(ms))
        self.latency[lkey] = self.latency.get(lkey, 0) + 1

    def __bool__(self) -> bool:
        return bool(self.counts)

    def rows(self, grains: Sequence[int] = GRAINS) -> tuple[list[tuple], list[tuple]]:
        """Upsert parameters for the counts and latency tables, every grain."""
        counts: list[tuple] = []
        latency: list[tuple] = []
        for grain in grains:
            if grain == BASE_GRAIN:
                folded_c = self.counts
                folded_l = self.latency
            else:
                folded_c, folded_l = {}, {}
                for (t, e, d, code), (n, f, s, lo, hi) in self.counts.items():
                    key = (t // grain * grain, e, d, code)
                    c = folded_c.get(key)
                    if c is None:
                        folded_c[key] = [n, f, s, lo, hi]
                    else:
                        c[0] += n
                        c[1] += f
                        c[2] += s
                        c[3] = min(c[3], lo)
                        c[4] = max(c[4], hi)
                for (t, e, d, b), n in self.latency.items():
                    key = (t // grain * grain, e, d, b)
                    folded_l[key] = folded_l.get(key, 0) + n
            counts.extend((grain, *key, *values) for key, values in folded_c.items())
            hists: dict[tuple, tuple[list, list]] = {}
            for (t, e, d, b), n in folded_l.items():
                buckets, ns = hists.setdefault((t, e, d), ([], []))
                buckets.append(b)
                ns.append(n)
            latency.extend(
                (grain, *key, sum(ns), encode_hist(buckets, ns))
                for key, (buckets, ns) in hists.items()
            )
        return counts, latency

    def write(self, conn: sqlite3.Connection, grains: Sequence[int] = GRAINS) -> None:
        """Add this batch to the roll-ups (inside the caller's transaction)."""
        counts, latency = self.rows(grains)
        conn.executemany(_COUNTS_UPSERT, counts)
        conn.executemany(_LATENCY_UPSERT, latency)


def epoch(value: str) -> float:
    """Epoch seconds of a stored ISO timestamp."""
    return datetime.fromisoformat(value).timestamp()


def add_raw_rows(rollup: Rollup, rows: Iterable[tuple]) -> None:
    """Add stored rows (TimeGenerated, Endpoint, Deployment, ResultCode, Success, DurationMs)."""
    for t, endpoint, deployment, code, success, ms in rows:
        rollup.add(epoch(t), endpoint or "", deployment or "", str(code), not success, float(ms))


def rebuild_rollups(conn: sqlite3.Connection, chunk: int = 100_000) -> int:
    """Recompute every request roll-up from the raw rows (a store written before roll-ups)."""
    conn.execute("DELETE FROM RequestRollup")
    conn.execute("DELETE FROM LatencyRollup")
    cursor = conn.execute(
        "SELECT TimeGenerated, Endpoint, Deployment, ResultCode, Success, DurationMs"
        " FROM AppRequests"
    )
    total = 0
    while rows := cursor.fetchmany(chunk):
        rollup = Rollup()
        add_raw_rows(rollup, rows)
        rollup.write(conn)
        total += len(rows)
    return total


def cover(
    since_us: int, until_us: int, grains: Sequence[int]
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """[since, until) in epoch µs as whole roll-up bins (grain, start s, end s) and raw pieces (µs).

    Coarsest grains first; `grains` is sorted here. Raw pieces are what no grain covers whole.
    """
    order = sorted(grains, reverse=True)
    pieces: list[tuple[int, int, int]] = []
    raw: list[tuple[int, int]] = []

    def split(s: int, u: int, level: int) -> None:
        if s >= u:
            return
        if level == len(order):
            raw.append((s, u))
            return
        g = order[level] * US
        a, b = -(-s // g) * g, u // g * g
        if a >= b:
            split(s, u, level + 1)
            return
        split(s, a, level + 1)
        pieces.append((order[level], a // US, b // US))
        split(b, u, level + 1)

    split(since_us, until_us, 0)
    return pieces, raw


def grains_for(bin_s: int | None) -> list[int]:
    """Grains whose bins nest in chart bins of `bin_s` seconds (all of them without a bin)."""
    if not bin_s:
        return list(GRAINS)
    return [g for g in GRAINS if g <= bin_s and bin_s % g == 0]
