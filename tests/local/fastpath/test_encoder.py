"""The one record encoder: what counts as missing, and every way into a model agrees."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from lib.local.fastpath import RecordEncoder, is_missing
from lib.local.tabular_model import Encoder

MISSING = [None, float("nan"), np.nan, np.float32("nan"), np.float16("nan"), pd.NA, pd.NaT]
NOT_MISSING = ["", " ", "nan", "None", "<NA>", 0, 0.0, -0.0, False, "0", math.inf]
# Categories spelled like the str() of missing values, and the empty string.
SPEC = [
    {"name": "amount", "kind": "numeric", "categories": None},
    {
        "name": "colour",
        "kind": "categorical",
        "categories": ["red", "None", "nan", "<NA>", "NaT", ""],
    },
    {"name": "size", "kind": "categorical", "categories": [1, 2]},
]


def _ids(values: list) -> list[str]:
    return [f"{type(v).__name__}:{v!r}" for v in values]


def _all_ways(records: list[dict]) -> list[np.ndarray]:
    """The matrix from every way a value reaches a member."""
    enc = Encoder(SPEC)
    frame = pd.DataFrame.from_records(records, columns=enc.columns).astype(object)
    return [
        RecordEncoder(SPEC).encode(records),  # compiled fast path
        enc.encode_records(records),  # TabularModel.fast_predict
        enc.encode_frame(frame),  # TabularModel.predict (pandas reference)
    ]


@pytest.mark.parametrize("value", MISSING, ids=_ids(MISSING))
def test_missing_values_are_missing(value) -> None:
    assert is_missing(value)


@pytest.mark.parametrize("value", NOT_MISSING, ids=_ids(NOT_MISSING))
def test_empty_strings_zeros_and_look_alike_strings_are_values(value) -> None:
    assert not is_missing(value)


@pytest.mark.parametrize("value", MISSING, ids=_ids(MISSING))
def test_a_missing_value_encodes_as_nan_in_every_column_kind(value) -> None:
    # str(None) == "None", str(nan) == "nan", ...: each is a category here, and must not match.
    for x in _all_ways([{"amount": value, "colour": value, "size": value}]):
        assert np.isnan(x).all(), x


def test_empty_string_is_a_category_when_trained_and_unseen_otherwise() -> None:
    records = [{"amount": "", "colour": "", "size": ""}]
    for x in _all_ways(records):
        assert math.isnan(x[0, 0])  # not a number
        assert x[0, 1] == SPEC[1]["categories"].index("")
        assert math.isnan(x[0, 2])  # not a category of this column


def test_values_numbers_as_text_and_unseen_values_agree_across_ways() -> None:
    records = [
        {"amount": "2.5", "colour": "red", "size": "2"},
        {"amount": 3, "colour": "nan", "size": 1.0},  # the string "nan" is a category here
        {"amount": True, "colour": "violet", "size": 3},
        {"amount": Decimal("1.25"), "colour": ["un", "hashable"], "size": None},
        {"colour": "NaT"},  # absent columns are missing
    ]
    ways = _all_ways(records)
    expected = np.array(
        [
            [2.5, 0.0, 1.0],
            [3.0, 2.0, 0.0],
            [1.0, np.nan, np.nan],
            [1.25, np.nan, np.nan],
            [np.nan, 4.0, np.nan],
        ]
    )
    for x in ways:
        np.testing.assert_array_equal(x, expected)


def test_pandas_extension_columns_encode_like_records() -> None:
    enc = Encoder(SPEC)
    frame = pd.DataFrame(
        {
            "amount": pd.array([1.5, None], dtype="Float64"),
            "colour": pd.array(["red", None], dtype="string"),
            "size": pd.array([2, None], dtype="Int64"),
        }
    )
    expected = np.array([[1.5, 0.0, 1.0], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(enc.encode_frame(frame), expected)
    np.testing.assert_array_equal(enc.encode_records(frame.to_dict("records")), expected)
