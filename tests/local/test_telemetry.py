from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from lib.appinsights import REQUEST_COLUMNS, TRACE_COLUMNS, TelemetryQuery
from lib.local.telemetry import (
    RequestRecord,
    TelemetryWriter,
    TraceHandler,
    build_query,
    iso_utc,
    read_requests,
    read_traces,
)
from lib.local.telemetry_service import LocalTelemetry
from tests.support.waiting import wait_for

FIXED = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
# Recent enough to be inside the default 30-day retention the writer prunes to.
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def rec(
    i: int, endpoint: str = "a", code: int = 200, at: datetime | None = None, deployment: str = ""
) -> RequestRecord:
    when = (at or T0 + timedelta(seconds=i)).timestamp()
    return RequestRecord(
        when, f"op{i}", "POST /score", "http://h/score", code, 1.5 + i, endpoint, "3", i, deployment
    )


def test_iso_utc_is_one_sortable_form():
    assert iso_utc(FIXED) == "2026-01-31T12:00:00.000000+00:00"
    assert iso_utc("2026-01-31T13:00:00+01:00") == iso_utc(FIXED)
    assert iso_utc("2026-01-31T12:00:00Z") == iso_utc(FIXED)
    assert iso_utc(datetime(2026, 1, 31, 12)) == iso_utc(FIXED)  # naive means UTC
    assert iso_utc(FIXED.timestamp()) == iso_utc(FIXED)


def test_query_builder():
    sql, params = build_query("requests")
    assert sql == f"SELECT {', '.join(REQUEST_COLUMNS)} FROM AppRequests ORDER BY TimeGenerated"
    assert params == []
    sql, params = build_query("requests", TelemetryQuery("ep", T0, T0 + timedelta(hours=1)))
    assert "WHERE Endpoint = ? AND TimeGenerated >= ? AND TimeGenerated < ?" in sql
    assert params == ["ep", iso_utc(T0), iso_utc(T0 + timedelta(hours=1))]
    sql, params = build_query("traces", TelemetryQuery(since="2026-01-31T12:00:00Z", limit=5))
    assert f"SELECT rowid AS _r, {', '.join(TRACE_COLUMNS)} FROM AppTraces" in sql
    assert "ORDER BY TimeGenerated DESC, _r DESC LIMIT ?" in sql and sql.endswith(
        "ORDER BY TimeGenerated, _r"
    )
    assert params == [iso_utc(FIXED), 5]
    with pytest.raises(ValueError, match="unknown telemetry kind"):
        build_query("Users; DROP TABLE x")


def test_writer_batches_and_reader_filters(tmp_path):
    db = tmp_path / "t.db"
    w = TelemetryWriter(db, endpoint="a", flush_interval=60)  # only explicit flushes
    for i in range(5):
        w.record_request(rec(i))
    w.record_request(rec(5, endpoint="b", code=404, deployment="green"))
    assert len(read_requests(db)) == 0  # nothing is written on the request path
    assert w.flush() == 6
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    df = read_requests(db)
    assert list(df.columns) == REQUEST_COLUMNS and len(df) == 6
    assert list(df["OperationId"]) == [f"op{i}" for i in range(6)]
    b = df.iloc[5]
    assert (b["ResultCode"], b["Success"], b["Endpoint"], b["Rows"]) == ("404", False, "b", 5)
    # The deployment that answered; "" where the server named none.
    assert list(df["Deployment"]) == [""] * 5 + ["green"]
    assert df.iloc[0]["TimeGenerated"] == T0
    assert list(read_requests(db, TelemetryQuery(endpoint="b"))["OperationId"]) == ["op5"]
    window = TelemetryQuery(since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3))
    assert list(read_requests(db, window)["OperationId"]) == ["op1", "op2"]
    newest = read_requests(db, TelemetryQuery(limit=2))
    assert list(newest["OperationId"]) == ["op4", "op5"]  # newest two, oldest first
    w.close()


def test_background_flush_and_flush_on_close(tmp_path):
    db = tmp_path / "t.db"
    w = TelemetryWriter(db, endpoint="a", flush_interval=0.05)
    w.record_request(rec(1))
    wait_for(lambda: len(read_requests(db)) == 1, timeout=5, what="background flush")
    slow = TelemetryWriter(db, endpoint="a", flush_interval=60)
    for i in range(10, 20):
        slow.record_request(rec(i))
    slow.record_trace("bye", 2)
    slow.close()
    w.close()
    assert len(read_requests(db)) == 11
    assert list(read_traces(db)["Message"]) == ["bye"]


def test_batch_size_wakes_the_writer_early(tmp_path):
    db = tmp_path / "t.db"
    w = TelemetryWriter(db, flush_interval=30, batch_size=10)
    for i in range(10):
        w.record_request(rec(i))
    # Far sooner than the 30 s interval: the tenth row woke the writer.
    wait_for(lambda: len(read_requests(db)) == 10, timeout=10, what="early flush")
    w.close()


def test_trace_handler_maps_levels(tmp_path):
    db = tmp_path / "t.db"
    w = TelemetryWriter(db, endpoint="ep", flush_interval=60)
    logger = logging.getLogger("test.telemetry.handler")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(TraceHandler(w))
    logger.debug("ignored below INFO")
    logger.info("hello")
    logger.warning("careful")
    logger.error("broken")
    w.close()
    df = read_traces(db, TelemetryQuery(endpoint="ep"))
    assert list(df.columns) == TRACE_COLUMNS
    assert list(zip(df["Message"], df["SeverityLevel"], strict=True)) == [
        ("hello", 1),
        ("careful", 2),
        ("broken", 3),
    ]


def test_reading_a_missing_store_gives_empty_frames(tmp_path):
    assert list(read_requests(tmp_path / "none.db").columns) == REQUEST_COLUMNS
    assert read_traces(tmp_path / "none.db").empty


def test_service_reads_and_shows_the_same_query(tmp_path):
    db = tmp_path / "t.db"
    w = TelemetryWriter(db, endpoint="a", flush_interval=60)
    for i in range(4):
        w.record_request(rec(i, endpoint="a" if i % 2 else "b"))
    w.record_trace("hello", 1)
    w.close()
    service = LocalTelemetry(db)
    query = TelemetryQuery(endpoint="a", since=T0, until=T0 + timedelta(minutes=1), limit=1)
    assert list(service.requests(query)["OperationId"]) == ["op3"]
    assert list(service.requests()["OperationId"]) == ["op0", "op1", "op2", "op3"]
    assert list(service.traces(TelemetryQuery(endpoint="a"))["Message"]) == ["hello"]
    text = service.query_text("requests", query)
    assert "Endpoint = 'a'" in text and f"'{iso_utc(T0)}'" in text and "LIMIT 1" in text
    assert "?" not in text
    assert "FROM AppTraces" in service.query_text("traces")
    with pytest.raises(ValueError):
        service.query_text("metrics", query)
