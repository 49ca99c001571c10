"""Drift charts on fixed drift results."""

from __future__ import annotations

import pandas as pd

from lib.charts import monitoring
from lib.drift import FeatureDrift
from tests.charts.frames import is_empty, nan_list


def drift(name: str, psi: float | None, state: str) -> FeatureDrift:
    return FeatureDrift(
        feature=name,
        kind="categorical",
        psi=psi,
        state=state,
        labels=("a", "b", "(unseen)", "(missing)"),
        expected=(0.6, 0.4, 0.0, 0.0),
        actual=(0.3, 0.2, 0.5, 0.0),
        rows=400,
        missing_train=0.0,
        missing_live=0.0,
        unseen_live=0.5,
    )


def test_ranking_puts_the_most_drifted_on_top_with_state_colours() -> None:
    features = [drift("job", 4.6, "drift"), drift("age", 0.15, "watch"), drift("loan", 0.01, "OK")]
    fig = monitoring.drift_ranking(features)
    bar = fig.data[0]
    assert list(bar.y) == ["loan", "age", "job"]  # drawn bottom-up: job on top
    assert list(bar.marker.color) == [
        monitoring.STATE_COLORS["OK"],
        monitoring.STATE_COLORS["watch"],
        monitoring.STATE_COLORS["drift"],
    ]
    assert {s.x0 for s in fig.layout.shapes} == {0.1, 0.25}
    assert is_empty(monitoring.drift_ranking([drift("x", None, "no data")]))


def test_overlay_shows_training_and_live_shares_per_cell() -> None:
    fig = monitoring.feature_overlay(drift("job", 4.6, "drift"))
    assert [t.name for t in fig.data] == ["training", "live"]
    assert list(fig.data[0].x) == ["a", "b", "(unseen)", "(missing)"]
    assert list(fig.data[1].y) == [30.0, 20.0, 50.0, 0.0]
    assert "drift" in fig.layout.title.text


def test_predictions_over_time_against_training_shares() -> None:
    t = pd.Timestamp("2026-01-01", tz="UTC")
    frame = pd.DataFrame(
        {
            "TimeGenerated": [t, t, t + pd.Timedelta(hours=2)],
            "Prediction": ["no", "yes", "no"],
            "Rows": [8, 2, 5],
            "Share": [0.8, 0.2, 1.0],
        }
    )
    label = FeatureDrift(
        "y",
        "categorical",
        0.2,
        "watch",
        ("no", "yes", "(unseen)", "(missing)"),
        (0.9, 0.1, 0, 0),
        (0.9, 0.1, 0, 0),
        15,
        0,
        0,
    )
    fig = monitoring.predictions_over_time(frame, label, bin_s=3600)
    lines = {tr.name: nan_list(list(tr.y)) for tr in fig.data}
    assert lines == {"no": [80.0, None, 100.0], "yes": [20.0, None, 0.0]}
    assert sorted(round(s.y0, 6) for s in fig.layout.shapes) == [10.0, 90.0]
    assert fig.layout.xaxis.range is None  # several bins: the data sets the axis
    # One bin: the axis spans a bin either side, not a millisecond around the one point
    one = monitoring.predictions_over_time(frame.head(2), label, bin_s=3600)
    low, high = (pd.Timestamp(v) for v in one.layout.xaxis.range)
    assert high - low == pd.Timedelta(hours=2) and low < t < high
