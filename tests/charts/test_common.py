"""The shared contract of every chart: "No data yet" on empty input, errors on wrong columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lib import charts
from tests.charts.frames import is_empty


def test_status_class() -> None:
    assert [charts.status_class(c) for c in (200, "204", 404.0, "503", 301, "Timeout", None)] == [
        "2xx",
        "2xx",
        "4xx",
        "5xx",
        "other",
        "other",
        "other",
    ]


@pytest.mark.parametrize(
    "build",
    [
        lambda e: charts.best_score_over_time(e, "AUC_weighted"),
        lambda e: charts.estimator_comparison(e, "AUC_weighted"),
        lambda e: charts.roc_curve(e, 0.9),
        lambda e: charts.pr_curve(e, 0.5, 0.1),
        lambda e: charts.confusion_matrix([], []),
        lambda e: charts.calibration_curve(e),
        lambda e: charts.feature_importance(e),
        lambda e: charts.latency_histogram(e),
        lambda e: charts.latency_histogram(e, by="run"),
        lambda e: charts.latency_percentiles(e),
        lambda e: charts.latency_over_time(e),
        lambda e: charts.throughput_over_time(e),
        lambda e: charts.status_codes(e),
        lambda e: charts.requests_by_result(e),
        lambda e: charts.request_latency_percentiles(e),
        lambda e: charts.failure_rate(e),
    ],
)
def test_empty_input_gives_no_data_figure(build) -> None:
    fig = build(pd.DataFrame())
    assert isinstance(fig, go.Figure)
    assert is_empty(fig)
    assert fig.layout.template.layout.paper_bgcolor == "white"  # plotly_white


def test_empty_with_columns_and_all_nan() -> None:
    cols = pd.DataFrame(columns=["wall_time_s", "primary_metric", "estimator"])
    assert is_empty(charts.best_score_over_time(cols, "r2"))
    all_nan = pd.DataFrame({"wall_time_s": [1.0], "primary_metric": [np.nan], "estimator": ["rf"]})
    assert is_empty(charts.best_score_over_time(all_nan, "r2"))
    assert is_empty(charts.latency_histogram(pd.DataFrame({"latency_ms": [np.nan]})))


def test_missing_column_on_non_empty_frame_is_an_error() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        charts.latency_histogram(pd.DataFrame({"latency": [1.0]}))


def test_figures_keep_the_house_template_after_streamlit_sets_its_own() -> None:
    import plotly.io as pio
    import streamlit  # noqa: F401  (importing it makes "streamlit" plotly's default template)

    pio.templates.default = "streamlit"  # as after any import order
    fig = charts.status_codes(pd.DataFrame({"code": ["200"], "count": [3]}))
    assert fig.layout.template.layout.paper_bgcolor == "white"  # plotly_white
