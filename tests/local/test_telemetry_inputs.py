"""Drift sampling in the telemetry writer: on/off, rate, per-minute cap, counts per grain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from lib.appinsights import TelemetryQuery
from lib.drift import build_baseline
from lib.local.drift import LocalMonitoring
from lib.local.telemetry import SamplingSettings, TelemetryWriter, connect
from lib.local.telemetry.inputs import COUNTS_DTYPE, InputSamples

TRAINING = pd.DataFrame({"x": np.arange(100) % 10, "c": ["u", "v"] * 50, "y": ["no", "yes"] * 50})
BASELINE = build_baseline(TRAINING, target="y", source="t v1")
NOW = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def rows(n: int) -> list[dict]:
    return [{"x": i % 10, "c": "uv"[i % 2]} for i in range(n)]


def test_nothing_is_kept_when_off_or_without_a_baseline():
    samples = InputSamples(SamplingSettings(enabled=False))
    samples.set_baseline(BASELINE)
    samples.offer(rows(5), ["no"] * 5)
    assert samples.drain() == []
    unset = InputSamples(SamplingSettings())
    unset.offer(rows(5), ["no"] * 5)
    assert unset.drain() == []


def test_cap_per_minute_and_rate():
    clock = Clock(NOW.timestamp())
    samples = InputSamples(SamplingSettings(cap_per_minute=250), clock=clock)
    samples.set_baseline(BASELINE)
    for _ in range(4):
        samples.offer(rows(100), ["no"] * 100)
    kept = samples.drain()
    assert [len(s[3]) for s in kept] == [100, 100, 50]  # the third request cut to the cap
    assert samples.dropped == 150
    clock.t += 60  # a new minute, a new allowance
    samples.offer(rows(10), ["no"] * 10)
    assert len(samples.drain()) == 1
    draws = iter([0.1, 0.9, 0.4, 0.6])
    half = InputSamples(SamplingSettings(rate=0.5), clock=clock, rng=lambda: next(draws))
    half.set_baseline(BASELINE)
    for _ in range(4):
        half.offer(rows(1), ["no"])
    assert len(half.drain()) == 2  # draws under 0.5 keep the request


def test_counts_are_summed_per_grain_and_read_back(tmp_path):
    db = tmp_path / "t.db"
    clock = Clock(NOW.timestamp() + 30)
    writer = TelemetryWriter(db, endpoint="ep", flush_interval=3600, clock=clock)
    writer.set_baseline(BASELINE, "blue")
    writer.record_inputs(rows(40), ["no"] * 30 + ["yes"] * 10, "blue")
    clock.t += 600  # a later 5-minute bin, same hour
    writer.record_inputs(rows(20), [[0.2, 0.8]] * 20, "blue", classes=["no", "yes"])  # proba rows
    writer.flush()
    writer.close()
    conn = connect(db)
    stored = conn.execute(
        "SELECT Grain, COUNT(*), SUM(Rows) FROM DriftRollup GROUP BY Grain ORDER BY Grain"
    ).fetchall()
    assert stored == [(300, 2, 60), (3600, 1, 60), (86400, 1, 60)]
    hour = conn.execute("SELECT Counts FROM DriftRollup WHERE Grain = 3600").fetchone()[0]
    assert np.frombuffer(hour, COUNTS_DTYPE).sum() == 60 * (len(BASELINE.features) + 1)
    assert conn.execute("SELECT COUNT(*) FROM DriftBaselines").fetchone()[0] == 1
    conn.close()
    monitoring = LocalMonitoring(db)
    report = monitoring.report("ep", NOW, NOW + timedelta(hours=1), bin_s=300)
    assert report.rows == 60 and report.baseline_source == "t v1"
    assert {f.feature for f in report.features} == {"x", "c"}
    assert report.prediction.actual[:2] == (30 / 60, 30 / 60)
    over_time = report.predictions_over_time
    assert list(over_time["Rows"]) == [30, 10, 20]  # no, yes in the first bin; yes in the second
    shares = monitoring.prediction_shares(TelemetryQuery("ep", NOW, NOW + timedelta(hours=1)))
    assert dict(zip(shares["Prediction"], shares["Rows"], strict=True)) == {"no": 30, "yes": 30}


def test_a_writer_takes_sampling_and_retention_from_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSDECK_DRIFT_SAMPLING", "off")
    monkeypatch.setenv("OPSDECK_TELEMETRY_RAW_DAYS", "3")
    writer = TelemetryWriter(tmp_path / "t.db", flush_interval=3600)
    writer.set_baseline(BASELINE)
    writer.record_inputs(rows(5), ["no"] * 5)
    assert writer.inputs.drain() == []
    assert writer.pruner.retention.raw_days == 3.0
    writer.close()
