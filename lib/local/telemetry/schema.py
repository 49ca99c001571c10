"""The telemetry database: raw App Insights-style tables, roll-ups beside them, migrations.

Raw rows (`AppRequests`, `AppTraces`) keep App Insights column names and ISO-8601 UTC text times
(they sort as text). Roll-ups use integer epoch seconds: `RequestRollup` counts requests per bin,
endpoint, deployment and result code; `LatencyRollup` holds their log-spaced latency histogram (sparse bucket/count pairs);
`DriftRollup` sums sampled inputs' cell counts per baseline (`lib.drift`). Each roll-up exists at
several grains (`GRAINS`), written together with the raw rows they summarise.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

# Roll-up grains in seconds. Minute and quarter-hour rows are kept as long as raw rows;
# hour and day rows as long as roll-ups (`Retention`).
GRAINS = (60, 900, 3600, 86400)
FINE_GRAINS = (60, 900)
DRIFT_GRAINS = (300, 3600, 86400)
SCHEMA_VERSION = 2

# App Insights severity levels: Verbose 0, Information 1, Warning 2, Error 3, Critical 4.
SEVERITY = {
    logging.DEBUG: 0,
    logging.INFO: 1,
    logging.WARNING: 2,
    logging.ERROR: 3,
    logging.CRITICAL: 4,
}

# What the writer inserts, in this order (reads select `lib.appinsights` columns by name).
STORED_REQUEST_COLUMNS = (
    "TimeGenerated",
    "OperationId",
    "Name",
    "Url",
    "ResultCode",
    "DurationMs",
    "Success",
    "Endpoint",
    "Deployment",
    "ModelVersion",
    "Rows",
)

TABLES_SQL = """
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
CREATE TABLE IF NOT EXISTS AppTraces (
    TimeGenerated TEXT NOT NULL,
    Message TEXT NOT NULL,
    SeverityLevel INTEGER NOT NULL,
    Endpoint TEXT
);
"""

# Version 2: deployment column, the indexes the Logs page's limited tables use, roll-ups.
V2_SQL = """
CREATE INDEX IF NOT EXISTS ix_requests_endpoint_time ON AppRequests (Endpoint, TimeGenerated);
CREATE INDEX IF NOT EXISTS ix_requests_time ON AppRequests (TimeGenerated);
CREATE INDEX IF NOT EXISTS ix_requests_duration ON AppRequests (DurationMs);
CREATE INDEX IF NOT EXISTS ix_requests_failed ON AppRequests (TimeGenerated) WHERE Success = 0;
CREATE INDEX IF NOT EXISTS ix_traces_endpoint_time ON AppTraces (Endpoint, TimeGenerated);
CREATE INDEX IF NOT EXISTS ix_traces_time ON AppTraces (TimeGenerated);
CREATE TABLE IF NOT EXISTS RequestRollup (
    Grain INTEGER NOT NULL,
    BinStart INTEGER NOT NULL,
    Endpoint TEXT NOT NULL,
    Deployment TEXT NOT NULL,
    ResultCode TEXT NOT NULL,
    Requests INTEGER NOT NULL,
    Failed INTEGER NOT NULL,
    SumMs REAL NOT NULL,
    MinMs REAL NOT NULL,
    MaxMs REAL NOT NULL,
    PRIMARY KEY (Grain, BinStart, Endpoint, Deployment, ResultCode)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_request_rollup_endpoint ON RequestRollup (Endpoint, Grain, BinStart);
CREATE TABLE IF NOT EXISTS LatencyRollup (
    Grain INTEGER NOT NULL,
    BinStart INTEGER NOT NULL,
    Endpoint TEXT NOT NULL,
    Deployment TEXT NOT NULL,
    Requests INTEGER NOT NULL,
    Hist BLOB NOT NULL,
    PRIMARY KEY (Grain, BinStart, Endpoint, Deployment)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_latency_rollup_endpoint ON LatencyRollup (Endpoint, Grain, BinStart);
CREATE TABLE IF NOT EXISTS DriftRollup (
    Grain INTEGER NOT NULL,
    BinStart INTEGER NOT NULL,
    Endpoint TEXT NOT NULL,
    Deployment TEXT NOT NULL,
    Baseline TEXT NOT NULL,
    Rows INTEGER NOT NULL,
    Counts BLOB NOT NULL,
    PRIMARY KEY (Grain, BinStart, Endpoint, Deployment, Baseline)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_drift_rollup_endpoint ON DriftRollup (Endpoint, Grain, BinStart);
CREATE TABLE IF NOT EXISTS DriftBaselines (
    Id TEXT PRIMARY KEY,
    Body TEXT NOT NULL
);
"""


def iso_utc(value: float | datetime | str) -> str:
    """The stored timestamp form: `2026-01-31T12:00:00.123456+00:00` (sorts as text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="microseconds")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _migrate(conn: sqlite3.Connection) -> None:
    # BEGIN IMMEDIATE: two processes opening an old store at once migrate it once.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            for statement in (TABLES_SQL + V2_SQL).split(";"):
                if statement.strip():
                    conn.execute(statement)
            if "Deployment" not in _columns(conn, "AppRequests"):
                conn.execute("ALTER TABLE AppRequests ADD COLUMN Deployment TEXT")
            if version < 2:
                from lib.local.telemetry.rollups import rebuild_rollups

                rebuild_rollups(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def connect(db_path: Path | str) -> sqlite3.Connection:
    """Open the telemetry database (WAL), creating or migrating its tables when needed."""
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: transactions are explicit (`with conn:` still commits them).
    conn = sqlite3.connect(str(db_path), timeout=10, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # A checkpointed WAL is truncated back to this size, so the -wal file stays bounded too.
    conn.execute("PRAGMA journal_size_limit=67108864")
    from lib.local.telemetry.inputs import counts_add
    from lib.local.telemetry.rollups import hist_add

    conn.create_function("counts_add", 2, counts_add, deterministic=True)
    conn.create_function("hist_add", 2, hist_add, deterministic=True)
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        isolation = conn.isolation_level
        conn.isolation_level = None
        try:
            _migrate(conn)
        finally:
            conn.isolation_level = isolation
    return conn
