"""Retention: raw rows and roll-ups each kept for a set time, pruned in small batches.

Minute and quarter-hour roll-ups (and 5-minute drift counts) go with the raw rows; hour and
day roll-ups are kept longer. SQLite reuses the pages freed by a delete, so once the oldest
rows fall out of the window the file stops growing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from lib.local.telemetry.schema import DRIFT_GRAINS, GRAINS, iso_utc
from lib.settings import MonitoringSettings

DAY_S = 86400
ROLLUP_TABLES = ("RequestRollup", "LatencyRollup")
# Bins per delete batch of one roll-up grain (bounded rows per transaction).
BINS_PER_BATCH = 240


@dataclass(frozen=True)
class Retention:
    """How long rows are kept, and how often a writer looks for rows past that."""

    raw_days: float = 30.0
    rollup_days: float = 400.0
    interval_s: float = 600.0
    batch_rows: int = 5000

    @classmethod
    def from_settings(cls, settings: MonitoringSettings) -> Retention:
        return cls(raw_days=settings.raw_days, rollup_days=settings.rollup_days)

    def cutoffs(self, now: float) -> tuple[float, float]:
        """(raw, roll-up) cut-off times: rows older than these go."""
        return now - self.raw_days * DAY_S, now - self.rollup_days * DAY_S

    def keep_days(self, grain: int) -> float:
        """Fine grains (under an hour) live as long as raw rows, coarse ones as roll-ups."""
        return self.raw_days if grain < 3600 else self.rollup_days


def _delete_raw(conn: sqlite3.Connection, table: str, cutoff: str, limit: int) -> int:
    cursor = conn.execute(
        f"DELETE FROM {table} WHERE rowid IN"
        f" (SELECT rowid FROM {table} WHERE TimeGenerated < ? LIMIT ?)",
        (cutoff, limit),
    )
    return cursor.rowcount


def _delete_bins(conn: sqlite3.Connection, table: str, grain: int, cutoff: int) -> bool:
    """Delete one batch of `grain` rows older than `cutoff`; True if older ones remain."""
    oldest = conn.execute(
        f"SELECT MIN(BinStart) FROM {table} WHERE Grain = ?", (grain,)
    ).fetchone()[0]
    if oldest is None or oldest >= cutoff:
        return False
    upto = min(cutoff, oldest + grain * BINS_PER_BATCH)
    conn.execute(f"DELETE FROM {table} WHERE Grain = ? AND BinStart < ?", (grain, upto))
    return upto < cutoff


def prune_batch(conn: sqlite3.Connection, now: float, retention: Retention) -> bool:
    """Delete one batch of rows past retention in one short transaction; True if more remain."""
    raw_cut, _ = retention.cutoffs(now)
    more = False
    with conn:
        for table in ("AppRequests", "AppTraces"):
            deleted = _delete_raw(conn, table, iso_utc(raw_cut), retention.batch_rows)
            more = more or deleted >= retention.batch_rows
        for table, grains in ((t, GRAINS) for t in ROLLUP_TABLES):
            for grain in grains:
                cut = int(now - retention.keep_days(grain) * DAY_S)
                more = _delete_bins(conn, table, grain, cut) or more
        for grain in DRIFT_GRAINS:
            cut = int(now - retention.keep_days(grain) * DAY_S)
            more = _delete_bins(conn, "DriftRollup", grain, cut) or more
    return more


def prune(conn: sqlite3.Connection, now: float, retention: Retention) -> int:
    """Prune until nothing is past retention; the number of batches it took."""
    batches = 1
    while prune_batch(conn, now, retention):
        batches += 1
    return batches


class Pruner:
    """Runs `prune_batch` from the writer's thread: every `interval_s`, then batch by batch."""

    def __init__(
        self, conn: sqlite3.Connection, retention: Retention, clock: Callable[[], float] = time.time
    ) -> None:
        self.conn = conn
        self.retention = retention
        self.clock = clock
        self._next = 0.0
        self._pending = False

    def step(self) -> bool:
        """Prune one batch if one is due; True if it pruned."""
        now = self.clock()
        if not self._pending and now < self._next:
            return False
        self._next = now + self.retention.interval_s
        self._pending = prune_batch(self.conn, now, self.retention)
        return True
