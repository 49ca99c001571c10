"""Retention: raw rows and roll-ups each kept for their time, pruned in bounded batches, the file
size bounded — on an accelerated clock."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from lib.appinsights import TelemetryQuery
from lib.drift import build_baseline
from lib.local.telemetry import RequestRecord, Retention, TelemetryWriter, connect, prune
from lib.local.telemetry.retention import prune_batch
from lib.local.telemetry_service import LocalTelemetry

DAY = 86400
# A fixed "now" far from the real one: only the injected clock decides what is old.
NOW = datetime(2031, 6, 15, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def request(t: float, i: int) -> RequestRecord:
    return RequestRecord(
        t, f"op{i}", "POST /score", "u", 200 if i % 5 else 500, 1.0 + i % 50, "ep", "1", 1
    )


def test_each_kind_is_kept_for_its_own_time(tmp_path):
    db = tmp_path / "t.db"
    clock = Clock(NOW)
    writer = TelemetryWriter(
        db, flush_interval=3600, retention=Retention(raw_days=2, rollup_days=5), clock=clock
    )
    # One request every 3 hours over the last 8 days, and a trace beside each.
    times = [NOW - 8 * DAY + 3 * 3600 * k for k in range(64)]
    for i, t in enumerate(times):
        writer.record_request(request(t, i))
        writer.record_trace("hello", 1)
    writer.flush()
    while writer.pruner.step() and writer.pruner._pending:
        pass
    writer.close()
    conn = connect(db)
    oldest_raw = conn.execute("SELECT MIN(TimeGenerated) FROM AppRequests").fetchone()[0]
    assert datetime.fromisoformat(oldest_raw).timestamp() >= NOW - 2 * DAY
    for grain, days in ((60, 2), (900, 2), (3600, 5), (86400, 5)):
        oldest = conn.execute(
            "SELECT MIN(BinStart) FROM RequestRollup WHERE Grain = ?", (grain,)
        ).fetchone()[0]
        # A bin is kept while it starts inside the retention window.
        assert oldest >= NOW - days * DAY - grain, grain
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM LatencyRollup WHERE Grain = ? AND BinStart < ?",
                (grain, NOW - days * DAY - grain),
            ).fetchone()[0]
            == 0
        )
    conn.close()
    # Hourly roll-ups still answer for days 2-5, where raw rows are gone.
    query = TelemetryQuery(
        since=datetime.fromtimestamp(NOW - 5 * DAY + 3600, UTC),
        until=datetime.fromtimestamp(NOW - 2 * DAY - 3600, UTC),
    )
    expected = sum(1 for t in times if query.since.timestamp() <= t < query.until.timestamp())
    assert expected > 10 and LocalTelemetry(db).kpis(query).requests == expected


def test_one_batch_deletes_a_bounded_number_of_rows(tmp_path):
    db = tmp_path / "t.db"
    writer = TelemetryWriter(
        db, flush_interval=3600, retention=Retention(raw_days=10), clock=Clock(NOW)
    )
    for i in range(450):
        writer.record_request(request(NOW - 3 * DAY + i, i))
    writer.flush()
    writer.close()
    conn = connect(db)
    retention = Retention(raw_days=1, batch_rows=100)
    assert prune_batch(conn, NOW, retention) is True
    assert conn.execute("SELECT COUNT(*) FROM AppRequests").fetchone()[0] == 350
    assert prune(conn, NOW, retention) == 4  # 350 more rows: three full batches and a last one
    assert conn.execute("SELECT COUNT(*) FROM AppRequests").fetchone()[0] == 0
    conn.close()


def _size(db) -> int:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def test_file_size_stays_bounded_on_an_accelerated_clock(tmp_path):
    db = tmp_path / "t.db"
    clock = Clock(NOW)
    retention = Retention(raw_days=2, rollup_days=4, interval_s=3600)
    writer = TelemetryWriter(db, flush_interval=3600, retention=retention, clock=clock)
    baseline = build_baseline(
        __import__("pandas").DataFrame({"x": range(100), "y": ["a", "b"] * 50}), target="y"
    )
    writer.set_baseline(baseline)
    sizes, rows = {}, {}
    # 14 simulated days, an hour per step: 60 requests and 10 sampled inputs an hour.
    for hour in range(14 * 24):
        clock.t = NOW + hour * 3600
        for i in range(60):
            t = clock.t + i * 60
            writer.record_request(request(t, i))
            if i % 6 == 0:
                writer.record_inputs([{"x": i % 100}], ["a"], at=t)
        writer.flush()
        while writer.pruner.step() and writer.pruner._pending:
            pass
        if hour % 24 == 23:
            day = hour // 24 + 1
            sizes[day] = _size(db)
            conn = connect(db)
            rows[day] = conn.execute("SELECT COUNT(*) FROM AppRequests").fetchone()[0]
            conn.close()
    writer.close()
    # Raw rows level off at two days' worth (and the hour being written); the file stops
    # growing once the hour and day roll-ups are past their own four days (freed pages are
    # reused).
    assert rows[14] == rows[7] == (2 * 24 + 1) * 60
    assert sizes[14] <= sizes[7] * 1.1, sizes
