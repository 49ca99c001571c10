"""Result statistics on known samples: percentiles from raw values, error kinds, series, SLO."""

from __future__ import annotations

import numpy as np
import pytest

from lib.benchmark import (
    STATUS_CONNECTION_ERROR,
    STATUS_TIMEOUT,
    STATUS_UNKNOWN,
    answered,
    evaluate_slo,
    latency_histogram,
    per_second_series,
    percentiles,
    summarize,
)


def test_percentiles_of_known_list() -> None:
    p = percentiles(list(range(1, 101)))
    assert p == {"p50_ms": 50.5, "p90_ms": 90.1, "p95_ms": 95.05, "p99_ms": 99.01}
    assert percentiles([]) == {"p50_ms": None, "p90_ms": None, "p95_ms": None, "p99_ms": None}


def test_summarize_counts_errors_and_excludes_failed_latencies() -> None:
    lat = [10.0, 20.0, 30.0, 40.0, 5000.0, 1.0, 50.0, 60.0]
    st = [200, 200, 200, 404, STATUS_TIMEOUT, STATUS_CONNECTION_ERROR, 500, 200]
    s = summarize(lat, st, started=100.0, ended=102.0)
    assert s["requests"] == 8
    assert s["errors"] == 4
    assert s["ok"] == 4
    assert s["error_rate"] == 0.5
    assert s["throughput_rps"] == 4.0
    assert s["error_kinds"] == {
        "timeout": 1,
        "connection": 1,
        "protocol": 0,
        "http_4xx": 1,
        "http_5xx": 1,
    }
    assert s["status_counts"] == {"200": 4, "404": 1, "500": 1, "timeout": 1, "connection_error": 1}
    # Timeout (5000) and connection error (1) carry no real latency.
    assert s["max_ms"] == 60.0 and s["min_ms"] == 10.0
    assert s["mean_ms"] == 35.0
    assert s["p50_ms"] == 35.0


def test_summarize_percentiles_are_from_raw_samples_not_averaged() -> None:
    rng = np.random.default_rng(1)
    lat = np.concatenate([rng.uniform(1, 2, 990), np.full(10, 100.0)])
    s = summarize(lat, np.full(1000, 200), 0, 1)
    assert s["p99_ms"] == pytest.approx(np.percentile(lat, 99), abs=1e-3)
    assert s["max_ms"] == 100.0


def test_summarize_empty_run() -> None:
    s = summarize([], [], 0, 0)
    assert s["requests"] == 0 and s["throughput_rps"] == 0.0 and s["p95_ms"] is None


def test_latency_histogram() -> None:
    h = latency_histogram([1, 2, 2, 3, 4], bins=3)
    assert [b["count"] for b in h] == [1, 2, 2]
    assert h[0]["lo_ms"] == 1 and h[-1]["hi_ms"] == 4
    assert latency_histogram([5, 5, 5]) == [{"lo_ms": 5.0, "hi_ms": 5.0, "count": 3}]
    assert latency_histogram([]) == []


def test_per_second_series_uses_partial_last_second() -> None:
    end_s = [0.1, 0.5, 0.9, 1.2, 2.1]
    lat = [10, 20, 30, 40, 50]
    st = [200, 200, 500, 200, STATUS_TIMEOUT]
    rows = per_second_series(end_s, lat, st, duration_s=2.5)
    assert [r["requests"] for r in rows] == [3, 1, 1]
    assert [r["rps"] for r in rows] == [3.0, 1.0, 2.0]  # last bin is half a second wide
    assert [r["errors"] for r in rows] == [1, 0, 1]
    assert rows[0]["p50_ms"] == 20.0
    assert rows[2]["p50_ms"] is None  # only a timeout in that second


def test_slo() -> None:
    s = {"p95_ms": 80.0, "error_rate": 0.02}
    assert evaluate_slo(s, None, None) is None
    assert evaluate_slo(s, 100, 0.05)["passed"] is True
    verdict = evaluate_slo(s, 50, 0.01)
    assert verdict["passed"] is False and len(verdict["reasons"]) == 2


def test_answered_keeps_http_replies_and_imported_samples() -> None:
    mask = answered([200, 404, 500, STATUS_UNKNOWN, STATUS_TIMEOUT, STATUS_CONNECTION_ERROR])
    assert mask.tolist() == [True, True, True, True, False, False]
