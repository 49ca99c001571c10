"""The record encoder: raw feature values to the float64 matrix the members were trained on.

One encoder for every way into a model: ``TabularModel`` (training frames, the pandas
reference ``predict`` and its ``fast_predict``) and the compiled fast path all use the rules
below, so a value is encoded the same way whichever path scores it.

It imports numpy and the standard library only: it ships inside every saved model beside
``lib/local/tabular_model.py`` and must load without the rest of ``lib``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

NUMERIC = "numeric"
CATEGORICAL = "categorical"

_PANDAS_MISSING = frozenset({"NAType", "NaTType"})


def is_missing(value: Any) -> bool:
    """True for None, a NaN of any float type, ``pandas.NA`` and ``pandas.NaT``.

    An empty string is a value, not a missing one: it is a category when training saw it.
    """
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return value != value
    # pandas.NA / pandas.NaT, recognised without importing pandas.
    t = type(value)
    return t.__name__ in _PANDAS_MISSING and t.__module__.startswith("pandas")


def to_float(value: Any) -> float:
    """A numeric feature value: missing or not a number (e.g. ``"abc"``, ``""``) is NaN."""
    if value is None:
        return math.nan
    try:
        # float() of a NaN is NaN; pandas.NA and pandas.NaT raise TypeError.
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def category_lookup(categories: Sequence[Any]) -> dict[Any, float]:
    """Code of every category, keyed by the value and by its ``str()``: JSON sends "1" or 1."""
    table: dict[Any, float] = {}
    for code, cat in enumerate(categories):
        table.setdefault(str(cat), float(code))
        table[cat] = float(code)
    return table


def category_code(lookup: Mapping[Any, float], value: Any) -> float:
    """A categorical feature value's code; missing and unseen values are NaN."""
    try:
        code = lookup.get(value)
    except TypeError:  # unhashable value
        code = None
    if code is not None:
        return code
    # Missing values are never keys, but their str() ("None", "nan", "<NA>") could be.
    if is_missing(value):
        return math.nan
    return lookup.get(str(value), math.nan)


class RecordEncoder:
    """Plain dict records to the float64 matrix: numerics as floats, categoricals as codes."""

    def __init__(self, feature_spec: list[dict[str, Any]]):
        self.feature_spec = feature_spec
        self.columns = [f["name"] for f in feature_spec]
        self._lookups: list[dict[Any, float] | None] = [
            category_lookup(f["categories"]) if f["kind"] == CATEGORICAL else None
            for f in feature_spec
        ]

    def encode(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """One row per record; an absent column is a missing value."""
        rows = [
            [
                to_float(rec.get(name)) if lookup is None else category_code(lookup, rec.get(name))
                for name, lookup in zip(self.columns, self._lookups, strict=True)
            ]
            for rec in records
        ]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(self.columns))
