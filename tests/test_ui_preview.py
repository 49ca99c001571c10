"""Formats of the Datasets page's preview."""

from __future__ import annotations

import pandas as pd

from lib.ui import preview_columns


def test_dates_without_a_time_of_day_are_shown_as_dates() -> None:
    """A car-sales export's 03/15/2023 read '2023-03-15 00:00:00' in the preview."""
    frame = pd.DataFrame(
        {
            "Date": pd.to_datetime(["2023-03-15", None, "2023-11-09"]),
            "Sold at": pd.to_datetime(["2023-03-15 08:30", "2023-03-16 00:00", None]),
            "Price": [23450.0, 18999.5, None],
        }
    )
    formats = preview_columns(frame)
    assert list(formats) == ["Date"]
    assert formats["Date"]["type_config"]["format"] == "YYYY-MM-DD"
