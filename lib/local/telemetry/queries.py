"""Reads of the telemetry store: the Logs page's aggregates (`aggregates`), limited raw tables
(recent, failed, slowest, traces by text), whole tables (`read_requests` / `read_traces`) and a
CSV export streamed with a cursor.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from lib.appinsights import (
    CODE_COLUMNS,
    COLUMNS,
    REQUEST_COLUMNS,
    STATUS_COLUMNS,
    SUMMARY_COLUMNS,
    TABLES,
    TRACE_COLUMNS,
    RequestKpis,
    TelemetryQuery,
    check_kind,
)
from lib.local.telemetry import aggregates
from lib.local.telemetry.rollups import PERCENTILE_ERROR, bucket_floor
from lib.local.telemetry.schema import connect, iso_utc

# Slowest requests: a row reached through the duration index (a random read) costs about this
# many rows of the window read in time order and sorted (measured on 10,000,000 rows).
RANDOM_ROW_COST = 15
CSV_CHUNK_ROWS = 50_000


# ----------------------------------------------------------------------------- raw tables


def _where(query: TelemetryQuery) -> tuple[str, list]:
    clauses, params = [], []
    if query.endpoint is not None:
        clauses.append("Endpoint = ?")
        params.append(query.endpoint)
    if query.since is not None:
        clauses.append("TimeGenerated >= ?")
        params.append(iso_utc(query.since))
    if query.until is not None:
        clauses.append("TimeGenerated < ?")
        params.append(iso_utc(query.until))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def build_query(kind: str, query: TelemetryQuery | None = None) -> tuple[str, list]:
    """SQL and parameters for `kind` rows in [since, until), oldest first; `limit` keeps the newest."""
    table, columns = TABLES[check_kind(kind)], COLUMNS[kind]
    query = query or TelemetryQuery()
    where, params = _where(query)
    cols = ", ".join(columns)
    if query.limit is None:
        return f"SELECT {cols} FROM {table}{where} ORDER BY TimeGenerated", params
    inner = f"SELECT rowid AS _r, {cols} FROM {table}{where} ORDER BY TimeGenerated DESC, _r DESC LIMIT ?"
    return f"SELECT {cols} FROM ({inner}) ORDER BY TimeGenerated, _r", [*params, query.limit]


def _typed(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    frame["TimeGenerated"] = pd.to_datetime(frame["TimeGenerated"], utc=True, format="ISO8601")
    if kind == "requests":
        frame["Success"] = frame["Success"].astype(bool)
        frame["ResultCode"] = frame["ResultCode"].astype(str)
        # Rows stored before the column existed hold NULL: no deployment named, as on Azure.
        frame["Deployment"] = frame["Deployment"].astype(object).fillna("").astype(str)
        frame["DurationMs"] = frame["DurationMs"].astype(float)
        frame["Rows"] = frame["Rows"].astype("Int64")
    else:
        frame["SeverityLevel"] = frame["SeverityLevel"].astype("Int64")
    return frame


def _empty(kind: str) -> pd.DataFrame:
    return _typed(kind, pd.DataFrame({c: [] for c in COLUMNS[kind]}))


def _frame(conn: sqlite3.Connection, kind: str, sql: str, params: list) -> pd.DataFrame:
    try:
        cursor = conn.execute(sql, params)
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return _empty(kind)
    columns = [d[0] for d in cursor.description]
    return _typed(kind, pd.DataFrame.from_records(cursor.fetchall(), columns=columns))


def _read(db_path: Path | str, kind: str, query: TelemetryQuery | None) -> pd.DataFrame:
    if not Path(db_path).exists():
        return _empty(kind)
    sql, params = build_query(kind, query)
    conn = connect(db_path)
    try:
        return _frame(conn, kind, sql, params)
    finally:
        conn.close()


def read_requests(db_path: Path | str, query: TelemetryQuery | None = None) -> pd.DataFrame:
    """Request rows (AppRequests columns) oldest first; `Success` as bool, `ResultCode` as text."""
    return _read(db_path, "requests", query)


def read_traces(db_path: Path | str, query: TelemetryQuery | None = None) -> pd.DataFrame:
    """Trace rows (AppTraces columns) oldest first."""
    return _read(db_path, "traces", query)


# ----------------------------------------------------------------------------- the reader


class TelemetryReader:
    """Queries over one telemetry database, on a small pool of reusable connections."""

    def __init__(self, db_path: Path | str, pool_size: int = 4) -> None:
        self.db_path = Path(db_path)
        self._idle: list[sqlite3.Connection] = []
        self._pool_size = pool_size
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = connect(self.db_path)
        try:
            yield conn
        finally:
            with self._lock:
                keep = len(self._idle) < self._pool_size
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    @property
    def exists(self) -> bool:
        return self.db_path.exists()

    def _aggregate(self, compute, empty):  # noqa: ANN001, ANN202
        if not self.exists:
            return empty
        with self.connection() as conn:
            return compute(conn)

    def summary(
        self,
        query: TelemetryQuery,
        bin_s: int,
        by: Sequence[str] = ("Endpoint", "Deployment"),
    ) -> pd.DataFrame:
        return self._aggregate(
            lambda c: aggregates.summary(c, query, bin_s, by), pd.DataFrame(columns=SUMMARY_COLUMNS)
        )

    def result_codes(self, query: TelemetryQuery, bin_s: int) -> pd.DataFrame:
        return self._aggregate(
            lambda c: aggregates.result_codes(c, query, bin_s), pd.DataFrame(columns=CODE_COLUMNS)
        )

    def kpis(self, query: TelemetryQuery) -> RequestKpis:
        return self._aggregate(
            lambda c: aggregates.kpis(c, query), RequestKpis(percentile_error=PERCENTILE_ERROR)
        )

    def status_codes(self, query: TelemetryQuery) -> pd.DataFrame:
        return self._aggregate(
            lambda c: aggregates.status_codes(c, query), pd.DataFrame(columns=STATUS_COLUMNS)
        )

    # --- raw rows, limited -------------------------------------------------------------

    def _requests(self, sql: str, params: list) -> pd.DataFrame:
        if not self.exists:
            return _empty("requests")
        with self.connection() as conn:
            return _frame(conn, "requests", sql, params)

    def recent(self, query: TelemetryQuery, limit: int = 100, offset: int = 0) -> pd.DataFrame:
        where, params = _where(query)
        sql = (
            f"SELECT {', '.join(REQUEST_COLUMNS)} FROM AppRequests{where}"
            " ORDER BY TimeGenerated DESC LIMIT ? OFFSET ?"
        )
        return self._requests(sql, [*params, int(limit), int(offset)])

    def failed(self, query: TelemetryQuery, limit: int = 50, offset: int = 0) -> pd.DataFrame:
        where, params = _where(query)
        where = f"{where} AND Success = 0" if where else " WHERE Success = 0"
        # The partial index holds failed requests only: its walk never visits a success.
        sql = (
            f"SELECT {', '.join(REQUEST_COLUMNS)} FROM AppRequests INDEXED BY ix_requests_failed"
            f"{where} ORDER BY TimeGenerated DESC LIMIT ? OFFSET ?"
        )
        return self._requests(sql, [*params, int(limit), int(offset)])

    def slowest(self, query: TelemetryQuery, limit: int = 50) -> pd.DataFrame:
        """The slowest requests: by the duration index from a threshold the histogram gives."""
        if not self.exists or limit <= 0:
            return _empty("requests")
        where, params = _where(query)
        cols = ", ".join(REQUEST_COLUMNS)
        with self.connection() as conn:
            hist = aggregates.histogram(conn, query)
            first, last = conn.execute(
                # Two subqueries: each is one index probe (MIN and MAX together scan the table).
                "SELECT (SELECT MIN(rowid) FROM AppRequests), (SELECT MAX(rowid) FROM AppRequests)"
            ).fetchone()
            if hist.empty:
                return _empty("requests")
            window_rows = int(hist["Requests"].sum())
            stored = (last - first + 1) if first is not None else 0
            # From the top bucket down, the first one that brings `limit` requests: every
            # request at or above its floor is a candidate, no slower one is left out.
            reached = hist["Requests"].to_numpy()[::-1].cumsum()
            at = min(int(np.searchsorted(reached, limit)), len(reached) - 1)
            threshold = bucket_floor(int(hist["Bucket"].to_numpy()[::-1][at])) * (1 - 1e-9)
            # The duration index visits the store's requests at least as slow as the threshold,
            # about reached * stored / window_rows of them; sorting visits window_rows.
            visited = int(reached[at]) * stored / window_rows
            if visited * RANDOM_ROW_COST < window_rows:
                clause = f"{where} AND DurationMs >= ?" if where else " WHERE DurationMs >= ?"
                sql = (
                    f"SELECT {cols} FROM AppRequests INDEXED BY ix_requests_duration{clause}"
                    " ORDER BY DurationMs DESC LIMIT ?"
                )
                return _frame(conn, "requests", sql, [*params, threshold, int(limit)])
            sql = f"SELECT {cols} FROM AppRequests{where} ORDER BY DurationMs DESC LIMIT ?"
            return _frame(conn, "requests", sql, [*params, int(limit)])

    def recent_traces(
        self, query: TelemetryQuery, text: str = "", limit: int = 100, offset: int = 0
    ) -> pd.DataFrame:
        where, params = _where(query)
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clause = "Message LIKE ? ESCAPE '\\'"
            where = f"{where} AND {clause}" if where else f" WHERE {clause}"
            params.append(f"%{escaped}%")
        sql = (
            f"SELECT {', '.join(TRACE_COLUMNS)} FROM AppTraces{where}"
            " ORDER BY TimeGenerated DESC LIMIT ? OFFSET ?"
        )
        if not self.exists:
            return _empty("traces")
        with self.connection() as conn:
            return _frame(conn, "traces", sql, [*params, int(limit), int(offset)])

    def export_csv(
        self, query: TelemetryQuery, chunk_rows: int = CSV_CHUNK_ROWS
    ) -> Iterator[bytes]:
        """The window's requests as CSV chunks, oldest first, read with a cursor (never all at once)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(REQUEST_COLUMNS)
        if not self.exists:
            yield buffer.getvalue().encode()
            return
        sql, params = build_query("requests", query.with_limit(None))
        success = REQUEST_COLUMNS.index("Success")
        with self.connection() as conn:
            cursor = conn.execute(sql, params)
            while rows := cursor.fetchmany(chunk_rows):
                for row in rows:
                    row = list(row)
                    row[success] = bool(row[success])
                    writer.writerow(row)
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        tail = buffer.getvalue()
        if tail:
            yield tail.encode()
