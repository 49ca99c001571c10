"""Logs page over a real telemetry store written by the batched writer."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from lib.drift import build_baseline
from lib.local.telemetry import PERCENTILE_ERROR, RequestRecord, TelemetryWriter
from tests.pages.conftest import open_page


def _write(db, rows, inputs=()) -> None:
    writer = TelemetryWriter(db, endpoint="ep-a", flush_interval=3600)
    for r in rows:
        writer.record_request(r)
    writer.record_trace("server started", 1, endpoint="ep-a")
    writer.record_trace("model loaded in 0.4 s", 1, endpoint="ep-a")
    for baseline, deployment, records, outputs in inputs:
        writer.set_baseline(baseline, deployment)
        writer.record_inputs(records, outputs, deployment)
    writer.close()


def record(
    code: int, ms: float, endpoint: str = "ep-a", ago_s: float = 10, deployment: str = ""
) -> RequestRecord:
    when = (datetime.now(UTC) - timedelta(seconds=ago_s)).timestamp()
    return RequestRecord(
        when,
        f"op-{code}-{ms}-{deployment}",
        "POST /score",
        "http://127.0.0.1/score",
        code,
        ms,
        endpoint,
        "1",
        1,
        deployment,
    )


def _stopped_endpoint(ws, name: str) -> None:
    """An endpoint row the Endpoint filter lists (no server needed for reading its logs)."""
    now = datetime.now(UTC).isoformat()
    with ws.extras["store"].transaction() as tx:
        tx.execute(
            """INSERT INTO endpoints(name, model_name, model_version, port, state, desired,
               created, updated) VALUES (?, 'm', 1, 59999, 'Stopped', 'stopped', ?, ?)""",
            (name, now, now),
        )


def _ms(text: str) -> float:
    return float(text.removesuffix(" ms").replace(",", ""))


def test_logs_page_charts_aggregates_and_filters_by_time(local_workspace) -> None:
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
    # Nearest rank (the 11th of 22), read from a latency bucket: within 2 %.
    assert _ms(metrics["p50"]) == pytest.approx(durations[10], rel=PERCENTILE_ERROR)
    assert _ms(metrics["p99"]) == pytest.approx(durations[math.ceil(0.99 * 22) - 1], rel=0.02)
    assert len(at.get("plotly_chart")) == 2  # the Performance tab's; the others are not sent
    at.session_state["logs_charts"] = "Failures"
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert any("AppRequests" in c.value for c in at.code)
    # Only the open tab's table is read and sent.
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 22
    assert any("100 per page" in c.value for c in at.caption)
    tables = {}
    for tab in ("Failed", "Slowest", "Traces"):
        at.session_state["logs_tab"] = tab
        at.run()
        assert not at.exception and len(at.dataframe) == 1
        tables[tab] = at.dataframe[0].value
    assert set(tables["Failed"]["ResultCode"]) == {"401", "400"}
    assert list(tables["Slowest"]["DurationMs"])[:2] == [20.0, 19.0]
    assert len(tables["Traces"]) == 2
    at.text_input(key="logs_traces_text").set_value("MODEL").run()
    assert list(at.dataframe[0].value["Message"]) == ["model loaded in 0.4 s"]
    at.selectbox(key="logs_range").set_value("Last 7 days").run()
    assert {m.label: m.value for m in at.metric}["Requests"] == "23"


def test_csv_is_built_only_when_asked(local_workspace, monkeypatch) -> None:
    _write(local_workspace.telemetry.db_path, [record(200, 5.0), record(500, 7.0)])
    calls = []
    original = type(local_workspace.telemetry).export_csv

    def counting(self, query, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(query)
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(type(local_workspace.telemetry), "export_csv", counting)
    at = open_page("logs.py")
    at.toggle(key="logs_live").set_value(True).run()
    at.selectbox(key="logs_range").set_value("Last 24 hours").run()
    assert not at.exception
    assert calls == []  # renders and live refreshes never build the export


def test_split_by_deployment_for_one_endpoint(local_workspace) -> None:
    blue = [record(200, 4.0 + i % 3, deployment="blue") for i in range(30)]
    green = [record(500 if i % 4 == 0 else 200, 40.0, deployment="green") for i in range(10)]
    baseline = build_baseline(
        __import__("pandas").DataFrame({"x": range(60), "y": ["no", "yes"] * 30}), target="y"
    )
    inputs = [
        (baseline, "blue", [{"x": 1}] * 8, ["no"] * 6 + ["yes"] * 2),
        (baseline, "green", [{"x": 2}] * 4, ["yes"] * 4),
    ]
    _write(local_workspace.telemetry.db_path, blue + green, inputs)
    _stopped_endpoint(local_workspace, "ep-a")
    at = open_page("logs.py")
    assert [t.label for t in at.tabs][:2] == ["Performance", "Failures"]
    assert "By deployment" not in [t.label for t in at.tabs]  # all endpoints: no split
    at.selectbox(key="logs_endpoint").set_value("ep-a").run()
    assert not at.exception
    assert "By deployment" in [t.label for t in at.tabs]
    at.session_state["logs_charts"] = "By deployment"
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == 4
    recent = at.dataframe[0].value  # the Requests tab: each row names its deployment
    assert (recent["Deployment"] == "green").sum() == 10
    assert (recent["Deployment"] == "blue").sum() == 30


def test_logs_page_without_requests(local_workspace) -> None:
    at = open_page("logs.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "0" and metrics["p95"] == "–"
