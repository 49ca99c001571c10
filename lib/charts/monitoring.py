"""Model-drift charts: features ranked by PSI with the OK / watch / drift bands, one feature's live
distribution over its training distribution, and predicted-class shares over time against the
training label distribution. Inputs are `lib.drift` results (plain dataclasses and frames)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from lib.charts.common import color, datetimes, empty, has_rows, new_figure, style, time_lines
from lib.drift import PSI_DRIFT, PSI_WATCH, FeatureDrift

STATE_COLORS = {"OK": "#2ca02c", "watch": "#ff7f0e", "drift": "#d62728", "no data": "#9e9e9e"}
TRAINING_COLOR = "#9e9e9e"
LIVE_COLOR = "#1f77b4"


def drift_ranking(features: Sequence[FeatureDrift], top: int = 25) -> go.Figure:
    """PSI per feature, most drifted on top, coloured by state, with the 0.1 and 0.25 lines."""
    title = "Drift by feature (PSI)"
    ranked = [f for f in features if f.psi is not None][:top]
    if not ranked:
        return empty(title, "PSI", "")
    ranked = ranked[::-1]  # plotly draws the first bar at the bottom
    fig = new_figure(
        go.Bar(
            x=[f.psi for f in ranked],
            y=[f.feature for f in ranked],
            orientation="h",
            marker={"color": [STATE_COLORS[f.state] for f in ranked]},
            customdata=[f.state for f in ranked],
            hovertemplate="<b>%{y}</b><br>PSI %{x:.3f} (%{customdata})<extra></extra>",
        )
    )
    for value, label in ((PSI_WATCH, "watch"), (PSI_DRIFT, "drift")):
        fig.add_vline(
            x=value,
            line={"color": STATE_COLORS[label], "dash": "dash", "width": 1},
            annotation_text=f"{label} {value:g}",
            annotation_position="top",
        )
    fig.update_xaxes(type="log" if max(f.psi for f in ranked) > 5 else "linear")
    return style(fig, title, "PSI", "", height=max(260, 28 * len(ranked) + 90), legend=False)


def feature_overlay(drift: FeatureDrift) -> go.Figure:
    """Training and live shares per cell (ranges, categories, unseen, missing), side by side."""
    title = f"{drift.feature}: live vs training"
    if not drift.labels:
        return empty(title, "", "Share (%)")
    labels = list(drift.labels)
    fig = new_figure()
    for name, shares, colour in (
        ("training", drift.expected, TRAINING_COLOR),
        ("live", drift.actual, LIVE_COLOR),
    ):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[100 * s for s in shares],
                name=name,
                marker={"color": colour},
                hovertemplate=f"<b>{name}</b> %{{x}}: %{{y:.1f}}%<extra></extra>",
            )
        )
    fig.update_layout(barmode="group", bargap=0.15)
    fig.update_xaxes(type="category")
    psi = f"PSI {drift.psi:.3f} — {drift.state}" if drift.psi is not None else drift.state
    return style(fig, f"{title} ({psi})", "", "Share (%)")


def predictions_over_time(
    over_time: pd.DataFrame, training: FeatureDrift | None = None, bin_s: int = 3600
) -> go.Figure:
    """Predicted-class share per bin (lines) with each class's training share (dotted)."""
    title = "Predictions over time"
    if not has_rows(over_time, ("TimeGenerated", "Prediction", "Share")):
        return empty(title, "Time", "Share (%)")
    frame = over_time.assign(TimeGenerated=datetimes(over_time["TimeGenerated"]))
    full = pd.date_range(
        frame["TimeGenerated"].min(), frame["TimeGenerated"].max(), freq=pd.Timedelta(seconds=bin_s)
    )
    table = frame.pivot_table(
        index="TimeGenerated", columns="Prediction", values="Share", aggfunc="sum"
    )
    has_rows_at = table.notna().any(axis=1)
    table = table.fillna(0).where(has_rows_at).reindex(full)
    expected = dict(zip(training.labels, training.expected, strict=True)) if training else {}
    fig = new_figure()
    for i, label in enumerate(table.columns):
        fig.add_trace(
            go.Scatter(
                x=table.index,
                y=100 * table[label].to_numpy(),
                mode="lines+markers",
                name=str(label),
                line={"color": color(i), "width": 1.8},
                marker={"size": 4},
                hovertemplate=f"<b>{label}</b> %{{y:.1f}}%<br>%{{x|%b %d %H:%M}}<extra></extra>",
            )
        )
        if label in expected:
            fig.add_hline(
                y=100 * expected[label],
                line={"color": color(i), "dash": "dot", "width": 1},
                annotation_text=f"{label} in training {100 * expected[label]:.1f}%",
                annotation_position="top left",
            )
    fig = time_lines(fig, title, "Time", "Share of sampled rows (%)")
    if len(full) == 1:
        # One bin is one point: without a range the axis spans a millisecond around it.
        half = pd.Timedelta(seconds=bin_s)
        fig.update_xaxes(range=[full[0] - half, full[0] + half])
    return fig
