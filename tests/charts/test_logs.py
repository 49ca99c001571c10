"""Request-log charts over the telemetry aggregates, on fixed frames."""

from __future__ import annotations

import pandas as pd

from lib import charts
from tests.charts.frames import is_empty, nan_list

T = pd.Timestamp("2024-05-01 10:00:00", tz="UTC")


def minute(i: int) -> pd.Timestamp:
    return T + pd.Timedelta(minutes=i)


def codes_frame() -> pd.DataFrame:
    """Requests per minute and code; 10:02 has none."""
    return pd.DataFrame(
        {
            "TimeGenerated": [
                minute(0),
                minute(0),
                minute(0),
                minute(0),
                minute(1),
                minute(1),
                minute(3),
            ],
            "ResultCode": ["200", "404", "500", "503", "200", "503", "200"],
            "Requests": [3, 1, 1, 0, 1, 1, 1],
        }
    )


def summary_frame(deployments: bool = False) -> pd.DataFrame:
    rows = [
        (minute(0), "blue", 5, 2, 3.0, 90.0, 100.0),
        (minute(1), "blue", 2, 1, 15.0, 20.0, 20.0),
        (minute(3), "blue", 1, 0, 7.0, 7.0, 7.0),
    ]
    if deployments:
        rows += [
            (minute(0), "green", 4, 0, 30.0, 40.0, 41.0),
            (minute(1), "green", 2, 2, 31.0, 33.0, 35.0),
        ]
    frame = pd.DataFrame(
        rows, columns=["TimeGenerated", "Deployment", "Requests", "Failed", "p50", "p95", "p99"]
    )
    return frame.assign(Endpoint="ep", MeanMs=1.0)


def test_requests_by_result_stacked_counts_with_empty_bins() -> None:
    fig = charts.requests_by_result(codes_frame(), bin_s=60)
    assert fig.layout.barmode == "stack"
    assert {t.name: list(t.y) for t in fig.data} == {
        "200": [3, 1, 0, 1],
        "404": [1, 0, 0, 0],
        "500": [1, 0, 0, 0],
        "503": [0, 1, 0, 0],
    }
    colours = {t.name: t.marker.color for t in fig.data}
    assert colours["200"] == charts.STATUS_COLORS["2xx"]
    assert colours["500"] == charts.STATUS_COLORS["5xx"] != colours["503"]  # shades differ
    assert fig.layout.yaxis.title.text == "Requests per 1 min"


def test_latency_percentiles_are_the_summary_values_with_gaps() -> None:
    fig = charts.request_latency_percentiles(summary_frame(), bin_s=60)
    assert [t.name for t in fig.data] == ["p50", "p95", "p99"]
    assert nan_list(list(fig.data[0].y)) == [3.0, 15.0, None, 7.0]
    assert list(fig.data[0].customdata) == [5, 2, 0, 1]


def test_failure_rate_percent_per_bin() -> None:
    fig = charts.failure_rate(summary_frame(), bin_s=60)
    assert nan_list(list(fig.data[0].y)) == [40.0, 50.0, None, 0.0]


def test_deployment_lines_side_by_side() -> None:
    frame = summary_frame(deployments=True)
    p95 = charts.deployment_lines(frame, "p95", bin_s=60)
    assert [t.name for t in p95.data] == ["blue", "green"]
    assert nan_list(list(p95.data[1].y)) == [40.0, 33.0]
    failures = charts.deployment_lines(frame, "FailureRate", bin_s=60)
    assert nan_list(list(failures.data[1].y)) == [0.0, 100.0]
    requests = charts.deployment_lines(frame, "Requests", bin_s=60)
    assert nan_list(list(requests.data[0].y)) == [5, 2, None, 1]
    assert is_empty(charts.deployment_lines(frame.iloc[0:0], "p95"))


def test_prediction_shares_grouped_by_deployment() -> None:
    shares = pd.DataFrame(
        {
            "Endpoint": "ep",
            "Deployment": ["blue", "blue", "green"],
            "Prediction": ["no", "yes", "no"],
            "Rows": [80, 20, 10],
            "Share": [0.8, 0.2, 1.0],
        }
    )
    fig = charts.prediction_shares(shares)
    assert fig.layout.barmode == "group"
    assert {t.name: list(t.y) for t in fig.data} == {"blue": [80.0, 20.0], "green": [100.0]}


def test_bin_labels() -> None:
    assert [charts.bin_label(s) for s in (60, 900, 3600, 21600, 86400)] == [
        "1 min",
        "15 min",
        "1 h",
        "6 h",
        "1 day",
    ]


def test_empty_aggregates_give_the_no_data_figure() -> None:
    assert is_empty(charts.requests_by_result(codes_frame().iloc[0:0]))
    assert is_empty(charts.request_latency_percentiles(pd.DataFrame()))
    assert is_empty(charts.failure_rate(None))


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


def test_a_single_bin_is_shown_with_a_bin_either_side() -> None:
    one = summary_frame().iloc[:1]
    for fig in (
        charts.request_latency_percentiles(one, bin_s=60),
        charts.failure_rate(one, bin_s=60),
        charts.deployment_lines(one, "p95", bin_s=60),
    ):
        low, high = (pd.Timestamp(v) for v in fig.layout.xaxis.range)
        assert (low, high) == (minute(-1), minute(1))
    # More than one bin: plotly's own range.
    assert charts.request_latency_percentiles(summary_frame(), bin_s=60).layout.xaxis.range is None
