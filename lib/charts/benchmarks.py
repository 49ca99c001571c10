"""Load-test charts: latency distribution, percentiles per run, latency and throughput over time.

Several runs overlay: one colour per run, and on the time charts one dash per percentile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lib.charts.common import (
    ERROR_COLOR,
    PALETTE,
    PERCENTILE_COLORS,
    PERCENTILE_COLUMNS,
    PERCENTILE_DASHES,
    color,
    empty,
    has_rows,
    new_figure,
    numeric,
    percentile,
    percentile_name,
    runs,
    style,
    time_axis_title,
    time_lines,
    x_hover,
)

SINCE_START = "Time since start (s)"


def latency_histogram(
    latencies_ms: pd.DataFrame, by: str | None = None, bins: int = 60
) -> go.Figure:
    """Latency distribution (runs overlaid on shared bins); p50/p95/p99 marked for one series."""
    title = "Latency distribution"
    x_title, y_title = "Latency (ms)", "Requests"
    if not has_rows(latencies_ms, ("latency_ms",)):
        return empty(title, x_title, y_title)
    frame = latencies_ms.assign(latency_ms=numeric(latencies_ms["latency_ms"])).dropna(
        subset=["latency_ms"]
    )
    if frame.empty:
        return empty(title, x_title, y_title)
    # Shared edges so overlaid runs are compared bin for bin.
    low, high = float(frame["latency_ms"].min()), float(frame["latency_ms"].max())
    if high == low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, max(int(bins), 1) + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    groups = runs(frame, by)
    fig = new_figure()
    for i, (name, group) in enumerate(groups):
        counts, _ = np.histogram(group["latency_ms"], bins=edges)
        fig.add_trace(
            go.Bar(
                x=centers,
                y=counts,
                width=edges[1] - edges[0],
                name=name or "latency",
                marker={"color": color(i), "line": {"width": 0}},
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
        for k, q in enumerate((50, 95, 99)):
            name = percentile_name(q)
            fig.add_vline(
                x=percentile(values, q),
                line={"color": PERCENTILE_COLORS[name], "dash": "dash", "width": 1.5},
                annotation_text=f"{name} {percentile(values, q):,.1f} ms",
                annotation_position="top right",
                # one line of text below the other: p95 and p99 are often a pixel apart
                annotation_yshift=-16 * k,
                annotation_font={"size": 11, "color": PERCENTILE_COLORS[name]},
            )
    return style(fig, title, x_title, y_title)


def latency_percentiles(summary: pd.DataFrame) -> go.Figure:
    """Grouped bars: one group per percentile, one bar per run."""
    title = "Latency percentiles"
    x_title, y_title = "Percentile", "Latency (ms)"
    if summary is None or len(summary) == 0:
        return empty(title, x_title, y_title)
    present = [c for c in PERCENTILE_COLUMNS if c in summary.columns]
    if not present:
        raise ValueError(f"no percentile columns {PERCENTILE_COLUMNS}; got {list(summary.columns)}")
    fig = new_figure()
    for i, (name, row) in enumerate(summary.reset_index(drop=True).iterrows()):
        run = str(row["run"]) if "run" in summary.columns else f"run {name + 1}"
        fig.add_trace(
            go.Bar(
                x=present,
                y=[float(pd.to_numeric(row[c], errors="coerce")) for c in present],
                name=run,
                marker={"color": color(i)},
                hovertemplate=f"<b>{run}</b><br>%{{x}} %{{y:,.1f}} ms<extra></extra>",
            )
        )
    fig.update_layout(barmode="group", showlegend=True)
    fig.update_xaxes(type="category")
    return style(fig, title, x_title, y_title)


def latency_over_time(series: pd.DataFrame) -> go.Figure:
    """Per-second p50/p95/p99 lines; colour per run and dash per percentile when runs overlay."""
    title = "Latency over time"
    y_title = "Latency (ms)"
    if not has_rows(series, ("second",)):
        return empty(title, SINCE_START, y_title)
    present = [c for c in PERCENTILE_COLUMNS if c in series.columns]
    if not present:
        return empty(title, SINCE_START, y_title)
    frame = series.sort_values("second", kind="stable")
    hover_x = x_hover(frame["second"])
    fig = new_figure()
    for i, (run, group) in enumerate(runs(frame, "run")):
        for column in present:
            label = column if run is None else f"{run} {column}"
            fig.add_trace(
                go.Scatter(
                    x=group["second"],
                    y=numeric(group[column]),
                    mode="lines" if len(group) > 2 else "lines+markers",
                    name=label,
                    line={
                        "color": PERCENTILE_COLORS[column] if run is None else color(i),
                        "dash": "solid" if run is None else PERCENTILE_DASHES[column],
                        "width": 1.8,
                    },
                    hovertemplate=f"<b>{label}</b><br>{hover_x}<br>%{{y:,.1f}} ms<extra></extra>",
                )
            )
    return time_lines(fig, title, time_axis_title(frame["second"]), y_title)


def throughput_over_time(series: pd.DataFrame) -> go.Figure:
    """Requests per second, with errors per second as a second (red) trace when present."""
    title = "Throughput"
    y_title = "Throughput (req/s)"
    if not has_rows(series, ("second", "requests")):
        return empty(title, SINCE_START, y_title)
    frame = series.sort_values("second", kind="stable")
    hover_x = x_hover(frame["second"])
    fig = new_figure()
    for i, (run, group) in enumerate(runs(frame, "run")):
        prefix = "" if run is None else f"{run} "
        lines = [("requests", "req/s", PALETTE[0], "solid", 1.8)]
        if "errors" in group.columns:
            lines.append(("errors", "err/s", ERROR_COLOR, "dot", 1.5))
        for column, unit, single_color, overlay_dash, width in lines:
            fig.add_trace(
                go.Scatter(
                    x=group["second"],
                    y=numeric(group[column]),
                    mode="lines" if len(group) > 2 else "lines+markers",
                    name=f"{prefix}{column}",
                    line={
                        "color": single_color if run is None else color(i),
                        "dash": "solid" if run is None else overlay_dash,
                        "width": width,
                    },
                    hovertemplate=(
                        f"<b>{prefix}{column}</b><br>{hover_x}<br>%{{y:,.1f}} {unit}<extra></extra>"
                    ),
                )
            )
    return time_lines(fig, title, time_axis_title(frame["second"]), y_title)
