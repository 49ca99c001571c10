import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lib import charts


def _is_empty(fig: go.Figure) -> bool:
    return [a.text for a in fig.layout.annotations] == [charts.EMPTY_TEXT] and not fig.data


def _nan_list(values) -> list:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def _requests() -> pd.DataFrame:
    start = pd.Timestamp("2024-05-01 10:00:00", tz="UTC")
    offsets_s = [0, 10, 20, 30, 40, 65, 70, 190]
    return pd.DataFrame(
        {
            "TimeGenerated": [start + pd.Timedelta(seconds=s) for s in offsets_s],
            "ResultCode": ["200", "200", "200", "500", "404", "200", "503", "200"],
            "DurationMs": [1.0, 2.0, 3.0, 4.0, 100.0, 10.0, 20.0, 7.0],
            "Success": [True, True, True, False, False, True, False, True],
        }
    )


# --- pure helpers -----------------------------------------------------------------------------


def test_best_so_far_both_directions_with_nan() -> None:
    values = pd.Series([np.nan, 0.5, 0.3, np.nan, 0.7, 0.6])
    up = charts.best_so_far(values, higher_is_better=True)
    down = charts.best_so_far(values, higher_is_better=False)
    assert _nan_list(up.tolist()) == [None, 0.5, 0.5, 0.5, 0.7, 0.7]
    assert _nan_list(down.tolist()) == [None, 0.5, 0.3, 0.3, 0.3, 0.3]
    assert list(up.index) == list(values.index)


def test_binned_percentiles_from_raw_rows() -> None:
    out = charts.binned_percentiles(_requests(), "TimeGenerated", "DurationMs", "1min")
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
        _requests(), "TimeGenerated", "DurationMs", "5min", percentiles=(50, 99.9)
    )
    assert list(out.columns) == ["TimeGenerated", "p50", "p99.9", "count"]
    assert out["count"].tolist() == [8]
    empty = charts.binned_percentiles(pd.DataFrame(), "TimeGenerated", "DurationMs", "1min")
    assert empty.empty and "p95" in empty.columns


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


# --- empty inputs -----------------------------------------------------------------------------


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
    assert _is_empty(fig)
    assert fig.layout.template.layout.paper_bgcolor == "white"  # plotly_white


def test_empty_with_columns_and_all_nan() -> None:
    cols = pd.DataFrame(columns=["wall_time_s", "primary_metric", "estimator"])
    assert _is_empty(charts.best_score_over_time(cols, "r2"))
    all_nan = pd.DataFrame({"wall_time_s": [1.0], "primary_metric": [np.nan], "estimator": ["rf"]})
    assert _is_empty(charts.best_score_over_time(all_nan, "r2"))
    assert _is_empty(charts.latency_histogram(pd.DataFrame({"latency_ms": [np.nan]})))


def test_missing_column_on_non_empty_frame_is_an_error() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        charts.latency_histogram(pd.DataFrame({"latency": [1.0]}))


# --- AutoML -----------------------------------------------------------------------------------


def test_best_score_over_time_scatter_and_step_line() -> None:
    trials = pd.DataFrame(
        {
            "trial": [3, 1, 2, 4],
            "wall_time_s": [3.0, 1.0, 2.0, 4.0],
            "primary_metric": [0.9, 0.8, np.nan, 0.85],
            "estimator": ["rf", "lgbm", "rf", "lgbm"],
        }
    )
    fig = charts.best_score_over_time(trials, "AUC_weighted")
    assert [t.name for t in fig.data] == ["lgbm", "rf", "Best so far"]
    assert all(isinstance(t, go.Scatter) for t in fig.data)
    lgbm, rf, best = fig.data
    assert list(lgbm.x) == [1.0, 4.0] and list(lgbm.y) == [0.8, 0.85]
    assert list(rf.x) == [3.0] and list(rf.customdata) == [3]  # the NaN trial is not plotted
    assert best.line.shape == "hv"
    assert list(best.x) == [1.0, 2.0, 3.0, 4.0]
    assert list(best.y) == [0.8, 0.8, 0.9, 0.9]
    assert fig.layout.xaxis.title.text == "Wall time (s)"
    assert fig.layout.height == charts.HEIGHT

    lower = charts.best_score_over_time(trials, "log_loss", higher_is_better=False)
    assert list(lower.data[-1].y) == [0.8, 0.8, 0.8, 0.8]


def test_estimator_comparison_best_first_per_estimator() -> None:
    rows = pd.DataFrame(
        {"estimator": ["rf", "lgbm", "rf", "xgboost"], "accuracy": [0.80, 0.91, 0.85, 0.88]}
    )
    bar = charts.estimator_comparison(rows, "accuracy").data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == ["lgbm", "xgboost", "rf"]
    assert list(bar.x) == [0.91, 0.88, 0.85]

    losses = pd.DataFrame({"estimator": ["rf", "lgbm", "rf"], "rmse": [3.0, 2.5, 1.5]})
    fig = charts.estimator_comparison(losses, "rmse")
    assert list(fig.data[0].y) == ["rf", "lgbm"] and list(fig.data[0].x) == [1.5, 2.5]
    assert fig.layout.yaxis.autorange == "reversed"  # first row drawn at the top
    forced = charts.estimator_comparison(losses, "rmse", higher_is_better=True)
    assert list(forced.data[0].y) == ["rf", "lgbm"] and list(forced.data[0].x) == [3.0, 2.5]


def test_roc_curve_with_diagonal_and_auc() -> None:
    points = pd.DataFrame({"fpr": [0.0, 1.0, 0.2], "tpr": [0.0, 1.0, 0.7]})
    fig = charts.roc_curve(points, auc=0.8512)
    assert len(fig.data) == 2
    assert list(fig.data[0].x) == [0.0, 0.2, 1.0] and list(fig.data[0].y) == [0.0, 0.7, 1.0]
    assert list(fig.data[1].x) == [0, 1] and list(fig.data[1].y) == [0, 1]
    assert "0.851" in fig.data[0].name and "0.851" in fig.layout.title.text
    assert "AUC" not in charts.roc_curve(points).layout.title.text


def test_pr_curve_base_rate_line() -> None:
    points = pd.DataFrame({"recall": [1.0, 0.5, 0.0], "precision": [0.2, 0.6, 1.0]})
    fig = charts.pr_curve(points, average_precision=0.61, base_rate=0.2)
    assert len(fig.data) == 2
    assert list(fig.data[0].x) == [0.0, 0.5, 1.0]
    assert list(fig.data[1].y) == [0.2, 0.2]
    assert "0.610" in fig.layout.title.text
    assert len(charts.pr_curve(points).data) == 1


def test_confusion_matrix_counts_and_row_percentages() -> None:
    matrix = [[8, 2], [1, 3]]
    fig = charts.confusion_matrix(matrix, ["no", "yes"])
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    assert [list(r) for r in heat.z] == [[8, 2], [1, 3]]
    assert [list(r) for r in heat.text] == [["8", "2"], ["1", "3"]]
    assert list(heat.x) == ["no", "yes"] and list(heat.y) == ["no", "yes"]
    assert fig.layout.xaxis.title.text == "Predicted label"
    assert fig.layout.yaxis.title.text == "Actual label"

    norm = charts.confusion_matrix([[8, 2], [1, 3], [0, 0]], ["a", "b", "c"], normalize=True)
    heat = norm.data[0]
    assert [list(r) for r in heat.z] == [[80.0, 20.0], [25.0, 75.0], [0.0, 0.0]]
    assert heat.text[0][0] == "8<br>(80.0%)" and heat.text[1][1] == "3<br>(75.0%)"
    assert list(heat.y) == ["a", "b", "c"] and list(heat.x) == ["a", "b"]


def test_calibration_curve_with_diagonal_and_counts() -> None:
    points = pd.DataFrame(
        {"mean_predicted": [0.7, 0.1], "fraction_positive": [0.6, 0.15], "count": [40, 60]}
    )
    diagonal, model = charts.calibration_curve(points).data
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    assert list(model.x) == [0.1, 0.7] and list(model.customdata) == [60, 40]


def test_feature_importance_top_n_largest_first() -> None:
    importance = pd.DataFrame(
        {"feature": ["a", "b", "c", "d"], "importance": [0.1, 0.4, np.nan, 0.3]}
    )
    fig = charts.feature_importance(importance, top=2)
    bar = fig.data[0]
    assert list(bar.y) == ["b", "d"] and list(bar.x) == [0.4, 0.3]
    assert fig.layout.yaxis.autorange == "reversed"


# --- benchmarks -------------------------------------------------------------------------------


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


# --- App Insights telemetry -------------------------------------------------------------------


def test_requests_by_result_stacked_counts() -> None:
    fig = charts.requests_by_result(_requests())
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
    fig = charts.request_latency_percentiles(_requests())
    assert [t.name for t in fig.data] == ["p50", "p95", "p99"]
    assert _nan_list(list(fig.data[0].y)) == [3.0, 15.0, None, 7.0]


def test_failure_rate_percent_per_bin() -> None:
    fig = charts.failure_rate(_requests())
    assert _nan_list(list(fig.data[0].y)) == [40.0, 50.0, None, 0.0]
    strings = _requests().assign(Success=["True", "true", "1", "False", "0", "True", "false", "1"])
    assert _nan_list(list(charts.failure_rate(strings).data[0].y)) == [40.0, 50.0, None, 0.0]
