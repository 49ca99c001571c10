"""Numbers that look like a missing value in disguise: Pima's `Insulin` = 0, a station's -999.

A value at one end of a number column, written in many rows and set apart from the others by a
gap far wider than the steps between its neighbours, is what a file writes when nothing was
measured. Only said, never acted on: a zero can be a real reading (a free ticket's fare).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# Values files write for "not measured" (the nines and their negatives, and zero).
SENTINELS = frozenset(
    {0.0, -1.0, -9.0, -99.0, -999.0, -9999.0, -99999.0, 99.0, 999.0, 9999.0, 99999.0, 999999.0}
)
MIN_CELLS = 5
MIN_SHARE = 0.005
MIN_DISTINCT = 10  # other values needed to tell a gap from the column's own steps
NEIGHBOURS = 10
GAP_RATIO = 5.0
# A zero in most rows is the column's usual value (capital gains: 92 % of people had none).
ZERO_MAX_SHARE = 0.6
# A column named for an amount of something a row may have none of (an area, a count, money
# paid or gained): its zero is "none", even set apart (House Prices: 2ndFlrSF = 0 in 57 % of
# houses, the others 110 ft² up; TotalBsmtSF = 0, no basement). Words of the name, camelCase
# split: "WoodDeckSF" is wood, deck, sf.
_NONE_IS_ZERO = re.compile(
    r"^(sf|sqft|ft2|m2|area|size|porch|deck|pool|garage|bsmt|basement|flr|floor|floors"
    r"|count|cnt|num|number|qty|quantity|amount|amt|sum|total|gain|gains|loss|losses"
    r"|balance|paid|payment|payments|spend|spent|fee|fees|bonus|discount|tip|tips|tolls"
    r"|children|kids|dependents|pets|cars|rooms|baths|bathrooms|bedrooms|visits|calls"
    r"|previous|purchases|orders|items|units)$"
)
_NAME_WORDS = re.compile(r"[A-Z]{2,}(?=[A-Z][a-z]|\d|\b|_|$)|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _zero_means_none(name: str | None) -> bool:
    if not name:
        return False
    return any(_NONE_IS_ZERO.match(w.lower()) for w in _NAME_WORDS.findall(str(name)))


def disguised_value(values: pd.Series, name: str | None = None) -> tuple[float, int] | None:
    """The sentinel value a number column writes for "not measured", and its cells, else None.
    ``name``: the column's (a zero is "none" in a column named for an amount)."""
    if values.dtype.kind not in "iuf":
        return None
    numbers = values.dropna().to_numpy(dtype="float64")
    if len(numbers) < MIN_CELLS:
        return None
    # Most columns end in no sentinel: two passes instead of a sort.
    if float(numbers.min()) not in SENTINELS and float(numbers.max()) not in SENTINELS:
        return None
    distinct, counts = np.unique(numbers, return_counts=True)
    if len(distinct) < MIN_DISTINCT + 1:
        return None
    for at, step_side in ((0, 1), (len(distinct) - 1, -1)):
        value, n = float(distinct[at]), int(counts[at])
        if value not in SENTINELS or n < max(MIN_CELLS, MIN_SHARE * len(numbers)):
            continue
        if value == 0 and (n > ZERO_MAX_SHARE * len(numbers) or _zero_means_none(name)):
            continue
        others = distinct[at + step_side :: step_side][: NEIGHBOURS + 1]
        steps = np.abs(np.diff(others))
        gap = abs(others[0] - value)
        if steps.size and gap >= GAP_RATIO * max(float(steps.mean()), 1e-12):
            return value, n
    return None


def disguised_missing(frame: pd.DataFrame, skip: str | None = None) -> dict[str, tuple[float, int]]:
    """Every number column (but `skip`, a target) with such a value: column -> (value, cells)."""
    out = {}
    # Only a column ending in a sentinel can have one: its ends for all columns at once.
    lo, hi = frame.min(numeric_only=True), frame.max(numeric_only=True)
    ends = [c for c in lo.index if float(lo[c]) in SENTINELS or float(hi[c]) in SENTINELS]
    for name in ends:
        if name == skip:
            continue
        found = disguised_value(frame[name], str(name))
        if found:
            out[str(name)] = found
    return out


def _written(value: float) -> str:
    return f"{value:g}"


def disguised_note(found: dict[str, tuple[float, int]], rows: int) -> str:
    """What the operator is told, naming each column's value and how many rows hold it."""
    parts = [
        f"{c} = {_written(v)} in {n:,} rows ({n / max(rows, 1):.1%})" for c, (v, n) in found.items()
    ]
    tokens = ", ".join(disguised_tokens(found))
    return (
        "Values set apart from the rest of their column, as files write them for "
        f'"not measured": {", ".join(parts)}. If they mean no value, register the file again '
        f"with the missing-value tokens {tokens} (each in its column only)."
    )


def disguised_tokens(found: dict[str, tuple[float, int]]) -> list[str]:
    """The `column=value` tokens that read them as missing in their columns only."""
    return [f"{c}={_written(v)}" for c, (v, _n) in found.items()]
