"""Plotly figure builders for the AutoML, benchmark and request-log views.

Pure functions of DataFrames (or plain lists where stated): no Streamlit, no I/O. Empty input gives
a figure with a centered "No data yet" note instead of an error. One module per subject
(``automl``, ``benchmarks``, ``logs``; the shared look in ``common``); pages use
``from lib import charts; charts.roc_curve(...)``.
"""

from __future__ import annotations

from lib.charts.automl import (
    best_score_over_time,
    best_so_far,
    calibration_curve,
    confusion_matrix,
    estimator_comparison,
    feature_importance,
    pr_curve,
    predicted_vs_true,
    residuals,
    roc_curve,
)
from lib.charts.benchmarks import (
    latency_histogram,
    latency_over_time,
    latency_percentiles,
    throughput_over_time,
)
from lib.charts.common import (
    DIAGONAL_LINE,
    EMPTY_TEXT,
    ERROR_COLOR,
    HEIGHT,
    PALETTE,
    PERCENTILE_COLORS,
    PERCENTILE_COLUMNS,
    STATUS_COLORS,
    TEMPLATE,
    status_class,
)
from lib.charts.logs import (
    bin_label,
    deployment_lines,
    failure_rate,
    prediction_shares,
    request_latency_percentiles,
    requests_by_result,
    status_codes,
)

__all__ = [
    "DIAGONAL_LINE",
    "EMPTY_TEXT",
    "ERROR_COLOR",
    "HEIGHT",
    "PALETTE",
    "PERCENTILE_COLORS",
    "PERCENTILE_COLUMNS",
    "STATUS_COLORS",
    "TEMPLATE",
    "best_score_over_time",
    "best_so_far",
    "bin_label",
    "calibration_curve",
    "confusion_matrix",
    "deployment_lines",
    "estimator_comparison",
    "failure_rate",
    "feature_importance",
    "latency_histogram",
    "latency_over_time",
    "latency_percentiles",
    "pr_curve",
    "predicted_vs_true",
    "residuals",
    "prediction_shares",
    "request_latency_percentiles",
    "requests_by_result",
    "roc_curve",
    "status_class",
    "status_codes",
    "throughput_over_time",
]
