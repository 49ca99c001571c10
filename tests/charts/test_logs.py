"""Request-log charts (App Insights columns) on fixed frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib import charts
from tests.charts.frames import nan_list, requests_frame


def test_binned_percentiles_from_raw_rows() -> None:
    out = charts.binned_percentiles(requests_frame(), "TimeGenerated", "DurationMs", "1min")
    assert list(out.columns) == ["TimeGenerated", "p50", "p95", "p99", "count"]
    # Bins 10:00..10:03; 10:02 has no requests and is kept as a gap.
    assert out["TimeGenerated"].dt.minute.tolist() == [0, 1, 2, 3]
    assert out["count"].tolist() == [5, 2, 0, 1]
    first = out.iloc[0]
    assert first["p50"] == 3.0  # [1, 2, 3, 4, 100], not a mean of anything
    assert first["p95"] == pytest.approx(np.percentile([1, 2, 3, 4, 100], 95))
    assert out.iloc[1]["p50"] == 15.0
    assert math.isnan(out.iloc[2]["p50"])


def test_binned_percentiles_custom_and_empty() -> None:
    out = charts.binned_percentiles(
        requests_frame(), "TimeGenerated", "DurationMs", "5min", percentiles=(50, 99.9)
    )
    assert list(out.columns) == ["TimeGenerated", "p50", "p99.9", "count"]
    assert out["count"].tolist() == [8]
    empty = charts.binned_percentiles(pd.DataFrame(), "TimeGenerated", "DurationMs", "1min")
    assert empty.empty and "p95" in empty.columns


def test_requests_by_result_stacked_counts() -> None:
    fig = charts.requests_by_result(requests_frame())
    assert fig.layout.barmode == "stack"
    by_code = {t.name: list(t.y) for t in fig.data}
    assert by_code == {
        "200": [3, 1, 0, 1],
        "404": [1, 0, 0, 0],
        "500": [1, 0, 0, 0],
        "503": [0, 1, 0, 0],
    }
    colours = {t.name: t.marker.color for t in fig.data}
    assert colours["200"] == charts.STATUS_COLORS["2xx"]
    assert colours["500"] == charts.STATUS_COLORS["5xx"] != colours["503"]  # shades differ


def test_request_latency_percentiles_lines_match_helper() -> None:
    fig = charts.request_latency_percentiles(requests_frame())
    assert [t.name for t in fig.data] == ["p50", "p95", "p99"]
    assert nan_list(list(fig.data[0].y)) == [3.0, 15.0, None, 7.0]


def test_failure_rate_percent_per_bin() -> None:
    fig = charts.failure_rate(requests_frame())
    assert nan_list(list(fig.data[0].y)) == [40.0, 50.0, None, 0.0]
    strings = requests_frame().assign(
        Success=["True", "true", "1", "False", "0", "True", "false", "1"]
    )
    assert nan_list(list(charts.failure_rate(strings).data[0].y)) == [40.0, 50.0, None, 0.0]


def test_status_code_colours_by_class() -> None:
    counts = pd.DataFrame(
        {"code": [200, "404", 503, "ConnectionError", "200", 301], "count": [5, 2, 1, 1, 3, 1]}
    )
    bar = charts.status_codes(counts).data[0]
    colours = dict(zip(bar.x, bar.marker.color, strict=True))
    heights = dict(zip(bar.x, bar.y, strict=True))
    assert heights["200"] == 8  # int and str codes are merged
    assert colours["200"] == charts.STATUS_COLORS["2xx"]
    assert colours["404"] == charts.STATUS_COLORS["4xx"]
    assert colours["503"] == charts.STATUS_COLORS["5xx"]
    assert colours["ConnectionError"] == colours["301"] == charts.STATUS_COLORS["other"]
