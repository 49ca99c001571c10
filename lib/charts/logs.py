"""Request-log charts over the telemetry service's aggregates (never raw rows): requests by
result code per bin (`CODE_COLUMNS`), latency percentiles and failure rate per bin
(`SUMMARY_COLUMNS`), the same split by deployment side by side, responses per status code (also
drawn for a benchmark run) and predicted-class shares per deployment.

Bins without requests have no aggregate row; the time charts show them as gaps (bars of 0,
lines broken) over the full range between the first and the last bin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lib.charts.common import (
    ERROR_COLOR,
    PERCENTILE_COLORS,
    STATUS_COLORS,
    STATUS_SHADES,
    code_text,
    color,
    datetimes,
    empty,
    has_rows,
    new_figure,
    numeric,
    status_class,
    style,
    time_lines,
)

PERCENTILES = ("p50", "p95", "p99")


def bin_label(bin_s: int) -> str:
    """'1 min', '15 min', '1 h', '1 day' ..."""
    if bin_s % 86400 == 0:
        days = bin_s // 86400
        return f"{days} day" + ("s" if days > 1 else "")
    if bin_s % 3600 == 0:
        return f"{bin_s // 3600} h"
    if bin_s % 60 == 0:
        return f"{bin_s // 60} min"
    return f"{bin_s} s"


def _full_range(times: pd.Series, bin_s: int) -> pd.DatetimeIndex:
    times = datetimes(times)
    return pd.date_range(times.min(), times.max(), freq=pd.Timedelta(seconds=bin_s))


def _widen_single_bin(fig: go.Figure, times: pd.Series, bin_s: int) -> go.Figure:
    """One bin alone: show a bin either side (plotly would zoom the axis to milliseconds)."""
    times = datetimes(times)
    if len(times) and times.min() == times.max():
        step = pd.Timedelta(seconds=bin_s)
        fig.update_xaxes(range=[times.min() - step, times.min() + step])
    return fig


def _per_bin(frame: pd.DataFrame, value: str, bin_s: int) -> pd.Series:
    """One value per bin over the full range (NaN where a bin has no row)."""
    series = (
        frame.assign(TimeGenerated=datetimes(frame["TimeGenerated"]))
        .groupby("TimeGenerated")[value]
        .sum(min_count=1)
    )
    return series.reindex(_full_range(frame["TimeGenerated"], bin_s))


def requests_by_result(codes: pd.DataFrame, bin_s: int = 60) -> go.Figure:
    """Stacked request count per time bin, one colour per result code (`CODE_COLUMNS`)."""
    title = "Requests by result code"
    x_title, y_title = "Time", f"Requests per {bin_label(bin_s)}"
    if not has_rows(codes, ("TimeGenerated", "ResultCode", "Requests")):
        return empty(title, x_title, y_title)
    frame = codes.assign(
        TimeGenerated=datetimes(codes["TimeGenerated"]),
        code=[code_text(c) for c in codes["ResultCode"]],
    )
    table = (
        frame.pivot_table(index="TimeGenerated", columns="code", values="Requests", aggfunc="sum")
        .reindex(_full_range(frame["TimeGenerated"], bin_s))
        .fillna(0)
    )
    width = bin_s * 1000
    fig = new_figure()
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
                hovertemplate=f"<b>{code}</b><br>%{{x|%b %d %H:%M}}<br>%{{y:,d}} requests<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    return style(fig, title, x_title, y_title)


def request_latency_percentiles(summary: pd.DataFrame, bin_s: int = 60) -> go.Figure:
    """p50/p95/p99 of request duration per bin, from a summary with one row per bin."""
    title = "Request latency"
    x_title, y_title = "Time", "Duration (ms)"
    if not has_rows(summary, ("TimeGenerated", "Requests", *PERCENTILES)):
        return empty(title, x_title, y_title)
    counts = _per_bin(summary, "Requests", bin_s)
    fig = new_figure()
    for name in PERCENTILES:
        values = _per_bin(summary, name, bin_s)
        fig.add_trace(
            go.Scatter(
                x=values.index,
                y=values.to_numpy(),
                mode="lines+markers",
                name=name,
                line={"color": PERCENTILE_COLORS[name], "width": 1.8},
                marker={"size": 4},
                customdata=counts.fillna(0).astype(int).to_numpy(),
                hovertemplate=(
                    f"<b>{name}</b> %{{y:,.1f}} ms<br>%{{x|%b %d %H:%M}}"
                    "<br>%{customdata:,d} requests<extra></extra>"
                ),
            )
        )
    return _widen_single_bin(
        time_lines(fig, title, x_title, y_title), summary["TimeGenerated"], bin_s
    )


def failure_rate(summary: pd.DataFrame, bin_s: int = 60) -> go.Figure:
    """Share of failed requests per bin in percent (bins without requests left blank)."""
    title = "Failure rate"
    x_title, y_title = "Time", "Failed requests (%)"
    if not has_rows(summary, ("TimeGenerated", "Requests", "Failed")):
        return empty(title, x_title, y_title)
    total = _per_bin(summary, "Requests", bin_s)
    failed = _per_bin(summary, "Failed", bin_s)
    rate = (100 * failed / total.where(total > 0)).astype(float)
    fig = new_figure(
        go.Scatter(
            x=rate.index,
            y=rate.to_numpy(),
            mode="lines+markers",
            name="failed %",
            line={"color": ERROR_COLOR, "width": 1.8},
            marker={"size": 4},
            fill="tozeroy",
            fillcolor="rgba(214, 39, 40, 0.12)",
            customdata=np.column_stack(
                [failed.fillna(0).astype(int).to_numpy(), total.fillna(0).astype(int).to_numpy()]
            ),
            hovertemplate=(
                "%{y:.1f}% failed<br>%{customdata[0]:,d} of %{customdata[1]:,d} requests"
                "<br>%{x|%b %d %H:%M}<extra></extra>"
            ),
        )
    )
    fig.update_yaxes(rangemode="tozero")
    fig = style(fig, title, x_title, y_title, legend=False)
    return _widen_single_bin(fig, summary["TimeGenerated"], bin_s)


def _deployments(summary: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    names = summary["Deployment"].fillna("").astype(str)
    return [(name or "(default)", summary[names == name]) for name in sorted(names.unique())]


def deployment_lines(
    summary: pd.DataFrame, value: str, bin_s: int = 60, title: str = "", y_title: str = ""
) -> go.Figure:
    """One line per deployment: `value` is p50/p95/p99, "Requests" or "FailureRate" (%)."""
    title = title or {
        "Requests": "Requests by deployment",
        "FailureRate": "Failure rate by deployment",
    }.get(value, f"{value} latency by deployment")
    y_title = y_title or {
        "Requests": f"Requests per {bin_label(bin_s)}",
        "FailureRate": "Failed (%)",
    }.get(value, "Duration (ms)")
    needed = ("TimeGenerated", "Deployment", "Requests", "Failed", *PERCENTILES)
    if not has_rows(summary, needed):
        return empty(title, "Time", y_title)
    fig = new_figure()
    for i, (name, rows) in enumerate(_deployments(summary)):
        if value == "FailureRate":
            total, failed = _per_bin(rows, "Requests", bin_s), _per_bin(rows, "Failed", bin_s)
            y = (100 * failed / total.where(total > 0)).astype(float)
            unit = "%{y:.1f}% failed"
        else:
            y = _per_bin(rows, value, bin_s)
            unit = "%{y:,d} requests" if value == "Requests" else "%{y:,.1f} ms"
        fig.add_trace(
            go.Scatter(
                x=y.index,
                y=y.to_numpy(),
                mode="lines+markers",
                name=name,
                line={"color": color(i), "width": 1.8},
                marker={"size": 4},
                hovertemplate=f"<b>{name}</b> {unit}<br>%{{x|%b %d %H:%M}}<extra></extra>",
            )
        )
    return _widen_single_bin(
        time_lines(fig, title, "Time", y_title), summary["TimeGenerated"], bin_s
    )


def status_codes(counts: pd.DataFrame) -> go.Figure:
    """Response count per status code, coloured by class (2xx green, 4xx orange, 5xx red)."""
    title = "Status codes"
    x_title, y_title = "Status code", "Responses"
    if not has_rows(counts, ("code", "count")):
        return empty(title, x_title, y_title)
    frame = pd.DataFrame(
        {
            "code": [code_text(c) for c in counts["code"]],
            "count": numeric(counts["count"]).fillna(0),
        }
    )
    totals = frame.groupby("code", sort=True)["count"].sum()
    classes = [status_class(code) for code in totals.index]
    share = 100 * totals / totals.sum() if totals.sum() else totals * 0
    fig = new_figure(
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
    return style(fig, title, x_title, y_title, legend=False)


def prediction_shares(shares: pd.DataFrame) -> go.Figure:
    """Share of each predicted class per deployment (sampled predictions), grouped bars."""
    title = "Predictions by deployment"
    x_title, y_title = "Prediction", "Share of sampled rows (%)"
    if not has_rows(shares, ("Deployment", "Prediction", "Rows", "Share")):
        return empty(title, x_title, y_title)
    fig = new_figure()
    for i, (name, rows) in enumerate(_deployments(shares)):
        fig.add_trace(
            go.Bar(
                x=rows["Prediction"].astype(str).tolist(),
                y=(100 * rows["Share"]).to_numpy(),
                name=name,
                marker={"color": color(i)},
                customdata=rows["Rows"].to_numpy(),
                hovertemplate=(
                    f"<b>{name}</b> %{{x}}: %{{y:.1f}}%<br>%{{customdata:,d}} rows<extra></extra>"
                ),
            )
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category")
    return style(fig, title, x_title, y_title)
