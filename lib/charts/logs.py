"""Request-log charts over App Insights columns (``TimeGenerated``, ``ResultCode``, ``DurationMs``,
``Success``): requests by result code, latency percentiles and failure rate per time bin, and
responses per status code (also drawn for a benchmark run)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lib.charts.common import (
    ERROR_COLOR,
    PERCENTILE_COLORS,
    STATUS_COLORS,
    STATUS_SHADES,
    code_text,
    datetimes,
    empty,
    has_rows,
    numeric,
    percentile_name,
    status_class,
    style,
    time_lines,
)


def binned_percentiles(
    df: pd.DataFrame,
    time_col: str,
    value_col: str,
    bin: str,
    percentiles: Sequence[float] = (50, 95, 99),
) -> pd.DataFrame:
    """Percentiles of the raw values in each time bin (empty bins kept as NaN, count 0)."""
    names = [percentile_name(q) for q in percentiles]
    columns = [time_col, *names, "count"]
    if not has_rows(df, (time_col, value_col)):
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({"t": datetimes(df[time_col]), "v": numeric(df[value_col])}).dropna()
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
    """Rows with their time bin in ``_bin``, and every bin from the first to the last."""
    frame = df.assign(**{time_col: datetimes(df[time_col])}).dropna(subset=[time_col])
    frame = frame.assign(_bin=frame[time_col].dt.floor(bin))
    if frame.empty:
        return frame, pd.DatetimeIndex([])
    return frame, pd.date_range(frame["_bin"].min(), frame["_bin"].max(), freq=bin)


def requests_by_result(requests: pd.DataFrame, bin: str = "1min") -> go.Figure:
    """Stacked request count per time bin, one colour per result code."""
    title = "Requests by result code"
    x_title, y_title = "Time", f"Requests per {bin}"
    if not has_rows(requests, ("TimeGenerated", "ResultCode")):
        return empty(title, x_title, y_title)
    frame, full = _binned(requests, "TimeGenerated", bin)
    if frame.empty:
        return empty(title, x_title, y_title)
    frame = frame.assign(code=[code_text(c) for c in frame["ResultCode"]])
    table = (
        frame.groupby(["_bin", "code"]).size().unstack("code", fill_value=0).reindex(full).fillna(0)
    )
    width = pd.Timedelta(bin).total_seconds() * 1000
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
    return style(fig, title, x_title, y_title)


def request_latency_percentiles(requests: pd.DataFrame, bin: str = "1min") -> go.Figure:
    """p50/p95/p99 of request duration per time bin, from the raw rows of each bin."""
    title = "Request latency"
    x_title, y_title = "Time", "Duration (ms)"
    if not has_rows(requests, ("TimeGenerated", "DurationMs")):
        return empty(title, x_title, y_title)
    table = binned_percentiles(requests, "TimeGenerated", "DurationMs", bin)
    if table.empty:
        return empty(title, x_title, y_title)
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
    return time_lines(fig, title, x_title, y_title)


def _as_bool(values: pd.Series) -> pd.Series:
    """Booleans from bool, 'true'/'false' or 1/0 values; anything else missing."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)
    text = values.astype(str).str.strip().str.lower()
    mapped = text.map({"true": True, "1": True, "false": False, "0": False})
    return mapped.astype("boolean")


def failure_rate(requests: pd.DataFrame, bin: str = "1min") -> go.Figure:
    """Share of failed requests per time bin, in percent (bins without requests left blank)."""
    title = "Failure rate"
    x_title, y_title = "Time", "Failed requests (%)"
    if not has_rows(requests, ("TimeGenerated", "Success")):
        return empty(title, x_title, y_title)
    frame, full = _binned(requests, "TimeGenerated", bin)
    frame = frame.assign(ok=_as_bool(frame["Success"])).dropna(subset=["ok"])
    if frame.empty:
        return empty(title, x_title, y_title)
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
    return style(fig, title, x_title, y_title, legend=False)


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
    return style(fig, title, x_title, y_title, legend=False)
