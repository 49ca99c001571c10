"""Plotly figure builders for the AutoML, benchmark and telemetry views.

Pure functions of DataFrames (or plain lists where stated): no Streamlit, no I/O. Empty input gives
a figure with a centered "No data yet" note instead of an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

HEIGHT = 320
TEMPLATE = "plotly_white"
EMPTY_TEXT = "No data yet"

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
PERCENTILE_COLUMNS = ("p50", "p90", "p95", "p99", "max")
PERCENTILE_COLORS = {
    "p50": "#1f77b4",
    "p90": "#17becf",
    "p95": "#ff7f0e",
    "p99": "#d62728",
    "max": "#7f7f7f",
}
PERCENTILE_DASHES = {
    "p50": "solid",
    "p90": "dashdot",
    "p95": "dash",
    "p99": "dot",
    "max": "longdash",
}
STATUS_COLORS = {"2xx": "#2ca02c", "4xx": "#ff7f0e", "5xx": "#d62728", "other": "#7f7f7f"}
# Shades per class so several codes of one class stay distinguishable when stacked.
STATUS_SHADES = {
    "2xx": ("#2ca02c", "#74c476", "#1b7a1b", "#a1d99b"),
    "4xx": ("#ff7f0e", "#fdae6b", "#d95f02", "#fdd0a2"),
    "5xx": ("#d62728", "#fc9272", "#a50f15", "#fcbba1"),
    "other": ("#7f7f7f", "#bdbdbd", "#525252", "#d9d9d9"),
}
ERROR_COLOR = "#d62728"
DIAGONAL_LINE = {"color": "#9e9e9e", "dash": "dash", "width": 1}
_LOWER_IS_BETTER_HINTS = ("loss", "error", "rmse", "mse", "mae", "mape")


# --- shared plumbing --------------------------------------------------------------------------


def _style(
    fig: go.Figure, title: str, x_title: str = "", y_title: str = "", height: int = HEIGHT
) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        height=height,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        hovermode="closest",
    )
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def _empty(title: str, x_title: str = "", y_title: str = "") -> go.Figure:
    fig = _style(go.Figure(), title, x_title, y_title)
    fig.add_annotation(
        text=EMPTY_TEXT,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16, "color": "#9e9e9e"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _has_rows(df: pd.DataFrame | None, columns: Iterable[str]) -> bool:
    """False for None or zero rows; a non-empty frame missing a required column is a caller bug."""
    if df is None or len(df) == 0:
        return False
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; got {list(df.columns)}")
    return True


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype(float)


def _datetimes(series: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    return pd.to_datetime(series, errors="coerce", utc=True)


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _lower_is_better(metric: str) -> bool:
    name = metric.lower()
    return any(hint in name for hint in _LOWER_IS_BETTER_HINTS)


def _percentile(values: pd.Series, q: float) -> float:
    # Linear interpolation, the same as pandas' quantile, so tables and charts agree.
    return float(values.quantile(q / 100))


def _percentile_name(q: float) -> str:
    return f"p{q:g}"


def _time_axis_title(x: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(x):
        return "Time"
    return "Time since start (s)"


def _x_hover(x: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(x):
        return "%{x|%H:%M:%S}"
    return "%{x:,.0f} s"


def _runs(df: pd.DataFrame, column: str | None) -> list[tuple[str | None, pd.DataFrame]]:
    """Groups in first-appearance order, or one unnamed group when there is no run column."""
    if column is None or column not in df.columns:
        return [(None, df)]
    keys = df[column].fillna("(none)").astype(str)
    return [(name, df[keys == name]) for name in pd.unique(keys)]


# --- pure helpers -----------------------------------------------------------------------------


def best_so_far(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """Running best of a metric series; NaN entries carry the previous best forward."""
    numbers = _numeric(values)
    running = numbers.cummax() if higher_is_better else numbers.cummin()
    # cummax/cummin leave NaN where the input is NaN; the best so far has not changed there.
    return running.ffill()


def binned_percentiles(
    df: pd.DataFrame,
    time_col: str,
    value_col: str,
    bin: str,
    percentiles: Sequence[float] = (50, 95, 99),
) -> pd.DataFrame:
    """Percentiles of the raw values in each time bin (empty bins kept as NaN, count 0)."""
    names = [_percentile_name(q) for q in percentiles]
    columns = [time_col, *names, "count"]
    if not _has_rows(df, (time_col, value_col)):
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({"t": _datetimes(df[time_col]), "v": _numeric(df[value_col])}).dropna()
    if frame.empty:
        return pd.DataFrame(columns=columns)
    keys = frame["t"].dt.floor(bin)
    grouped = frame.groupby(keys)["v"]
    out = pd.DataFrame(
        {name: grouped.quantile(q / 100) for name, q in zip(names, percentiles, strict=True)}
    )
    out["count"] = grouped.size()
    out = out.reindex(pd.date_range(keys.min(), keys.max(), freq=bin))
    out["count"] = out["count"].fillna(0).astype(int)
    out.index.name = time_col
    return out.reset_index()[columns]


def _binned(df: pd.DataFrame, time_col: str, bin: str) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    frame = df.assign(**{time_col: _datetimes(df[time_col])}).dropna(subset=[time_col])
    frame = frame.assign(_bin=frame[time_col].dt.floor(bin))
    if frame.empty:
        return frame, pd.DatetimeIndex([])
    return frame, pd.date_range(frame["_bin"].min(), frame["_bin"].max(), freq=bin)


def _bin_ms(bin: str) -> float:
    return pd.Timedelta(bin).total_seconds() * 1000


def status_class(code: object) -> str:
    """'2xx', '4xx', '5xx' or 'other' for an HTTP status code (int, str or anything else)."""
    text = _code_text(code)
    if len(text) == 3 and text.isdigit() and text[0] in "245":
        return f"{text[0]}xx"
    return "other"


def _code_text(code: object) -> str:
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return "error"
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code).strip()


# --- AutoML -----------------------------------------------------------------------------------


def best_score_over_time(
    trials: pd.DataFrame, metric: str, higher_is_better: bool = True
) -> go.Figure:
    """Every trial coloured by estimator, with the best-so-far step line."""
    title = f"Best {metric} over time"
    if not _has_rows(trials, ("wall_time_s", "primary_metric", "estimator")):
        return _empty(title, "Wall time (s)", metric)
    frame = trials.assign(
        wall_time_s=_numeric(trials["wall_time_s"]),
        primary_metric=_numeric(trials["primary_metric"]),
        estimator=trials["estimator"].fillna("unknown").astype(str),
    )
    frame = frame.dropna(subset=["wall_time_s"]).sort_values("wall_time_s", kind="stable")
    frame = frame.assign(best=best_so_far(frame["primary_metric"], higher_is_better))
    scored = frame.dropna(subset=["primary_metric"])
    if scored.empty:
        return _empty(title, "Wall time (s)", metric)

    fig = go.Figure()
    trial_numbers = (
        scored["trial"]
        if "trial" in scored.columns
        else pd.Series(scored.index, index=scored.index)
    )
    for i, (estimator, group) in enumerate(_runs(scored, "estimator")):
        fig.add_trace(
            go.Scatter(
                x=group["wall_time_s"],
                y=group["primary_metric"],
                mode="markers",
                name=estimator,
                marker={"color": _color(i), "size": 7, "opacity": 0.75},
                customdata=trial_numbers.loc[group.index],
                hovertemplate=(
                    f"<b>{estimator}</b><br>trial %{{customdata}}<br>"
                    f"{metric} %{{y:.4f}}<br>%{{x:,.1f}} s<extra></extra>"
                ),
            )
        )
    line = frame.dropna(subset=["best"])
    fig.add_trace(
        go.Scatter(
            x=line["wall_time_s"],
            y=line["best"],
            mode="lines",
            line={"shape": "hv", "color": "#222222", "width": 2},
            name="Best so far",
            hovertemplate=f"best {metric} %{{y:.4f}}<br>%{{x:,.1f}} s<extra></extra>",
        )
    )
    return _style(fig, title, "Wall time (s)", metric)


def estimator_comparison(
    rows: pd.DataFrame, metric: str, higher_is_better: bool | None = None
) -> go.Figure:
    """Best score per estimator as horizontal bars, best at the top.

    ``higher_is_better=None`` guesses from the metric name (loss/error/rmse/mae are lower-better).
    """
    title = f"Best {metric} by algorithm"
    if not _has_rows(rows, ("estimator", metric)):
        return _empty(title, metric)
    higher = not _lower_is_better(metric) if higher_is_better is None else higher_is_better
    frame = pd.DataFrame(
        {
            "estimator": rows["estimator"].fillna("unknown").astype(str),
            "score": _numeric(rows[metric]),
        }
    ).dropna()
    if frame.empty:
        return _empty(title, metric)
    grouped = frame.groupby("estimator", sort=False)["score"]
    best = (grouped.max() if higher else grouped.min()).sort_values(
        ascending=not higher, kind="stable"
    )
    fig = go.Figure(
        go.Bar(
            x=best.to_numpy(),
            y=best.index.tolist(),
            orientation="h",
            marker={"color": [PALETTE[2]] + [PALETTE[0]] * (len(best) - 1)},
            text=[f"{v:.4f}" for v in best],
            textposition="auto",
            hovertemplate=f"<b>%{{y}}</b><br>{metric} %{{x:.4f}}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig = _style(fig, title, metric, "Algorithm", height=max(HEIGHT, 40 * len(best) + 110))
    fig.update_layout(showlegend=False)
    return fig


def roc_curve(points: pd.DataFrame, auc: float | None = None) -> go.Figure:
    """ROC curve with the chance diagonal; AUC in the title and legend."""
    title = "ROC curve" if auc is None else f"ROC curve (AUC {auc:.3f})"
    x_title, y_title = "False positive rate", "True positive rate"
    if not _has_rows(points, ("fpr", "tpr")):
        return _empty(title, x_title, y_title)
    frame = pd.DataFrame({"fpr": _numeric(points["fpr"]), "tpr": _numeric(points["tpr"])})
    frame = frame.dropna().sort_values(["fpr", "tpr"], kind="stable")
    if frame.empty:
        return _empty(title, x_title, y_title)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=frame["fpr"],
            y=frame["tpr"],
            mode="lines",
            name="ROC" if auc is None else f"ROC (AUC = {auc:.3f})",
            line={"color": PALETTE[0], "width": 2},
            hovertemplate="FPR %{x:.3f}<br>TPR %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="Chance", line=DIAGONAL_LINE, hoverinfo="skip"
        )
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return _style(fig, title, x_title, y_title)


def pr_curve(
    points: pd.DataFrame,
    average_precision: float | None = None,
    base_rate: float | None = None,
) -> go.Figure:
    """Precision-recall curve, with the positive base rate as a dashed line when given."""
    title = (
        "Precision-recall curve"
        if average_precision is None
        else f"Precision-recall curve (AP {average_precision:.3f})"
    )
    x_title, y_title = "Recall", "Precision"
    if not _has_rows(points, ("recall", "precision")):
        return _empty(title, x_title, y_title)
    frame = pd.DataFrame(
        {"recall": _numeric(points["recall"]), "precision": _numeric(points["precision"])}
    )
    frame = frame.dropna().sort_values("recall", kind="stable")
    if frame.empty:
        return _empty(title, x_title, y_title)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=frame["recall"],
            y=frame["precision"],
            mode="lines",
            name="PR" if average_precision is None else f"PR (AP = {average_precision:.3f})",
            line={"color": PALETTE[0], "width": 2},
            hovertemplate="recall %{x:.3f}<br>precision %{y:.3f}<extra></extra>",
        )
    )
    if base_rate is not None:
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[base_rate, base_rate],
                mode="lines",
                name=f"Base rate ({base_rate:.3f})",
                line=DIAGONAL_LINE,
                hoverinfo="skip",
            )
        )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return _style(fig, title, x_title, y_title)


def confusion_matrix(
    matrix: list[list[int]], labels: list[str], normalize: bool = False
) -> go.Figure:
    """Heatmap of actual (rows) against predicted (columns); row percentages when normalize."""
    title = "Confusion matrix" + (" (row %)" if normalize else "")
    x_title, y_title = "Predicted label", "Actual label"
    counts = np.asarray(matrix if matrix is not None else [], dtype=float)
    if counts.ndim != 2 or counts.size == 0:
        return _empty(title, x_title, y_title)
    n_rows, n_cols = counts.shape
    names = [str(label) for label in (labels or [])]
    y_labels = names[:n_rows] if len(names) >= n_rows else [str(i) for i in range(n_rows)]
    x_labels = names[:n_cols] if len(names) >= n_cols else [str(i) for i in range(n_cols)]
    totals = counts.sum(axis=1, keepdims=True)
    row_pct = np.divide(100 * counts, totals, out=np.zeros_like(counts), where=totals > 0)
    if normalize:
        z = row_pct.round(1)
        text = [
            [f"{int(c):,}<br>({p:.1f}%)" for c, p in zip(crow, prow, strict=True)]
            for crow, prow in zip(counts, row_pct, strict=True)
        ]
    else:
        z = counts.astype(int)
        text = [[f"{int(c):,}" for c in crow] for crow in counts]
    fig = go.Figure(
        go.Heatmap(
            z=z.tolist(),
            x=x_labels,
            y=y_labels,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            customdata=np.dstack([counts, row_pct]).tolist(),
            hovertemplate=(
                "actual %{y}<br>predicted %{x}<br>"
                "%{customdata[0]:,.0f} rows (%{customdata[1]:.1f}% of actual)<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(type="category", side="bottom")
    fig.update_yaxes(type="category", autorange="reversed")
    return _style(fig, title, x_title, y_title)


def calibration_curve(points: pd.DataFrame) -> go.Figure:
    """Reliability diagram with the perfect-calibration diagonal."""
    title = "Calibration"
    x_title, y_title = "Mean predicted probability", "Fraction of positives"
    if not _has_rows(points, ("mean_predicted", "fraction_positive")):
        return _empty(title, x_title, y_title)
    frame = pd.DataFrame(
        {
            "x": _numeric(points["mean_predicted"]),
            "y": _numeric(points["fraction_positive"]),
            "count": _numeric(points["count"]) if "count" in points.columns else np.nan,
        }
    )
    frame = frame.dropna(subset=["x", "y"]).sort_values("x", kind="stable")
    if frame.empty:
        return _empty(title, x_title, y_title)
    has_count = "count" in points.columns
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="Perfectly calibrated",
            line=DIAGONAL_LINE,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=frame["x"],
            y=frame["y"],
            mode="lines+markers",
            name="Model",
            line={"color": PALETTE[0], "width": 2},
            marker={"size": 7},
            customdata=frame["count"] if has_count else None,
            hovertemplate=(
                "predicted %{x:.3f}<br>observed %{y:.3f}"
                + ("<br>%{customdata:,.0f} rows" if has_count else "")
                + "<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return _style(fig, title, x_title, y_title)


def feature_importance(importance: pd.DataFrame, top: int = 20) -> go.Figure:
    """The ``top`` features as horizontal bars, largest at the top."""
    title = "Feature importance"
    if not _has_rows(importance, ("feature", "importance")):
        return _empty(title, "Importance", "Feature")
    frame = pd.DataFrame(
        {
            "feature": importance["feature"].astype(str),
            "importance": _numeric(importance["importance"]),
        }
    ).dropna()
    frame = frame.sort_values("importance", ascending=False, kind="stable").head(max(top, 0))
    if frame.empty:
        return _empty(title, "Importance", "Feature")
    fig = go.Figure(
        go.Bar(
            x=frame["importance"],
            y=frame["feature"],
            orientation="h",
            marker={"color": PALETTE[0]},
            hovertemplate="<b>%{y}</b><br>importance %{x:.4g}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig = _style(fig, title, "Importance", "Feature", height=max(HEIGHT, 16 * len(frame) + 110))
    fig.update_layout(showlegend=False)
    return fig


# --- benchmarks -------------------------------------------------------------------------------


def latency_histogram(
    latencies_ms: pd.DataFrame, by: str | None = None, bins: int = 60
) -> go.Figure:
    """Latency distribution (runs overlaid on shared bins); p50/p95/p99 marked for one series."""
    title = "Latency distribution"
    x_title, y_title = "Latency (ms)", "Requests"
    if not _has_rows(latencies_ms, ("latency_ms",)):
        return _empty(title, x_title, y_title)
    frame = latencies_ms.assign(latency_ms=_numeric(latencies_ms["latency_ms"])).dropna(
        subset=["latency_ms"]
    )
    if frame.empty:
        return _empty(title, x_title, y_title)
    # Shared edges so overlaid runs are compared bin for bin.
    low, high = float(frame["latency_ms"].min()), float(frame["latency_ms"].max())
    if high == low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, max(int(bins), 1) + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    groups = _runs(frame, by)
    fig = go.Figure()
    for i, (name, group) in enumerate(groups):
        counts, _ = np.histogram(group["latency_ms"], bins=edges)
        fig.add_trace(
            go.Bar(
                x=centers,
                y=counts,
                width=edges[1] - edges[0],
                name=name or "latency",
                marker={"color": _color(i), "line": {"width": 0}},
                opacity=0.55 if len(groups) > 1 else 0.85,
                customdata=np.column_stack([edges[:-1], edges[1:]]),
                hovertemplate=(
                    (f"<b>{name}</b><br>" if name else "")
                    + "%{customdata[0]:,.1f}–%{customdata[1]:,.1f} ms<br>"
                    + "%{y:,d} requests<extra></extra>"
                ),
            )
        )
    fig.update_layout(barmode="overlay", bargap=0, showlegend=len(groups) > 1)
    if len(groups) == 1:
        values = frame["latency_ms"]
        for q in (50, 95, 99):
            name = _percentile_name(q)
            fig.add_vline(
                x=_percentile(values, q),
                line={"color": PERCENTILE_COLORS[name], "dash": "dash", "width": 1.5},
                annotation_text=f"{name} {_percentile(values, q):,.1f} ms",
                annotation_position="top right",
                annotation_font={"size": 11, "color": PERCENTILE_COLORS[name]},
            )
    return _style(fig, title, x_title, y_title)


def latency_percentiles(summary: pd.DataFrame) -> go.Figure:
    """Grouped bars: one group per percentile, one bar per run."""
    title = "Latency percentiles"
    x_title, y_title = "Percentile", "Latency (ms)"
    if summary is None or len(summary) == 0:
        return _empty(title, x_title, y_title)
    present = [c for c in PERCENTILE_COLUMNS if c in summary.columns]
    if not present:
        raise ValueError(f"no percentile columns {PERCENTILE_COLUMNS}; got {list(summary.columns)}")
    fig = go.Figure()
    for i, (name, row) in enumerate(summary.reset_index(drop=True).iterrows()):
        run = str(row["run"]) if "run" in summary.columns else f"run {name + 1}"
        fig.add_trace(
            go.Bar(
                x=present,
                y=[float(pd.to_numeric(row[c], errors="coerce")) for c in present],
                name=run,
                marker={"color": _color(i)},
                hovertemplate=f"<b>{run}</b><br>%{{x}} %{{y:,.1f}} ms<extra></extra>",
            )
        )
    fig.update_layout(barmode="group", showlegend=True)
    fig.update_xaxes(type="category")
    return _style(fig, title, x_title, y_title)


def latency_over_time(series: pd.DataFrame) -> go.Figure:
    """Per-second p50/p95/p99 lines; colour per run and dash per percentile when runs overlay."""
    title = "Latency over time"
    y_title = "Latency (ms)"
    if not _has_rows(series, ("second",)):
        return _empty(title, "Time since start (s)", y_title)
    present = [c for c in ("p50", "p90", "p95", "p99", "max") if c in series.columns]
    if not present:
        return _empty(title, "Time since start (s)", y_title)
    frame = series.sort_values("second", kind="stable")
    groups = _runs(frame, "run")
    fig = go.Figure()
    for i, (run, group) in enumerate(groups):
        for column in present:
            color = PERCENTILE_COLORS[column] if run is None else _color(i)
            dash = "solid" if run is None else PERCENTILE_DASHES[column]
            label = column if run is None else f"{run} {column}"
            fig.add_trace(
                go.Scatter(
                    x=group["second"],
                    y=_numeric(group[column]),
                    mode="lines",
                    name=label,
                    line={"color": color, "dash": dash, "width": 1.8},
                    hovertemplate=(
                        f"<b>{label}</b><br>{_x_hover(frame['second'])}<br>"
                        "%{y:,.1f} ms<extra></extra>"
                    ),
                )
            )
    fig.update_layout(hovermode="x unified")
    fig.update_yaxes(rangemode="tozero")
    return _style(fig, title, _time_axis_title(frame["second"]), y_title)


def throughput_over_time(series: pd.DataFrame) -> go.Figure:
    """Requests per second, with errors per second as a second (red) trace when present."""
    title = "Throughput"
    y_title = "Throughput (req/s)"
    if not _has_rows(series, ("second", "requests")):
        return _empty(title, "Time since start (s)", y_title)
    frame = series.sort_values("second", kind="stable")
    groups = _runs(frame, "run")
    hover_x = _x_hover(frame["second"])
    fig = go.Figure()
    for i, (run, group) in enumerate(groups):
        prefix = "" if run is None else f"{run} "
        fig.add_trace(
            go.Scatter(
                x=group["second"],
                y=_numeric(group["requests"]),
                mode="lines",
                name=f"{prefix}requests",
                line={"color": PALETTE[0] if run is None else _color(i), "width": 1.8},
                hovertemplate=f"<b>{prefix}requests</b><br>{hover_x}<br>%{{y:,.1f}} req/s<extra></extra>",
            )
        )
        if "errors" in group.columns:
            fig.add_trace(
                go.Scatter(
                    x=group["second"],
                    y=_numeric(group["errors"]),
                    mode="lines",
                    name=f"{prefix}errors",
                    line={
                        "color": ERROR_COLOR if run is None else _color(i),
                        "dash": "solid" if run is None else "dot",
                        "width": 1.5,
                    },
                    hovertemplate=f"<b>{prefix}errors</b><br>{hover_x}<br>%{{y:,.1f}} err/s<extra></extra>",
                )
            )
    fig.update_layout(hovermode="x unified")
    fig.update_yaxes(rangemode="tozero")
    return _style(fig, title, _time_axis_title(frame["second"]), y_title)


def status_codes(counts: pd.DataFrame) -> go.Figure:
    """Response count per status code, coloured by class (2xx green, 4xx orange, 5xx red)."""
    title = "Status codes"
    x_title, y_title = "Status code", "Responses"
    if not _has_rows(counts, ("code", "count")):
        return _empty(title, x_title, y_title)
    frame = pd.DataFrame(
        {
            "code": [_code_text(c) for c in counts["code"]],
            "count": _numeric(counts["count"]).fillna(0),
        }
    )
    totals = frame.groupby("code", sort=True)["count"].sum()
    classes = [status_class(code) for code in totals.index]
    share = 100 * totals / totals.sum() if totals.sum() else totals * 0
    fig = go.Figure(
        go.Bar(
            x=totals.index.tolist(),
            y=totals.to_numpy(),
            marker={"color": [STATUS_COLORS[c] for c in classes]},
            customdata=np.column_stack([classes, share.round(1).to_numpy()]),
            hovertemplate=(
                "<b>%{x}</b> (%{customdata[0]})<br>%{y:,.0f} responses"
                " (%{customdata[1]}%)<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(type="category")
    fig.update_layout(showlegend=False)
    return _style(fig, title, x_title, y_title)


# --- App Insights telemetry -------------------------------------------------------------------


def requests_by_result(requests: pd.DataFrame, bin: str = "1min") -> go.Figure:
    """Stacked request count per time bin, one colour per result code."""
    title = "Requests by result code"
    x_title, y_title = "Time", f"Requests per {bin}"
    if not _has_rows(requests, ("TimeGenerated", "ResultCode")):
        return _empty(title, x_title, y_title)
    frame, full = _binned(requests, "TimeGenerated", bin)
    if frame.empty:
        return _empty(title, x_title, y_title)
    frame = frame.assign(code=[_code_text(c) for c in frame["ResultCode"]])
    table = (
        frame.groupby(["_bin", "code"]).size().unstack("code", fill_value=0).reindex(full).fillna(0)
    )
    width = _bin_ms(bin)
    fig = go.Figure()
    used: dict[str, int] = {}
    for code in sorted(table.columns):
        cls = status_class(code)
        shade = STATUS_SHADES[cls][used.get(cls, 0) % len(STATUS_SHADES[cls])]
        used[cls] = used.get(cls, 0) + 1
        fig.add_trace(
            go.Bar(
                x=table.index,
                y=table[code].astype(int).to_numpy(),
                name=code,
                marker={"color": shade, "line": {"width": 0}},
                # Bars span their bin [start, start + bin) instead of straddling the start.
                width=0.9 * width,
                offset=0.05 * width,
                hovertemplate=f"<b>{code}</b><br>%{{x|%H:%M}}<br>%{{y:,d}} requests<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    return _style(fig, title, x_title, y_title)


def request_latency_percentiles(requests: pd.DataFrame, bin: str = "1min") -> go.Figure:
    """p50/p95/p99 of request duration per time bin, from the raw rows of each bin."""
    title = "Request latency"
    x_title, y_title = "Time", "Duration (ms)"
    if not _has_rows(requests, ("TimeGenerated", "DurationMs")):
        return _empty(title, x_title, y_title)
    table = binned_percentiles(requests, "TimeGenerated", "DurationMs", bin)
    if table.empty:
        return _empty(title, x_title, y_title)
    fig = go.Figure()
    for name in ("p50", "p95", "p99"):
        fig.add_trace(
            go.Scatter(
                x=table["TimeGenerated"],
                y=table[name],
                mode="lines+markers",
                name=name,
                line={"color": PERCENTILE_COLORS[name], "width": 1.8},
                marker={"size": 4},
                customdata=table["count"],
                hovertemplate=(
                    f"<b>{name}</b> %{{y:,.1f}} ms<br>%{{x|%H:%M}}"
                    "<br>%{customdata:,d} requests<extra></extra>"
                ),
            )
        )
    fig.update_layout(hovermode="x unified")
    fig.update_yaxes(rangemode="tozero")
    return _style(fig, title, x_title, y_title)


def _as_bool(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)
    text = values.astype(str).str.strip().str.lower()
    mapped = text.map({"true": True, "1": True, "false": False, "0": False})
    return mapped.astype("boolean")


def failure_rate(requests: pd.DataFrame, bin: str = "1min") -> go.Figure:
    """Share of failed requests per time bin, in percent (bins without requests left blank)."""
    title = "Failure rate"
    x_title, y_title = "Time", "Failed requests (%)"
    if not _has_rows(requests, ("TimeGenerated", "Success")):
        return _empty(title, x_title, y_title)
    frame, full = _binned(requests, "TimeGenerated", bin)
    frame = frame.assign(ok=_as_bool(frame["Success"])).dropna(subset=["ok"])
    if frame.empty:
        return _empty(title, x_title, y_title)
    grouped = frame.groupby("_bin")["ok"]
    total = grouped.size().reindex(full).fillna(0).astype(int)
    failed = grouped.apply(lambda s: int((~s.astype(bool)).sum())).reindex(full).fillna(0)
    rate = (100 * failed / total.where(total > 0)).astype(float)
    fig = go.Figure(
        go.Scatter(
            x=rate.index,
            y=rate.to_numpy(),
            mode="lines+markers",
            name="failed %",
            line={"color": ERROR_COLOR, "width": 1.8},
            marker={"size": 4},
            fill="tozeroy",
            fillcolor="rgba(214, 39, 40, 0.12)",
            customdata=np.column_stack([failed.astype(int).to_numpy(), total.to_numpy()]),
            hovertemplate=(
                "%{y:.1f}% failed<br>%{customdata[0]:,d} of %{customdata[1]:,d} requests"
                "<br>%{x|%H:%M}<extra></extra>"
            ),
        )
    )
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(showlegend=False)
    return _style(fig, title, x_title, y_title)
