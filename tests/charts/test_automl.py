"""AutoML charts on fixed frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lib import charts
from lib.metrics import CATALOG, higher_is_better
from tests.charts.frames import nan_list


def test_best_so_far_both_directions_with_nan() -> None:
    values = pd.Series([np.nan, 0.5, 0.3, np.nan, 0.7, 0.6])
    up = charts.best_so_far(values, higher_is_better=True)
    down = charts.best_so_far(values, higher_is_better=False)
    assert nan_list(up.tolist()) == [None, 0.5, 0.5, 0.5, 0.7, 0.7]
    assert nan_list(down.tolist()) == [None, 0.5, 0.3, 0.3, 0.3, 0.3]
    assert list(up.index) == list(values.index)


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


def test_a_multiclass_models_curves_are_one_per_class() -> None:
    """Dry Bean's 7 classes: the points of every class were sorted into one jagged line."""
    roc = pd.DataFrame(
        {
            "class": ["SEKER", "SEKER", "SEKER", "<b>x</b>", "<b>x</b>", "<b>x</b>"],
            "fpr": [0.0, 0.1, 1.0, 0.0, 0.4, 1.0],
            "tpr": [0.0, 0.9, 1.0, 0.0, 0.5, 1.0],
        }
    )
    fig = charts.roc_curve(roc, auc=0.9847)
    curves = [t for t in fig.data if t.name != "Chance"]
    assert [t.name for t in curves] == ["SEKER vs rest", "&lt;b&gt;x&lt;/b&gt; vs rest"]
    assert list(curves[1].x) == [0.0, 0.4, 1.0] and list(curves[1].y) == [0.0, 0.5, 1.0]
    assert curves[0].line.color != curves[1].line.color
    assert "weighted AUC 0.985" in fig.layout.title.text
    pr = roc.rename(columns={"fpr": "recall", "tpr": "precision"})
    fig = charts.pr_curve(pr, average_precision=0.9, base_rate=0.3)
    assert len(fig.data) == 2  # one base rate would be wrong for every class: none drawn
    cal = roc.rename(columns={"fpr": "mean_predicted", "tpr": "fraction_positive"})
    assert len(charts.calibration_curve(cal).data) == 3
    # a binary model's points name their one class: a single curve, as before
    one = roc[roc["class"] == "SEKER"]
    assert [t.name for t in charts.roc_curve(one, auc=0.9).data] == ["ROC (AUC = 0.900)", "Chance"]


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


@pytest.mark.parametrize("metric", [m.name for m in CATALOG])
def test_estimator_comparison_takes_the_direction_from_the_catalog(metric: str) -> None:
    rows = pd.DataFrame({"estimator": ["low", "high"], metric: [0.1, 0.9]})
    top = charts.estimator_comparison(rows, metric).data[0].y[0]
    assert top == ("high" if higher_is_better(metric) else "low")


def test_a_regression_models_fit_and_residuals() -> None:
    points = pd.DataFrame({"true": [1.0, 2.0, 3.0, np.nan], "predicted": [1.5, 1.5, 3.5, 2.0]})
    fig = charts.predicted_vs_true(points, r2=0.8123)
    line, rows = fig.data
    assert list(line.x) == [1.0, 3.5] and list(line.y) == [1.0, 3.5]  # predicted = true
    assert list(rows.x) == [1.0, 2.0, 3.0] and list(rows.y) == [1.5, 1.5, 3.5]
    assert fig.layout.title.text == "Predicted vs true (R² 0.812)"
    hist = charts.residuals(points).data[0]
    assert sorted(hist.x) == [-0.5, 0.5, 0.5]
    assert charts.residuals(points.iloc[:0]).layout.annotations[0].text == charts.EMPTY_TEXT
