"""Telemetry store for local endpoints: request and trace tables with App Insights column names.

Writes happen off the request path: the server appends to an in-memory queue and a background
thread flushes it in one transaction every ~0.5 s (or sooner when `batch_size` rows wait).
Reads return pandas DataFrames shaped like `AppRequests` / `AppTraces`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from lib.appinsights import (
    COLUMNS,
    REQUEST_COLUMNS,
    TABLES,
    TRACE_COLUMNS,
    TelemetryQuery,
    check_kind,
)

if TYPE_CHECKING:
    import pandas as pd

# App Insights severity levels: Verbose 0, Information 1, Warning 2, Error 3, Critical 4.
SEVERITY = {
    logging.DEBUG: 0,
    logging.INFO: 1,
    logging.WARNING: 2,
    logging.ERROR: 3,
    logging.CRITICAL: 4,
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS AppRequests (
    TimeGenerated TEXT NOT NULL,
    OperationId TEXT NOT NULL,
    Name TEXT NOT NULL,
    Url TEXT,
    ResultCode TEXT NOT NULL,
    DurationMs REAL NOT NULL,
    Success INTEGER NOT NULL,
    Endpoint TEXT,
    ModelVersion TEXT,
    Rows INTEGER
);
CREATE INDEX IF NOT EXISTS ix_requests_endpoint_time ON AppRequests (Endpoint, TimeGenerated);
CREATE INDEX IF NOT EXISTS ix_requests_time ON AppRequests (TimeGenerated);
CREATE TABLE IF NOT EXISTS AppTraces (
    TimeGenerated TEXT NOT NULL,
    Message TEXT NOT NULL,
    SeverityLevel INTEGER NOT NULL,
    Endpoint TEXT
);
CREATE INDEX IF NOT EXISTS ix_traces_endpoint_time ON AppTraces (Endpoint, TimeGenerated);
"""


class RequestRecord(NamedTuple):
    """One served request, as the scoring app hands it over (time is epoch seconds)."""

    time: float
    operation_id: str
    name: str
    url: str
    result_code: int
    duration_ms: float
    endpoint: str
    model_version: str
    rows: int | None


def iso_utc(value: float | datetime | str) -> str:
    """The stored timestamp form: `2026-01-31T12:00:00.123456+00:00` (sorts as text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="microseconds")


def connect(db_path: Path | str) -> sqlite3.Connection:
    """Open the telemetry database (WAL) and make sure its tables exist."""
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db_path), timeout=10, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


def _request_row(r: RequestRecord) -> tuple:
    return (
        iso_utc(r.time),
        r.operation_id,
        r.name,
        r.url,
        str(r.result_code),
        round(r.duration_ms, 3),
        int(r.result_code < 400),
        r.endpoint,
        r.model_version,
        r.rows,
    )


class TelemetryWriter:
    """Batched writer: `record_*` only append to a queue; a daemon thread writes to SQLite."""

    def __init__(
        self,
        db_path: Path | str,
        endpoint: str = "",
        flush_interval: float = 0.5,
        batch_size: int = 1000,
    ) -> None:
        self.db_path = Path(db_path)
        self.endpoint = endpoint
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self._requests: deque[RequestRecord] = deque()
        self._traces: deque[tuple] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conn = connect(self.db_path)
        self._thread = threading.Thread(target=self._run, name="telemetry-writer", daemon=True)
        self._thread.start()

    def record_request(self, record: RequestRecord) -> None:
        self._requests.append(record)
        if len(self._requests) >= self.batch_size:
            self._wake.set()

    def record_trace(self, message: str, severity: int = 1, endpoint: str | None = None) -> None:
        """Queue a console line (severity on the App Insights 0-4 scale)."""
        self._traces.append(
            (iso_utc(datetime.now(UTC)), message, severity, endpoint or self.endpoint)
        )

    def flush(self) -> int:
        """Write everything queued so far in one transaction; return the number of rows written."""
        with self._lock:
            requests = [self._requests.popleft() for _ in range(len(self._requests))]
            traces = [self._traces.popleft() for _ in range(len(self._traces))]
            if not requests and not traces:
                return 0
            with self._conn:
                if requests:
                    self._conn.executemany(
                        f"INSERT INTO AppRequests ({', '.join(REQUEST_COLUMNS)}) VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})",
                        [_request_row(r) for r in requests],
                    )
                if traces:
                    self._conn.executemany(
                        f"INSERT INTO AppTraces ({', '.join(TRACE_COLUMNS)}) VALUES (?, ?, ?, ?)",
                        traces,
                    )
            return len(requests) + len(traces)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except sqlite3.Error as exc:  # keep serving; rows stay queued for the next attempt
                logging.getLogger("opsdeck.telemetry").warning("telemetry flush failed: %s", exc)

    def close(self) -> None:
        """Stop the thread and flush what is left."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
        self._conn.close()


class TraceHandler(logging.Handler):
    """A logging handler that turns console lines into trace rows."""

    def __init__(self, writer: TelemetryWriter, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            severity = SEVERITY.get(record.levelno, 1 if record.levelno < logging.WARNING else 3)
            self.writer.record_trace(self.format(record), severity)
        except Exception:
            self.handleError(record)


# ----------------------------------------------------------------------------- queries


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


def _read(db_path: Path | str, kind: str, query: TelemetryQuery | None) -> pd.DataFrame:
    import pandas as pd

    sql, params = build_query(kind, query)
    columns = COLUMNS[kind]
    if not Path(db_path).exists():
        frame = pd.DataFrame({c: [] for c in columns})
    else:
        conn = sqlite3.connect(str(db_path), timeout=10)
        try:
            frame = pd.read_sql_query(sql, conn, params=params)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            frame = pd.DataFrame({c: [] for c in columns})
        finally:
            conn.close()
    frame["TimeGenerated"] = pd.to_datetime(frame["TimeGenerated"], utc=True, format="ISO8601")
    return frame


def read_requests(db_path: Path | str, query: TelemetryQuery | None = None) -> pd.DataFrame:
    """Request rows (AppRequests columns) oldest first; `Success` as bool, `ResultCode` as text."""
    frame = _read(db_path, "requests", query)
    frame["Success"] = frame["Success"].astype(bool)
    frame["ResultCode"] = frame["ResultCode"].astype(str)
    frame["DurationMs"] = frame["DurationMs"].astype(float)
    frame["Rows"] = frame["Rows"].astype("Int64")
    return frame


def read_traces(db_path: Path | str, query: TelemetryQuery | None = None) -> pd.DataFrame:
    """Trace rows (AppTraces columns) oldest first."""
    frame = _read(db_path, "traces", query)
    frame["SeverityLevel"] = frame["SeverityLevel"].astype("Int64")
    return frame
