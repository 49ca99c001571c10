"""Values a number column writes for "not measured" are found, and counts and money are not."""

import numpy as np
import pandas as pd

from lib.tabular.disguised import disguised_missing, disguised_note, disguised_tokens

RNG = np.random.default_rng(1)


def _with(values: np.ndarray, share: float, sentinel: float) -> np.ndarray:
    return np.where(RNG.random(len(values)) < share, sentinel, values)


def test_zeros_below_readings_and_nines_are_found() -> None:
    n = 768
    frame = pd.DataFrame(
        {
            "Glucose": _with(RNG.normal(121, 30, n).clip(44, 199).round(), 0.01, 0),
            "Insulin": _with(RNG.lognormal(4.8, 0.6, n).clip(14, 846).round(), 0.49, 0),
            "temp": _with(RNG.normal(12, 8, n).round(1), 0.03, -999),
            "rain": _with(RNG.gamma(2, 3, n).round(1) + 0.1, 0.02, 9999),
            "Outcome": RNG.integers(0, 2, n),
        }
    )
    found = disguised_missing(frame, skip="Outcome")
    assert set(found) == {"Glucose", "Insulin", "temp", "rain"}
    assert found["temp"][0] == -999 and found["rain"][0] == 9999
    assert found["Insulin"] == (0.0, int((frame["Insulin"] == 0).sum()))
    assert disguised_tokens(found)[:2] == ["Glucose=0", "Insulin=0"]
    assert "temp = -999 in" in disguised_note(found, n)


def test_counts_money_and_ordinary_ends_are_not() -> None:
    n = 3000
    frame = pd.DataFrame(
        {
            "pregnancies": RNG.poisson(3, n),  # 0 is one step below 1
            "capital_gain": _with(RNG.lognormal(8, 1, n).round(), 0.92, 0),  # 0 is the norm
            "balance": RNG.normal(1000, 3000, n).round(),  # 0 inside the range
            "score": RNG.integers(0, 100, n),  # 0 and 99 are ordinary ends
            "fare": _with(RNG.lognormal(2.9, 1, n).round(4), 0.0005, 0),  # too few zeros
            "label": RNG.choice(["a", "b"], n),
        }
    )
    assert disguised_missing(frame) == {}


def test_a_zero_in_a_column_named_for_an_amount_is_none_not_missing() -> None:
    """House Prices: 57 % of houses have no second floor (2ndFlrSF = 0, the others from 110
    ft²), a few no basement; the same numbers under a lab test's name are flagged."""
    n = 1460
    second = _with(RNG.normal(800, 250, n).clip(110, 2065).round(), 0.57, 0)
    basement = _with(RNG.normal(1050, 400, n).clip(105, 6110).round(), 0.025, 0)
    frame = pd.DataFrame(
        {"2ndFlrSF": second, "TotalBsmtSF": basement, "GarageArea": basement, "Insulin": second}
    )
    assert set(disguised_missing(frame)) == {"Insulin"}
    # another sentinel in such a column is still one
    frame["PoolArea"] = _with(RNG.normal(500, 100, n).round(), 0.03, -999)
    assert disguised_missing(frame)["PoolArea"][0] == -999
