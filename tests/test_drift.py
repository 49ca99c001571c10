"""Drift math: PSI, the OK / watch / drift rule, training profiles and their cells."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib.drift import (
    MISSING,
    UNSEEN,
    Baseline,
    FeatureProfile,
    build_baseline,
    compare,
    compare_all,
    drift_state,
    psi,
    worst_state,
)


def test_psi_of_identical_shares_is_zero_and_grows_with_the_shift():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = (0.7 - 0.5) * math.log(0.7 / 0.5) + (0.3 - 0.5) * math.log(0.3 / 0.5)
    assert psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(expected)
    # A cell empty in training counts as 0.0001: a new category weighs, but finitely.
    assert 4 < psi([1.0, 0.0], [0.5, 0.5]) < 5


def test_thresholds():
    assert [drift_state(v) for v in (0.0, 0.099, 0.1, 0.249, 0.25, 3.0)] == [
        "OK",
        "OK",
        "watch",
        "watch",
        "drift",
        "drift",
    ]
    assert drift_state(None) == "no data"
    assert worst_state(["OK", "drift", "watch"]) == "drift"
    assert worst_state([]) == "no data"


def test_numeric_cells_are_training_deciles_plus_missing():
    profile = FeatureProfile("age", "numeric", edges=(30.0, 40.0))
    counts = profile.count([10, 30, 35.5, 40, 99, None, float("nan")])
    # (-inf, 30), [30, 40), [40, inf), missing
    assert counts.tolist() == [1, 2, 2, 2]
    assert profile.labels() == ["< 30", "30 – 40", "≥ 40", MISSING]
    # Values that are not numbers count as missing rather than failing the writer.
    assert profile.count(["12", "n/a"]).tolist() == [1, 0, 0, 1]
    # Numbers written for people fall where the endpoint reads them ("$1,234.50" is 1234.5).
    assert profile.count(["$35", "1,234", "12%", "$", "1,5", "(5)"]).tolist() == [2, 1, 1, 2]
    assert profile.count(["\u221235"]).tolist() == [1, 0, 0, 0]  # U+2212, a web page's minus


def test_bin_edges_read_as_plain_numbers():
    """A price's deciles read '< 1.768e+04' beside '80,888 – 96,271'."""
    profile = FeatureProfile("price", "numeric", edges=(17680.5, 80888.0, 0.123456, 12.3456))
    assert profile.labels()[:2] == ["< 17,680", "17,680 – 80,888"]
    assert profile.labels()[2:4] == ["80,888 – 0.1235", "0.1235 – 12.35"]


def test_categorical_cells_are_training_categories_plus_unseen_and_missing():
    profile = FeatureProfile("job", "categorical", categories=("admin.", "True", "1"))
    counts = profile.count(["admin.", "astronaut", None, "", True, 1, "admin."])
    assert counts.tolist() == [2, 1, 1, 1, 2]
    assert profile.labels() == ["admin.", "True", "1", UNSEEN, MISSING]


def test_baseline_profiles_every_feature_and_the_label():
    frame = pd.DataFrame(
        {
            "age": np.arange(200) % 50 + 20,
            "job": ["a", "b", "c", None] * 50,
            "flag": [True, False] * 100,
            "y": (["no"] * 80 + ["yes"] * 20) * 2,
        }
    )
    baseline = build_baseline(frame, target="y", source="t v1")
    assert [f.name for f in baseline.features] == ["age", "job", "flag"]
    age, job, flag = baseline.features
    assert age.kind == "numeric" and len(age.edges) == 9
    assert job.kind == "categorical" and set(job.categories) == {"a", "b", "c"}
    assert job.shares[job.missing_cell] == pytest.approx(0.25)
    assert flag.kind == "categorical" and set(flag.categories) == {"True", "False"}
    assert baseline.prediction.categories == ("no", "yes")
    assert baseline.prediction.shares[:2] == pytest.approx((0.8, 0.2))
    for profile in baseline.profiles:
        assert sum(profile.shares) == pytest.approx(1.0)
    # The training data scores no drift against itself.
    counts = baseline.count(frame.to_dict("records"), list(frame["y"]))
    features, prediction = compare_all(baseline, counts)
    assert all(f.psi == pytest.approx(0.0, abs=1e-9) for f in features)
    assert prediction.state == "OK"


def test_baseline_round_trip_and_content_id():
    frame = pd.DataFrame({"x": np.arange(200.0), "y": np.arange(200.0) * 2})
    baseline = build_baseline(frame, target="y", task="regression", source="r v2")
    assert baseline.prediction.kind == "numeric"
    again = Baseline.from_json(baseline.to_json())
    assert again == baseline and again.id == baseline.id
    other = build_baseline(frame.head(100), target="y", task="regression")
    assert other.id != baseline.id
    assert baseline.size == sum(p.size for p in baseline.profiles)


def test_numbers_the_upload_read_as_missing_are_missing_live_too():
    """A station's -999 was no value at upload; a client sending it is counted as missing, not
    as a reading far below every training decile."""
    frame = pd.DataFrame({"humidity": [np.nan, *np.linspace(0, 100, 99)], "wind": np.ones(100)})
    baseline = build_baseline(frame, missing_numbers={"humidity": [-999.0]})
    humidity, wind = baseline.profiles
    assert humidity.blanks == (-999.0,) and wind.blanks == ()
    counts = humidity.count([-999, "-999", None, 50.0, -998])
    assert counts[humidity.missing_cell] == 3
    assert counts[0] == 1  # -998 is a (very low) reading
    assert Baseline.from_json(baseline.to_json()) == baseline
    # Baselines of versions without such numbers serialise as before (same content id).
    assert "blanks" not in build_baseline(frame).to_json()


def test_compare_reports_missing_and_unseen_shares():
    profile = FeatureProfile(
        "job", "categorical", categories=("a", "b"), shares=(0.6, 0.4, 0.0, 0.0)
    )
    drift = compare(profile, np.array([60, 40, 80, 20]))
    assert drift.rows == 200 and drift.state == "drift"
    assert (drift.unseen_live, drift.missing_live, drift.missing_change) == (0.4, 0.1, 0.1)
    # 100 rows of the same shares are too few: unchanged data reads PSI 0.1 at that size
    too_few = compare(profile, np.array([30, 20, 40, 10]))
    assert too_few.psi is None and too_few.state == "no data"
