"""Fixed inputs and checks shared by the chart tests."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from lib import charts


def is_empty(fig: go.Figure) -> bool:
    """True for the "No data yet" figure."""
    return [a.text for a in fig.layout.annotations] == [charts.EMPTY_TEXT] and not fig.data


def nan_list(values) -> list:  # noqa: ANN001
    """Values with NaN as None, so lists with gaps compare with ==."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def requests_frame() -> pd.DataFrame:
    """Eight requests over four minutes (10:02 has none) with codes, durations and success."""
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
