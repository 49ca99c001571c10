"""What every chart shares: the look (template, palette, percentile and status colours), the
"No data yet" figure, input checks and coercions, and run grouping.

The helpers are for the chart modules of this package; pages use the figure builders.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

HEIGHT = 320
TEMPLATE = "plotly_white"
# Every figure starts from the house template as plotly's default: plotly applies its default at
# construction without validating it again (~1 ms), where `update_layout(template=...)` costs
# 20-30 ms a figure. Set when a figure is made (`new_figure`), not once at import: importing
# Streamlit sets its own default.
pio.templates.default = TEMPLATE
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


def new_figure(*args: Any, **kwargs: Any) -> go.Figure:
    """`go.Figure(*args, **kwargs)` on the house template."""
    if pio.templates.default != TEMPLATE:
        pio.templates.default = TEMPLATE
    return go.Figure(*args, **kwargs)


def style(
    fig: go.Figure,
    title: str,
    x_title: str = "",
    y_title: str = "",
    height: int = HEIGHT,
    legend: bool = True,
) -> go.Figure:
    """The house layout (on the default template): left-aligned title, axis titles, legend on
    top."""
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        height=height,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        hovermode="closest",
    )
    if not legend:
        fig.update_layout(showlegend=False)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def time_lines(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    """Layout of lines over time: one hover for all lines at an x, y axis from zero."""
    fig = style(fig, title, x_title, y_title)
    # After style(), which sets the default hover mode.
    fig.update_layout(hovermode="x unified")
    fig.update_yaxes(rangemode="tozero")
    return fig


def empty(title: str, x_title: str = "", y_title: str = "") -> go.Figure:
    """A styled figure with a centered "No data yet" note and no axes."""
    fig = style(new_figure(), title, x_title, y_title)
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


def has_rows(df: pd.DataFrame | None, columns: Iterable[str]) -> bool:
    """False for None or zero rows; a non-empty frame missing a required column is a caller bug."""
    if df is None or len(df) == 0:
        return False
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; got {list(df.columns)}")
    return True


def numeric(series: pd.Series) -> pd.Series:
    """Floats, with anything unparsable as NaN."""
    return pd.to_numeric(series, errors="coerce").astype(float)


def datetimes(series: pd.Series) -> pd.Series:
    """Timestamps (UTC when parsed from text), with anything unparsable as NaT."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    return pd.to_datetime(series, errors="coerce", utc=True)


def color(i: int) -> str:
    """The i-th palette colour, cycling."""
    return PALETTE[i % len(PALETTE)]


def percentile(values: pd.Series, q: float) -> float:
    """The q-th percentile of raw values."""
    # Linear interpolation, the same as pandas' quantile, so tables and charts agree.
    return float(values.quantile(q / 100))


def percentile_name(q: float) -> str:
    """'p50', 'p99.9', ..."""
    return f"p{q:g}"


def time_axis_title(x: pd.Series) -> str:
    """'Time' for timestamps, seconds since the start otherwise."""
    if pd.api.types.is_datetime64_any_dtype(x):
        return "Time"
    return "Time since start (s)"


def x_hover(x: pd.Series) -> str:
    """Hover format of a time axis (clock time or seconds)."""
    if pd.api.types.is_datetime64_any_dtype(x):
        return "%{x|%H:%M:%S}"
    return "%{x:,.0f} s"


def runs(df: pd.DataFrame, column: str | None) -> list[tuple[str | None, pd.DataFrame]]:
    """Groups in first-appearance order, or one unnamed group when there is no run column."""
    if column is None or column not in df.columns:
        return [(None, df)]
    keys = df[column].fillna("(none)").astype(str)
    return [(name, df[keys == name]) for name in pd.unique(keys)]


def code_text(code: object) -> str:
    """A status code as text: 200.0 -> '200', missing -> 'error'."""
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return "error"
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code).strip()


def status_class(code: object) -> str:
    """'2xx', '4xx', '5xx' or 'other' for an HTTP status code (int, str or anything else)."""
    text = code_text(code)
    if len(text) == 3 and text.isdigit() and text[0] in "245":
        return f"{text[0]}xx"
    return "other"
