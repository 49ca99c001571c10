"""Roll-ups against raw rows: exact counts, percentiles within the bucket error, limited tables."""

from __future__ import annotations

import csv
import io
import math
import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from lib.appinsights import REQUEST_COLUMNS, TelemetryQuery
from lib.local.telemetry import (
    PERCENTILE_ERROR,
    RequestRecord,
    TelemetryWriter,
    connect,
    iso_utc,
    read_requests,
)
from lib.local.telemetry import queries as queries_module
from lib.local.telemetry.rollups import (
    GRAINS,
    bucket_of,
    bucket_values,
    cover,
    decode_hist,
    rebuild_rollups,
)
from lib.local.telemetry_service import LocalTelemetry

US = 1_000_000
# Whole hours, two days back: inside the default retention, and every grain has full bins.
START = (datetime.now(UTC) - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
SPAN_S = 2 * 86400
ENDPOINTS = [("a", "blue"), ("a", "green"), ("b", "")]


def nearest_rank(values, q: float) -> float:
    ordered = np.sort(np.asarray(values, dtype=float))
    return float(ordered[max(1, math.ceil(q / 100 * len(ordered) - 1e-9)) - 1])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """6,000 requests over two days, written in time order through the writer."""
    db = tmp_path_factory.mktemp("rollups") / "telemetry.db"
    rng = np.random.default_rng(3)
    n = 6000
    times = np.sort(START.timestamp() + rng.uniform(0, SPAN_S, n))
    which = rng.integers(0, len(ENDPOINTS), n)
    codes = rng.choice([200, 200, 200, 200, 400, 404, 500], n)
    ms = rng.lognormal(1.2, 0.9, n)
    ms[::97] = 0.0  # zero-duration rows land in bucket 0
    writer = TelemetryWriter(db, flush_interval=3600, batch_size=10**9)
    for i in range(n):
        endpoint, deployment = ENDPOINTS[which[i]]
        writer.record_request(
            RequestRecord(
                float(times[i]),
                f"op{i}",
                "POST /score",
                "http://h/score",
                int(codes[i]),
                float(ms[i]),
                endpoint,
                "1",
                1,
                deployment,
            )
        )
        if i % 1000 == 999:  # several flushes, as a server would make
            writer.flush()
        if i % 300 == 0:
            writer.record_trace(f"{'Slow' if i % 600 else 'fast'} request_{i} 100%", 2, endpoint)
    writer.close()
    raw = read_requests(db)
    stored = pd.read_sql_query("SELECT Deployment FROM AppRequests", connect(db))["Deployment"]
    assert list(raw["Deployment"]) == list(stored)  # the reader returns what the writer stored
    return db, raw


def _window(raw: pd.DataFrame, query: TelemetryQuery) -> pd.DataFrame:
    keep = np.ones(len(raw), bool)
    if query.since is not None:
        keep &= raw["TimeGenerated"] >= query.since
    if query.until is not None:
        keep &= raw["TimeGenerated"] < query.until
    if query.endpoint is not None:
        keep &= raw["Endpoint"] == query.endpoint
    return raw[keep]


def test_cover_is_whole_bins_of_the_coarsest_grains_and_short_raw_edges():
    since = datetime(2026, 3, 1, 10, 0, 30, 500000, tzinfo=UTC)
    until = datetime(2026, 3, 3, 12, 34, 10, 250000, tzinfo=UTC)
    s, u = round(since.timestamp() * US), round(until.timestamp() * US)
    pieces, raw = cover(s, u, GRAINS)
    spans = sorted([(a * US, b * US) for _, a, b in pieces] + raw)
    assert spans[0][0] == s and spans[-1][1] == u
    assert all(x[1] == y[0] for x, y in zip(spans, spans[1:], strict=False))  # no gap, no overlap
    assert all(
        a % (g * US) == 0 and b % (g * US) == 0
        for g, a, b in [(g, a * US, b * US) for g, a, b in pieces]
    )
    assert [g for g, *_ in pieces].count(86400) == 1  # the whole 2 March
    assert all(b - a < 60 * US for a, b in raw) and len(raw) == 2
    # Chart bins of 1 h: no day bins, and every piece nests in one chart bin or spans whole ones.
    pieces_h, _ = cover(s, u, [60, 900, 3600])
    assert {g for g, *_ in pieces_h} == {60, 900, 3600}


def test_bucket_reads_within_two_percent():
    values = np.exp(np.random.default_rng(0).uniform(math.log(0.002), math.log(1e6), 20000))
    read = bucket_values(np.array([bucket_of(v) for v in values]))
    assert PERCENTILE_ERROR <= 0.02
    assert np.max(np.abs(read - values) / values) <= PERCENTILE_ERROR + 1e-12
    assert bucket_of(0.0) == 0 and bucket_values([0])[0] == 0.0


@pytest.mark.parametrize(
    "window",
    [
        (None, None, None),
        (timedelta(hours=1, minutes=17, seconds=23.4), timedelta(hours=50, seconds=61.2), None),
        (timedelta(hours=20), timedelta(hours=21), "a"),
        (timedelta(hours=5, seconds=7), timedelta(hours=5, seconds=50), None),  # under a minute
    ],
)
def test_aggregates_equal_raw_counts_and_percentiles_within_the_bucket_error(store, window):
    db, raw = store
    start, end, endpoint = window
    query = TelemetryQuery(
        endpoint,
        START + start if start is not None else None,
        START + end if end is not None else None,
    )
    rows = _window(raw, query)
    service = LocalTelemetry(db)
    kpis = service.kpis(query)
    assert kpis.requests == len(rows) and kpis.failed == int((~rows["Success"]).sum())
    if len(rows):
        assert kpis.mean_ms == pytest.approx(rows["DurationMs"].mean(), rel=1e-9)
        for q in (50, 95, 99):
            exact = nearest_rank(rows["DurationMs"], q)
            assert getattr(kpis, f"p{q}") == pytest.approx(exact, rel=PERCENTILE_ERROR, abs=1e-9)
    summary = service.summary(query, 3600)
    bins = rows.assign(Bin=rows["TimeGenerated"].dt.floor("1h"))
    expected = bins.groupby(["Bin", "Endpoint", "Deployment"])
    assert len(summary) == expected.ngroups
    for (t, e, d), group in expected:
        row = summary[
            (summary["TimeGenerated"] == t)
            & (summary["Endpoint"] == e)
            & (summary["Deployment"] == d)
        ].iloc[0]
        assert (row["Requests"], row["Failed"]) == (len(group), int((~group["Success"]).sum()))
        for q in (50, 95, 99):
            exact = nearest_rank(group["DurationMs"], q)
            assert row[f"p{q}"] == pytest.approx(exact, rel=PERCENTILE_ERROR, abs=1e-9)
    overall = service.summary(query, 3600, by=())
    assert set(overall["Endpoint"]) <= {""} and set(overall["Deployment"]) <= {""}
    for t, group in bins.groupby("Bin"):
        row = overall[overall["TimeGenerated"] == t].iloc[0]
        assert row["Requests"] == len(group)
        exact = nearest_rank(group["DurationMs"], 95)
        assert row["p95"] == pytest.approx(exact, rel=PERCENTILE_ERROR, abs=1e-9)
    per_endpoint = service.summary(query, 900, by=("Endpoint",))
    assert per_endpoint.groupby("Endpoint")["Requests"].sum().to_dict() == {
        k: len(g) for k, g in rows.groupby("Endpoint")
    }
    codes = service.result_codes(query, 900)
    by_code = rows.groupby([rows["TimeGenerated"].dt.floor("15min"), "ResultCode"]).size()
    assert dict(
        zip(
            zip(codes["TimeGenerated"], codes["ResultCode"], strict=True),
            codes["Requests"],
            strict=True,
        )
    ) == {k: int(v) for k, v in by_code.items()}
    status = service.status_codes(query)
    assert dict(zip(status["ResultCode"], status["Requests"], strict=True)) == {
        k: int(v) for k, v in rows["ResultCode"].value_counts().items()
    }
    assert list(status["Requests"]) == sorted(status["Requests"], reverse=True)


def test_roll_ups_written_by_the_writer_equal_a_rebuild_from_raw_rows(store, tmp_path):
    db, _ = store
    copy = tmp_path / "copy.db"
    src = sqlite3.connect(db)
    src.backup(sqlite3.connect(copy))
    src.close()

    def snapshot(path):
        conn = connect(path)
        counts = conn.execute("SELECT * FROM RequestRollup ORDER BY 1, 2, 3, 4, 5").fetchall()
        hists = {
            row[:4]: (row[4], decode_hist(row[5]).tolist())
            for row in conn.execute("SELECT * FROM LatencyRollup")
        }
        conn.close()
        return counts, hists

    written = snapshot(copy)
    conn = connect(copy)
    with conn:
        rebuild_rollups(conn)
    conn.close()
    rebuilt = snapshot(copy)
    assert [r[:7] for r in written[0]] == [r[:7] for r in rebuilt[0]]
    assert written[1] == rebuilt[1]


def test_bins_must_be_whole_minutes(store):
    with pytest.raises(ValueError, match="multiple of 60"):
        LocalTelemetry(store[0]).summary(TelemetryQuery(), 30)


@pytest.mark.parametrize("cost", [10**9, 0])  # sort the window / walk the duration index
def test_slowest_are_the_slowest_raw_rows(store, monkeypatch, cost):
    db, raw = store
    monkeypatch.setattr(queries_module, "RANDOM_ROW_COST", cost)
    service = LocalTelemetry(db)
    for query in (
        TelemetryQuery(),
        TelemetryQuery("b", START + timedelta(hours=3), START + timedelta(hours=30)),
    ):
        slowest = service.slowest(query, 25)
        expected = _window(raw, query).sort_values("DurationMs", ascending=False).head(25)
        assert list(slowest.columns) == REQUEST_COLUMNS
        assert list(slowest["DurationMs"]) == list(expected["DurationMs"])


def test_failed_recent_and_traces_are_paginated_newest_first(store):
    db, raw = store
    service = LocalTelemetry(db)
    query = TelemetryQuery("a", START + timedelta(hours=2), START + timedelta(hours=40))
    rows = _window(raw, query).sort_values("TimeGenerated", ascending=False, kind="stable")
    failed = rows[~rows["Success"]]
    first, second = service.failed(query, 10), service.failed(query, 10, offset=10)
    assert list(first["OperationId"]) + list(second["OperationId"]) == list(
        failed["OperationId"].head(20)
    )
    assert not first["Success"].any()
    recent = service.recent(query, 7, offset=3)
    assert list(recent["OperationId"]) == list(rows["OperationId"].iloc[3:10])
    traces = service.recent_traces(TelemetryQuery(), "SLOW", 5)
    assert len(traces) == 5 and traces["Message"].str.startswith("Slow").all()
    assert list(traces["TimeGenerated"]) == sorted(traces["TimeGenerated"], reverse=True)
    # LIKE wildcards in the search text are taken literally.
    assert (
        service.recent_traces(TelemetryQuery(), "100%", 1000)["Message"].str.contains("100%").all()
    )
    assert service.recent_traces(TelemetryQuery(), "request_1_", 1000).empty
    assert len(service.recent_traces(TelemetryQuery(), "request_3000 ", 1000)) == 1


def test_csv_export_streams_every_row_of_the_window(store):
    db, raw = store
    query = TelemetryQuery(since=START + timedelta(hours=10), until=START + timedelta(hours=30))
    chunks = list(LocalTelemetry(db).export_csv(query, chunk_rows=500))
    assert len(chunks) > 2
    parsed = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    rows = _window(raw, query)
    assert parsed[0] == REQUEST_COLUMNS
    assert [r[1] for r in parsed[1:]] == list(rows["OperationId"])
    success = REQUEST_COLUMNS.index("Success")
    assert {r[success] for r in parsed[1:]} == {"True", "False"}
    deployment = REQUEST_COLUMNS.index("Deployment")
    assert [r[deployment] for r in parsed[1:]] == list(rows["Deployment"])
    assert {r[deployment] for r in parsed[1:]} == {"blue", "green", ""}


def test_a_store_without_roll_ups_is_migrated_on_open(tmp_path):
    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.executescript(
        """CREATE TABLE AppRequests (TimeGenerated TEXT NOT NULL, OperationId TEXT NOT NULL,
        Name TEXT NOT NULL, Url TEXT, ResultCode TEXT NOT NULL, DurationMs REAL NOT NULL,
        Success INTEGER NOT NULL, Endpoint TEXT, ModelVersion TEXT, Rows INTEGER);
        CREATE TABLE AppTraces (TimeGenerated TEXT NOT NULL, Message TEXT NOT NULL,
        SeverityLevel INTEGER NOT NULL, Endpoint TEXT);"""
    )
    t = START + timedelta(minutes=5)
    old.executemany(
        "INSERT INTO AppRequests VALUES (?, ?, 'POST /score', '', ?, ?, ?, 'ep', '1', 1)",
        [
            (
                iso_utc(t + timedelta(seconds=i)),
                f"op{i}",
                "200" if i % 4 else "500",
                1.0 + i,
                int(i % 4 != 0),
            )
            for i in range(40)
        ],
    )
    old.commit()
    old.close()
    kpis = LocalTelemetry(db).kpis(TelemetryQuery())
    assert (kpis.requests, kpis.failed) == (40, 10)
    conn = connect(db)
    assert "Deployment" in {r[1] for r in conn.execute("PRAGMA table_info(AppRequests)")}
    # Rows stored before the column existed name no deployment.
    assert set(read_requests(db)["Deployment"]) == {""}
    assert LocalTelemetry(db).recent(TelemetryQuery(), 5)["Deployment"].tolist() == [""] * 5
    assert (
        conn.execute("SELECT SUM(Requests) FROM RequestRollup WHERE Grain = 3600").fetchone()[0]
        == 40
    )
