"""Load-test charts on fixed frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lib import charts


def test_latency_histogram_single_series_percentile_lines() -> None:
    values = np.arange(1.0, 101.0)
    fig = charts.latency_histogram(pd.DataFrame({"latency_ms": values}), bins=10)
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Bar)
    assert sum(fig.data[0].y) == 100 and len(fig.data[0].x) == 10
    xs = [s.x0 for s in fig.layout.shapes]
    assert xs == pytest.approx([np.percentile(values, q) for q in (50, 95, 99)])
    assert xs == pytest.approx([50.5, 95.05, 99.01])
    labels = [a.text for a in fig.layout.annotations]
    assert labels == ["p50 50.5 ms", "p95 95.0 ms", "p99 99.0 ms"]
    # each label a line below the one before: p95 and p99 a pixel apart no longer overlap
    shifts = [a.yshift or 0 for a in fig.layout.annotations]
    assert shifts[0] > shifts[1] > shifts[2]


def test_latency_histogram_overlay_by_run() -> None:
    frame = pd.DataFrame(
        {"latency_ms": [1.0, 2.0, 3.0, 10.0, 20.0], "run": ["a", "a", "a", "b", "b"]}
    )
    fig = charts.latency_histogram(frame, by="run", bins=5)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert [sum(t.y) for t in fig.data] == [3, 2]
    assert list(fig.data[0].x) == list(fig.data[1].x)  # shared bins
    assert all(t.opacity < 1 for t in fig.data) and fig.layout.barmode == "overlay"
    assert not fig.layout.shapes


def test_latency_percentiles_grouped_bars() -> None:
    summary = pd.DataFrame({"run": ["base", "tuned"], "p99": [90.0, 60.0], "p50": [10.0, 8.0]})
    fig = charts.latency_percentiles(summary)
    assert fig.layout.barmode == "group"
    assert [t.name for t in fig.data] == ["base", "tuned"]
    assert list(fig.data[0].x) == ["p50", "p99"]  # canonical order, only the columns present
    assert list(fig.data[1].y) == [8.0, 60.0]


def test_latency_over_time_overlays_runs() -> None:
    series = pd.DataFrame(
        {"second": [1.0, 0.0, 0.0], "p50": [5.0, 4.0, 3.0], "p99": [9.0, 8.0, 7.0]}
    )
    single = charts.latency_over_time(series)
    assert [t.name for t in single.data] == ["p50", "p99"]
    assert list(single.data[0].x) == [0.0, 0.0, 1.0]
    assert single.layout.xaxis.title.text == "Time since start (s)"

    runs = charts.latency_over_time(series.assign(run=["a", "a", "b"]))
    assert [t.name for t in runs.data] == ["a p50", "a p99", "b p50", "b p99"]
    assert runs.data[0].line.color == runs.data[1].line.color != runs.data[2].line.color


def test_throughput_with_errors_and_datetime_axis() -> None:
    seconds = pd.date_range("2024-05-01", periods=3, freq="1s")
    fig = charts.throughput_over_time(
        pd.DataFrame({"second": seconds, "requests": [10, 12, 11], "errors": [0, 1, 0]})
    )
    assert [t.name for t in fig.data] == ["requests", "errors"]
    assert list(fig.data[1].y) == [0, 1, 0]
    assert fig.data[1].line.color == charts.ERROR_COLOR
    assert fig.layout.xaxis.title.text == "Time"


def test_time_charts_share_one_hover_and_start_at_zero() -> None:
    series = pd.DataFrame({"second": [0, 1], "p50": [1.0, 2.0], "requests": [5.0, 6.0]})
    for fig in (charts.latency_over_time(series), charts.throughput_over_time(series)):
        assert fig.layout.hovermode == "x unified" and fig.layout.yaxis.rangemode == "tozero"


def test_a_run_of_a_second_or_two_shows_its_points() -> None:
    """One or two per-second bins are drawn as markers: a line through one point is invisible."""
    short = pd.DataFrame({"second": [0], "p50": [2.0], "p95": [3.0], "requests": [900.0]})
    for fig in (charts.latency_over_time(short), charts.throughput_over_time(short)):
        assert {t.mode for t in fig.data} == {"lines+markers"}
    long = pd.DataFrame({"second": [0, 1, 2], "p50": [2.0] * 3, "requests": [900.0] * 3})
    assert {t.mode for t in charts.latency_over_time(long).data} == {"lines"}
