"""Numbers that look like a missing value in disguise: Pima's `Insulin` = 0, a station's -999.

A value at one end of a number column, written in many rows and set apart from the others by a
gap far wider than the steps between its neighbours, is what a file writes when nothing was
measured. Only said, never acted on: a zero can be a real reading (a free ticket's fare).
"""

from __future__ import annotations

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


def disguised_value(values: pd.Series) -> tuple[float, int] | None:
    """The sentinel value a number column writes for "not measured", and its cells, else None."""
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
        if value == 0 and n > ZERO_MAX_SHARE * len(numbers):
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
        found = disguised_value(frame[name])
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
