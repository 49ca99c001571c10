"""AutoML charts: the search over time, the best score per algorithm, and the best model's
curves (ROC, precision-recall, calibration), confusion matrix and feature importance."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lib.charts.common import (
    DIAGONAL_LINE,
    HEIGHT,
    PALETTE,
    color,
    empty,
    has_rows,
    new_figure,
    numeric,
    runs,
    style,
)
from lib.metrics import higher_is_better as metric_higher_is_better


def best_so_far(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """Running best of a metric series; NaN entries carry the previous best forward."""
    numbers = numeric(values)
    running = numbers.cummax() if higher_is_better else numbers.cummin()
    # cummax/cummin leave NaN where the input is NaN; the best so far has not changed there.
    return running.ffill()


def best_score_over_time(
    trials: pd.DataFrame, metric: str, higher_is_better: bool = True
) -> go.Figure:
    """Every trial coloured by estimator, with the best-so-far step line."""
    title = f"Best {metric} over time"
    if not has_rows(trials, ("wall_time_s", "primary_metric", "estimator")):
        return empty(title, "Wall time (s)", metric)
    frame = trials.assign(
        wall_time_s=numeric(trials["wall_time_s"]),
        primary_metric=numeric(trials["primary_metric"]),
        estimator=trials["estimator"].fillna("unknown").astype(str),
    )
    frame = frame.dropna(subset=["wall_time_s"]).sort_values("wall_time_s", kind="stable")
    frame = frame.assign(best=best_so_far(frame["primary_metric"], higher_is_better))
    scored = frame.dropna(subset=["primary_metric"])
    if scored.empty:
        return empty(title, "Wall time (s)", metric)

    fig = new_figure()
    trial_numbers = (
        scored["trial"]
        if "trial" in scored.columns
        else pd.Series(scored.index, index=scored.index)
    )
    for i, (estimator, group) in enumerate(runs(scored, "estimator")):
        fig.add_trace(
            go.Scatter(
                x=group["wall_time_s"],
                y=group["primary_metric"],
                mode="markers",
                name=estimator,
                marker={"color": color(i), "size": 7, "opacity": 0.75},
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
    return style(fig, title, "Wall time (s)", metric)


def _ranked_bars(
    fig: go.Figure, title: str, x_title: str, y_title: str, rows: int, row_px: int
) -> go.Figure:
    """Horizontal bars, first row at the top, tall enough for every label."""
    fig.update_yaxes(autorange="reversed", type="category")
    height = max(HEIGHT, row_px * rows + 110)
    return style(fig, title, x_title, y_title, height=height, legend=False)


def estimator_comparison(
    rows: pd.DataFrame, metric: str, higher_is_better: bool | None = None
) -> go.Figure:
    """Best score per estimator as horizontal bars, best at the top.

    ``higher_is_better=None`` takes the metric's direction from the metric catalog.
    """
    title = f"Best {metric} by algorithm"
    if not has_rows(rows, ("estimator", metric)):
        return empty(title, metric)
    higher = metric_higher_is_better(metric) if higher_is_better is None else higher_is_better
    frame = pd.DataFrame(
        {
            "estimator": rows["estimator"].fillna("unknown").astype(str),
            "score": numeric(rows[metric]),
        }
    ).dropna()
    if frame.empty:
        return empty(title, metric)
    grouped = frame.groupby("estimator", sort=False)["score"]
    best = (grouped.max() if higher else grouped.min()).sort_values(
        ascending=not higher, kind="stable"
    )
    fig = new_figure(
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
    return _ranked_bars(fig, title, metric, "Algorithm", len(best), row_px=40)


def _reference_line(x: list[float], y: list[float], name: str) -> go.Scatter:
    """A dashed grey line to read a curve against (chance, base rate, perfect calibration)."""
    return go.Scatter(x=x, y=y, mode="lines", name=name, line=DIAGONAL_LINE, hoverinfo="skip")


def _model_curve(
    x: pd.Series,
    y: pd.Series,
    name: str,
    hover: str,
    mode: str = "lines",
    color: str = PALETTE[0],
    **extra: object,
) -> go.Scatter:
    return go.Scatter(
        x=x,
        y=y,
        mode=mode,
        name=name,
        line={"color": color, "width": 2},
        hovertemplate=hover + "<extra></extra>",
        **extra,
    )


def _unit_square(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    """Both axes span 0..1 (a little headroom above 1 so a curve at 1 stays visible)."""
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return style(fig, title, x_title, y_title)


def _by_class(
    points: pd.DataFrame, columns: dict[str, str]
) -> list[tuple[str | None, pd.DataFrame]]:
    """The curve points as numbers (``columns``: source -> name), one frame per class when the
    points hold several (a multiclass model's one-class-against-the-rest curves), else one
    frame with no class; rows with a missing value left out."""
    frame = pd.DataFrame({name: numeric(points[src]) for src, name in columns.items()})
    if "class" in points.columns:
        frame["class"] = points["class"].astype(str).to_numpy()
    frame = frame.dropna(subset=list(columns.values()))
    if "class" not in frame.columns or frame["class"].nunique() < 2:
        return [(None, frame)] if len(frame) else []
    return [(str(c), part) for c, part in frame.groupby("class", sort=False)]


# A class's curve names itself in its hover (the name is drawn as text, never read as a template).
_CLASS_HOVER = "%{fullData.name}<br>"


def _against_the_rest(cls: str) -> str:
    # Plotly reads trace names as HTML: a class "<b>" is drawn as written.
    return html.escape(f"{cls} vs rest", quote=False)


def _add_curves(
    fig: go.Figure,
    curves: list[tuple[str | None, pd.DataFrame]],
    xy: tuple[str, str],
    sort_by: list[str],
    single_name: str,
    hover: str,
    **extra: object,
) -> None:
    """One trace per class (each in its palette colour), or the single curve named
    ``single_name``; ``extra`` values that are callables get the class's frame."""
    for i, (cls, frame) in enumerate(curves):
        frame = frame.sort_values(sort_by, kind="stable")
        fig.add_trace(
            _model_curve(
                frame[xy[0]],
                frame[xy[1]],
                single_name if cls is None else _against_the_rest(cls),
                ("" if cls is None else _CLASS_HOVER) + hover,
                color=PALETTE[i % len(PALETTE)],
                **{k: v(frame) if callable(v) else v for k, v in extra.items()},
            )
        )


def roc_curve(points: pd.DataFrame, auc: float | None = None) -> go.Figure:
    """ROC curve with the chance diagonal; AUC in the title and legend. A multiclass model's
    points (a ``class`` column) draw one curve per class, each against the rest."""
    title = "ROC curve" if auc is None else f"ROC curve (AUC {auc:.3f})"
    x_title, y_title = "False positive rate", "True positive rate"
    if not has_rows(points, ("fpr", "tpr")):
        return empty(title, x_title, y_title)
    curves = _by_class(points, {"fpr": "fpr", "tpr": "tpr"})
    if not curves:
        return empty(title, x_title, y_title)
    fig = new_figure()
    single = "ROC" if auc is None else f"ROC (AUC = {auc:.3f})"
    _add_curves(fig, curves, ("fpr", "tpr"), ["fpr", "tpr"], single, "FPR %{x:.3f}<br>TPR %{y:.3f}")
    if len(curves) > 1 and auc is not None:
        title = f"ROC curves, each class against the rest (weighted AUC {auc:.3f})"
    fig.add_trace(_reference_line([0, 1], [0, 1], "Chance"))
    return _unit_square(fig, title, x_title, y_title)


def pr_curve(
    points: pd.DataFrame,
    average_precision: float | None = None,
    base_rate: float | None = None,
) -> go.Figure:
    """Precision-recall curve, with the positive base rate as a dashed line when given; one
    curve per class for a multiclass model's points."""
    ap = "" if average_precision is None else f" (AP {average_precision:.3f})"
    title = f"Precision-recall curve{ap}"
    x_title, y_title = "Recall", "Precision"
    if not has_rows(points, ("recall", "precision")):
        return empty(title, x_title, y_title)
    curves = _by_class(points, {"recall": "recall", "precision": "precision"})
    if not curves:
        return empty(title, x_title, y_title)
    fig = new_figure()
    single = "PR" if average_precision is None else f"PR (AP = {average_precision:.3f})"
    hover = "recall %{x:.3f}<br>precision %{y:.3f}"
    _add_curves(fig, curves, ("recall", "precision"), ["recall"], single, hover)
    if len(curves) > 1:
        title = "Precision-recall curves, each class against the rest" + (
            "" if average_precision is None else f" (weighted AP {average_precision:.3f})"
        )
    if base_rate is not None and len(curves) == 1:
        fig.add_trace(
            _reference_line([0, 1], [base_rate, base_rate], f"Base rate ({base_rate:.3f})")
        )
    return _unit_square(fig, title, x_title, y_title)


def confusion_matrix(
    matrix: list[list[int]], labels: list[str], normalize: bool = False
) -> go.Figure:
    """Heatmap of actual (rows) against predicted (columns); row percentages when normalize."""
    title = "Confusion matrix" + (" (row %)" if normalize else "")
    x_title, y_title = "Predicted label", "Actual label"
    counts = np.asarray(matrix if matrix is not None else [], dtype=float)
    if counts.ndim != 2 or counts.size == 0:
        return empty(title, x_title, y_title)
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
    fig = new_figure(
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
    return style(fig, title, x_title, y_title)


def calibration_curve(points: pd.DataFrame) -> go.Figure:
    """Reliability diagram with the perfect-calibration diagonal; one line per class for a
    multiclass model's points."""
    title = "Calibration"
    x_title, y_title = "Mean predicted probability", "Fraction of positives"
    if not has_rows(points, ("mean_predicted", "fraction_positive")):
        return empty(title, x_title, y_title)
    has_count = "count" in points.columns
    columns = {"mean_predicted": "x", "fraction_positive": "y"}
    if has_count:
        columns["count"] = "count"
    curves = _by_class(points.fillna({"count": 0}) if has_count else points, columns)
    if not curves:
        return empty(title, x_title, y_title)
    fig = new_figure()
    fig.add_trace(_reference_line([0, 1], [0, 1], "Perfectly calibrated"))
    hover = "predicted %{x:.3f}<br>observed %{y:.3f}" + (
        "<br>%{customdata:,.0f} rows" if has_count else ""
    )
    _add_curves(
        fig,
        curves,
        ("x", "y"),
        ["x"],
        "Model",
        hover,
        mode="lines+markers",
        marker={"size": 7},
        customdata=(lambda frame: frame["count"]) if has_count else None,
    )
    return _unit_square(fig, title, x_title, y_title)


def predicted_vs_true(points: pd.DataFrame, r2: float | None = None) -> go.Figure:
    """A regression model's validation rows: predicted against true values, with the line
    where they are equal (R² in the title when given)."""
    title = "Predicted vs true" + ("" if r2 is None else f" (R² {r2:.3f})")
    x_title, y_title = "True value", "Predicted value"
    if not has_rows(points, ("true", "predicted")):
        return empty(title, x_title, y_title)
    frame = pd.DataFrame(
        {"true": numeric(points["true"]), "predicted": numeric(points["predicted"])}
    ).dropna()
    if frame.empty:
        return empty(title, x_title, y_title)
    lo = float(min(frame["true"].min(), frame["predicted"].min()))
    hi = float(max(frame["true"].max(), frame["predicted"].max()))
    fig = new_figure()
    fig.add_trace(_reference_line([lo, hi], [lo, hi], "Predicted = true"))
    fig.add_trace(
        go.Scattergl(
            x=frame["true"],
            y=frame["predicted"],
            mode="markers",
            name="Validation rows",
            marker={"color": PALETTE[0], "size": 5, "opacity": 0.6},
            hovertemplate="true %{x:,.4g}<br>predicted %{y:,.4g}<extra></extra>",
        )
    )
    return style(fig, title, x_title, y_title)


def residuals(points: pd.DataFrame, bins: int = 40) -> go.Figure:
    """How far a regression model's predictions are from the true values (predicted - true)
    on its validation rows, as a histogram centred on zero."""
    title = "Residuals (predicted - true)"
    x_title, y_title = "Residual", "Rows"
    if not has_rows(points, ("true", "predicted")):
        return empty(title, x_title, y_title)
    error = (numeric(points["predicted"]) - numeric(points["true"])).dropna()
    if error.empty:
        return empty(title, x_title, y_title)
    fig = new_figure(
        go.Histogram(
            x=error,
            nbinsx=bins,
            name="Residuals",
            marker={"color": PALETTE[0]},
            hovertemplate="residual %{x}<br>%{y:,} rows<extra></extra>",
        )
    )
    fig.add_vline(x=0, line=DIAGONAL_LINE)
    return style(fig, title, x_title, y_title)


def feature_importance(importance: pd.DataFrame, top: int = 20) -> go.Figure:
    """The ``top`` features as horizontal bars, largest at the top."""
    title = "Feature importance"
    if not has_rows(importance, ("feature", "importance")):
        return empty(title, "Importance", "Feature")
    frame = pd.DataFrame(
        {
            "feature": importance["feature"].astype(str),
            "importance": numeric(importance["importance"]),
        }
    ).dropna()
    frame = frame.sort_values("importance", ascending=False, kind="stable").head(max(top, 0))
    if frame.empty:
        return empty(title, "Importance", "Feature")
    fig = new_figure(
        go.Bar(
            x=frame["importance"],
            y=frame["feature"],
            orientation="h",
            marker={"color": PALETTE[0]},
            hovertemplate="<b>%{y}</b><br>importance %{x:.4g}<extra></extra>",
        )
    )
    return _ranked_bars(fig, title, "Importance", "Feature", len(frame), row_px=16)
