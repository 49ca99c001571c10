"""Logs page over a real telemetry store written by the batched writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lib.local.telemetry import RequestRecord, TelemetryWriter
from tests.pages.conftest import open_page


def _write(db, rows) -> None:
    writer = TelemetryWriter(db, endpoint="ep-a", flush_interval=0.01)
    for r in rows:
        writer.record_request(r)
    writer.record_trace("server started", 1, endpoint="ep-a")
    writer.close()


def record(code: int, ms: float, endpoint: str = "ep-a", ago_s: float = 10) -> RequestRecord:
    when = (datetime.now(UTC) - timedelta(seconds=ago_s)).timestamp()
    return RequestRecord(
        when, f"op-{code}-{ms}", "POST /score", "http://127.0.0.1/score", code, ms, endpoint, "1", 1
    )


def test_logs_page_charts_requests_and_filters_by_time(local_workspace) -> None:
    db = local_workspace.telemetry.db_path
    rows = [record(200, float(ms)) for ms in range(1, 21)] + [record(401, 1.0), record(400, 2.0)]
    rows.append(record(200, 999.0, ago_s=3 * 3600))  # outside the default one-hour range
    _write(db, rows)
    at = open_page("logs.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "22"
    assert metrics["Failed"] == "2"
    durations = sorted([*range(1, 21), 1.0, 2.0])
    assert metrics["p50"] == f"{(durations[10] + durations[11]) / 2:.1f} ms"
    assert len(at.get("plotly_chart")) == 4
    assert any("AppRequests" in c.value for c in at.code)
    at.selectbox(key="logs_range").set_value("Last 7 days").run()
    assert {m.label: m.value for m in at.metric}["Requests"] == "23"


def test_logs_page_without_requests(local_workspace) -> None:
    at = open_page("logs.py")
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Requests"] == "0"
