"""Figures shared between page runs: built once per distinct input."""

from __future__ import annotations

import pandas as pd

from lib import charts
from lib.ui import figure


def _codes(n: int) -> pd.DataFrame:
    return pd.DataFrame({"code": ["200", "500"], "count": [n, 1]})


def test_same_input_reuses_the_figure_and_new_input_builds_another() -> None:
    first = figure(charts.status_codes, _codes(7))
    assert figure(charts.status_codes, _codes(7)) is first
    other = figure(charts.status_codes, _codes(8))
    assert other is not first
    # Each figure shows its own data.
    assert list(first.data[0].y) == [7, 1]
    assert list(other.data[0].y) == [8, 1]


def test_keyword_arguments_are_part_of_the_input() -> None:
    trials = pd.DataFrame(
        {"wall_time_s": [1.0, 2.0], "primary_metric": [0.7, 0.6], "estimator": ["lgbm"] * 2}
    )
    up = figure(charts.best_score_over_time, trials, "AUC_weighted", higher_is_better=True)
    down = figure(charts.best_score_over_time, trials, "AUC_weighted", higher_is_better=False)
    assert up is not down
