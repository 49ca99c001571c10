"""Column guardrails both the form and the engines use: ID-like, free-text and leaking columns.

Pure functions of a DataFrame (a sample is enough): the AutoML form runs them before submit to
pre-untick suggested exclusions, the local job runs them before the search and stores them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lib.tabular.number_words import spoiled_note, words_among_numbers

# A one-feature model scoring this well on held-out rows (AUC, or R² for regression) leaks.
LEAKAGE_SCORE = 0.95
# After the search: a feature alone reaching this share of the best model's lift over chance leaks.
RELATIVE_LEAKAGE = 0.98
# ... when it scores at least this alone: a feature that beats a model barely above chance
# (AUC 0.53) only shows the model learnt little, not that the feature leaks.
RELATIVE_MIN_SCORE = {"classification": 0.75, "regression": 0.5}
# The model metric a one-feature score is compared with, and what a guess scores on it.
LEAKAGE_METRIC = {"classification": "AUC_weighted", "regression": "r2_score"}
CHANCE = {"classification": 0.5, "regression": 0.0}
# Text columns with more distinct values than this share of rows identify rows.
ID_TEXT_SHARE = 0.9
# With a name that says "identifier", a smaller share is enough (ticket numbers repeat a little).
ID_HINTED_SHARE = 0.5
# Integer columns this unique that count through their range in file order (1..n: row
# numbers; a rank column counts through its range too, but not in the order of the rows).
ID_INTEGER_SHARE = 0.95
FREE_TEXT_WORDS = 4.0
# ... and this many are sentences, free text even when every row's differs.
SENTENCE_WORDS = 8.0
MIN_ROWS = 20
LEAKAGE_BINS = 50
LEAKAGE_MAX_ROWS = 20_000
LEAKAGE_MAX_COLUMNS = 300
DISTINCT_CELLS_AT_ONCE = 2_000_000
# Two number features combined (sum, difference, product) equal to the target on this share of
# rows leak it; looked for among this many features most correlated with the target.
COMBINED_SHARE = 0.99
COMBINED_CANDIDATES = 12
# Number columns whose pairs are checked for an equality that gives the class away.
EQUAL_PAIR_COLUMNS = 60
# Scores at or above these look too good to be true for real-world data.
TOO_GOOD = {"AUC_weighted": 0.99, "accuracy": 0.99, "r2_score": 0.99}
_ID_HINT = re.compile(
    r"(^|[_\W])(id|ids|rownames?|row_?id|index|uuid|guid|key|ticket|name|names|number|nbr|no"
    r"|phone|mobile|e_?mail|ssn|passport|iban|serial)($|[_\W])",
    re.IGNORECASE,
)
# A person's name says who a row is about, not what predicts the outcome (and a model keyed on
# surnames learns families and origins): flagged once it has more than a handful of values.
_PERSON_NAME = re.compile(
    r"(^|[_\W])(sur_?name|(first|last|full|given|family|middle|fore|maiden)_?names?"
    r"|(customer|client|employee|patient|passenger|person|user|contact|member|student|owner)"
    r"_?names?)($|[_\W])",
    re.IGNORECASE,
)
PERSON_NAME_VALUES = 50
# Names that can only mean "identifier" (not "number of ..."): integers under such a name that
# are mostly distinct identify what the rows are about (a patient tested twice, an order line).
_ID_NAME = re.compile(r"(^|[_\W])(id|ids|rownames?|row_?id|uuid|guid|nbr)($|[_\W])", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z](Id|ID|Ids|IDs)$")  # customerId, PassengerID
_CAMEL_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z][a-z])|(?<=[a-z])(?=[A-Z])")
# The names readers give a saved index's blank header cell: pandas "Unnamed: 0", R "X",
# readr "...1", opsdeck "column_1".
_INDEX_NAME = re.compile(r"^(unnamed(: ?\d+)?|x|\.\.\.\d+|column_\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class ColumnFlag:
    """One column the operator should probably leave out, and why (with the number)."""

    column: str
    kind: str  # "id-like", "free text" or "leakage"
    reason: str
    score: float | None = None
    share: float | None = None  # of the best model's score above chance (relative leakage)


def _is_datetime(col: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(col)


def _is_text(col: pd.Series) -> bool:
    # A datetime is a date feature, never text: nearly unique timestamps are not row IDs.
    return not (
        pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col) or _is_datetime(col)
    )


def text_columns(frame: pd.DataFrame) -> list[Any]:
    """The text columns of `frame`, told by their dtypes alone (no column is taken out)."""
    return [
        c
        for c, t in frame.dtypes.items()
        if not (
            pd.api.types.is_numeric_dtype(t)
            or pd.api.types.is_bool_dtype(t)
            or pd.api.types.is_datetime64_any_dtype(t)
        )
    ]


def distinct_counts(frame: pd.DataFrame, columns: list[Any]) -> dict[Any, tuple[int, int]]:
    """(distinct values, cells with a value) of each of `columns`, hashed a block of columns
    at a time: column by column, 5,000 text columns took seconds."""
    out: dict[Any, tuple[int, int]] = {}
    # Hashing reads a value as its text: columns of mixed types (1 and "1") are counted alone.
    dtypes = frame.dtypes
    strings = [c for c in columns if isinstance(dtypes[c], pd.StringDtype)]
    hashed = set(strings)
    for c in columns:
        if c not in hashed:
            col = frame[c]
            out[c] = (int(col.nunique(dropna=True)), int(col.count()))
    columns = strings
    rows = len(frame)
    step = max(1, DISTINCT_CELLS_AT_ONCE // max(rows, 1))
    for i in range(0, len(columns), step):
        part = columns[i : i + step]
        values = frame[part].to_numpy(dtype=object)
        present = ~pd.isna(values)
        hashed = pd.util.hash_array(values.ravel(order="F")).reshape(len(part), rows)
        hashed = np.where(present.T, hashed, 0)  # every missing cell one value, taken off
        hashed.sort(axis=1)
        changes = (np.diff(hashed, axis=1) != 0).sum(axis=1) + (1 if rows else 0)
        filled = present.sum(axis=0)
        gaps = filled < rows
        for c, d, n, g in zip(part, changes, filled, gaps, strict=True):
            out[c] = (int(d) - int(g) if n else 0, int(n))
    return out


def text_counts(frame: pd.DataFrame, target: str) -> dict[Any, tuple[int, int]]:
    """`distinct_counts` of every text column but the target."""
    return distinct_counts(frame, [c for c in text_columns(frame) if c != target])


def _text_counts(
    frame: pd.DataFrame, target: str, counts: dict[Any, tuple[int, int]] | None
) -> dict[Any, tuple[int, int]]:
    if counts is None:
        return text_counts(frame, target)
    return {c: counts[c] for c in text_columns(frame) if c != target and c in counts}


def _as_numbers(col: pd.Series) -> np.ndarray:
    """Numbers as float64; datetimes as seconds since the epoch (missing: NaN)."""
    if _is_datetime(col):
        stamps = pd.to_datetime(col, utc=True)
        seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        return seconds.to_numpy(dtype=np.float64, na_value=np.nan)
    return col.to_numpy(dtype=np.float64)


def _integer_valued(values: pd.Series) -> bool:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    arr = values.to_numpy(dtype=np.float64)
    return bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))


def _words(name: object) -> str:
    """A column name with its camel-case words apart: EmployeeNumber -> Employee_Number."""
    return _CAMEL_WORD.sub("_", str(name))


def id_like_columns(
    frame: pd.DataFrame, target: str, counts: dict[Any, tuple[int, int]] | None = None
) -> dict[str, str]:
    """Columns that identify rows rather than describe them: column -> reason. `counts`: the
    text columns' `distinct_counts`, when known already."""
    out: dict[str, str] = {}
    # A number column whose smallest or largest value is not whole holds no integer ID: ruled
    # out for all columns at once (one by one, a table of 10,000 measurements took 2 s).
    lo = pd.to_numeric(frame.min(numeric_only=True), errors="coerce")
    hi = pd.to_numeric(frame.max(numeric_only=True), errors="coerce")
    fractional = set(lo.index[(lo != lo.round()) | (hi != hi.round())])
    texts = _text_counts(frame, target, counts)
    for c in frame.columns:
        if c == target or c in fractional:
            continue
        words = _words(c)
        hinted = bool(_ID_HINT.search(words) or _CAMEL_ID.search(str(c)))
        if c in texts:
            distinct, filled = texts[c]
            if filled < MIN_ROWS:
                continue
            share = distinct / filled
            if share > ID_TEXT_SHARE or (hinted and share > ID_HINTED_SHARE):
                out[str(c)] = f"{distinct} distinct values in {filled} rows ({share:.0%})"
                spoiled = words_among_numbers(frame[c].dropna())
                if spoiled:
                    out[str(c)] = spoiled_note(str(c), spoiled)
            elif _PERSON_NAME.search(words) and distinct > PERSON_NAME_VALUES:
                out[str(c)] = f"a person's name ({distinct:,} distinct values in {filled:,} rows)"
            continue
        values = frame[c].dropna()
        if len(values) < MIN_ROWS or _is_text(values):
            continue
        # The cheap tests first: counting distinct values of a million numbers takes 0.1 s.
        if not _integer_valued(values):
            continue
        counts_through = values.max() - values.min() + 1 <= 1.1 * len(values)
        in_order = values.is_monotonic_increasing or values.is_monotonic_decreasing
        index_name = bool(_INDEX_NAME.match(str(c).strip()))
        # A file without a header row whose first column holds codes spread far wider than the
        # rows (UCI's breast cancer data: sample numbers 61634..13454352, a few repeated).
        unnamed_first = (
            str(c) == "column_1"
            and c == frame.columns[0]
            and values.max() - values.min() > 100 * len(values)
        )
        if not (hinted or unnamed_first or (counts_through and (in_order or index_name))):
            continue
        distinct = values.nunique()
        share = distinct / len(values)
        if unnamed_first and share > ID_TEXT_SHARE:
            out[str(c)] = (
                f"{distinct:,} distinct integers {values.min():.0f}..{values.max():.0f} in "
                f"{len(values):,} rows, first in a file without a header row (an identifier)"
            )
        elif share > ID_INTEGER_SHARE:
            what = "a row number" if counts_through and in_order else "an identifier"
            out[str(c)] = f"unique integers {values.min():.0f}..{values.max():.0f} ({what})"
        elif share > ID_HINTED_SHARE and (_ID_NAME.search(words) or _CAMEL_ID.search(str(c))):
            out[str(c)] = f"{distinct} distinct identifiers in {len(values)} rows ({share:.0%})"
    return out


def free_text_columns(
    frame: pd.DataFrame, target: str, counts: dict[Any, tuple[int, int]] | None = None
) -> dict[str, str]:
    """Text columns of sentences rather than categories: column -> reason."""
    out: dict[str, str] = {}
    for c, (distinct, filled) in _text_counts(frame, target, counts).items():
        if filled < MIN_ROWS or distinct / filled <= ID_HINTED_SHARE:
            continue
        words = _mean_words(frame[c])
        if words >= FREE_TEXT_WORDS:
            out[str(c)] = f"free text ({words:.1f} words a row on average)"
    return out


def _mean_words(col: pd.Series) -> float:
    return float(col.dropna().astype(str).str.split().str.len().mean())


def _numeric(col: pd.Series) -> bool:
    return not _is_text(col) and col.nunique(dropna=True) > LEAKAGE_BINS


def _predict_alone(col: pd.Series, targets: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Held-out predictions (one column per target column) of a model that sees ``col`` only.

    Numbers: the mean of the nearest training rows by value (a 1-D nearest-neighbour model, which
    follows a row number sorted by the target as closely as a boosted model would). Categories and
    few-valued numbers: the mean per value, pulled a little toward the overall mean.
    """
    prior = targets[train].mean(axis=0)
    hold = ~train
    out = np.tile(prior, (int(hold.sum()), 1))
    missing = col.isna().to_numpy()
    if _numeric(col):
        x = _as_numbers(col)
        fit = train & ~missing
        if fit.sum() >= MIN_ROWS:
            order = np.argsort(x[fit], kind="stable")
            xs, ys = x[fit][order], targets[fit][order]
            k = max(5, int(fit.sum()) // 200)
            smooth = pd.DataFrame(ys).rolling(k, center=True, min_periods=1).mean().to_numpy()
            pos = np.clip(np.searchsorted(xs, x[hold]), 0, len(xs) - 1)
            known = ~missing[hold]
            out[known] = smooth[pos[known]]
        absent = train & missing
        if absent.any():
            out[missing[hold]] = targets[absent].mean(axis=0)
        return out
    keys = col.astype(str).where(~missing, "<missing>").to_numpy()
    frame = pd.DataFrame(targets[train]).assign(k=keys[train])
    sums = frame.groupby("k").sum()
    counts = frame.groupby("k").size()
    means = (sums.to_numpy() + prior) / (counts.to_numpy()[:, None] + 1)
    lookup = {key: i for i, key in enumerate(sums.index)}
    rows = np.array([lookup.get(key, -1) for key in keys[hold]])
    seen = rows >= 0
    out[seen] = means[rows[seen]]
    return out


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    pos = int(positive.sum())
    neg = len(positive) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pd.Series(score).rank().to_numpy()
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def one_feature_scores(
    frame: pd.DataFrame, target: str, task: str, features: list[str] | None = None, seed: int = 0
) -> dict[str, float]:
    """Held-out score of a model on each feature alone: weighted AUC, or R² (regression)."""
    data = frame[frame[target].notna()]
    if len(data) > LEAKAGE_MAX_ROWS:
        data = data.sample(n=LEAKAGE_MAX_ROWS, random_state=seed)
    if len(data) < MIN_ROWS:
        return {}
    names = [c for c in (features or list(data.columns)) if c != target and c in data.columns]
    train = np.random.default_rng(seed).permutation(len(data)) < int(0.7 * len(data))
    y = data[target]
    if task == "regression":
        values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64)[:, None]
        if not np.isfinite(values).all():
            return {}
        classes = None
    else:
        labels = y.astype(str).to_numpy()
        classes, counts = np.unique(labels[~train], return_counts=True)
        if len(classes) < 2:
            return {}
        values = (labels[:, None] == classes[None, :]).astype(np.float64)
    out: dict[str, float] = {}
    for c in names[:LEAKAGE_MAX_COLUMNS]:
        pred = _predict_alone(data[c], values, train)
        truth = values[~train]
        if classes is None:
            total = float(((truth - truth.mean()) ** 2).sum())
            score = 1.0 - float(((truth - pred) ** 2).sum()) / total if total > 0 else np.nan
        else:
            aucs = [_auc(pred[:, i], truth[:, i] == 1.0) for i in range(len(classes))]
            score = float(np.average(aucs, weights=counts)) if len(classes) > 2 else aucs[1]
        if np.isfinite(score):
            out[str(c)] = float(score)
    return out


def combined_leaks(frame: pd.DataFrame, target: str) -> dict[str, str]:
    """Number features whose sum, difference or product *is* a number target (a bike-share
    count = casual + registered; amount = quantity × price): column -> reason.

    Each part alone may predict the target only loosely, so the one-feature check misses them.
    Pairs among the features most correlated with the target; the identity must hold on
    ``COMBINED_SHARE`` of the rows (0.1 % rounding allowed).
    """
    y_all = frame[target]
    if not pd.api.types.is_numeric_dtype(y_all) or pd.api.types.is_bool_dtype(y_all):
        return {}
    data = frame[y_all.notna()]
    if len(data) > LEAKAGE_MAX_ROWS:
        data = data.sample(n=LEAKAGE_MAX_ROWS, random_state=0)
    if len(data) < MIN_ROWS:
        return {}
    y = data[target].to_numpy(dtype=np.float64)
    columns = {}
    for c in data.columns[:LEAKAGE_MAX_COLUMNS]:
        col = data[c]
        if c == target or _is_text(col) or _is_datetime(col) or pd.api.types.is_bool_dtype(col):
            continue
        x = col.to_numpy(dtype=np.float64)
        both = np.isfinite(x) & np.isfinite(y)
        if both.sum() >= MIN_ROWS and np.std(x[both]) > 0:
            # A constant target (every difference of two equal columns) correlates with nothing.
            steady = np.std(y[both]) == 0
            corr = 0.0 if steady else abs(float(np.corrcoef(x[both], y[both])[0, 1]))
            columns[str(c)] = (x, corr)
    ranked = sorted(columns, key=lambda c: -columns[c][1])[:COMBINED_CANDIDATES]
    tolerance = 1e-6 * max(1.0, float(np.nanmedian(np.abs(y))))
    out: dict[str, str] = {}
    for i, a in enumerate(ranked):
        for b in ranked[i + 1 :]:
            xa, xb = columns[a][0], columns[b][0]
            combined = (
                (f"{a} + {b}", xa + xb),
                (f"{a} − {b}", xa - xb),
                (f"{b} − {a}", xb - xa),
                (f"{a} × {b}", xa * xb),
            )
            for formula, value in combined:
                usable = np.isfinite(value) & np.isfinite(y)
                # Rows where the target is zero prove nothing (0 × anything is 0).
                telling = usable[usable] & (y[usable] != 0)
                if telling.sum() < MIN_ROWS:
                    continue
                same = np.isclose(value[usable], y[usable], rtol=1e-3, atol=tolerance)
                share = float(same.mean())
                if share >= COMBINED_SHARE and float(same[telling].mean()) >= COMBINED_SHARE:
                    reason = f"{formula} equals {target} on {share:.0%} of rows"
                    out.setdefault(a, reason)
                    out.setdefault(b, reason)
                    break
    for c, reason in _weighted_sum(columns, ranked, y, target, tolerance).items():
        out.setdefault(c, reason)
    for c, reason in _time_between(data, y, target, tolerance).items():
        out.setdefault(c, reason)
    return out


def equal_pair_leaks(frame: pd.DataFrame, target: str) -> list[tuple[str, str, str]]:
    """Two number features that are equal exactly when the row has one class (a loan's
    principal repaid = its amount: fully paid): (column, other column, reason) per pair.

    Neither predicts the class alone, so the one-feature check misses them. Rows where both
    are zero prove nothing; the equality must split the rows (neither nearly always nor never)
    and tell one class from the rest with AUC ``LEAKAGE_SCORE``.
    """
    data = frame[frame[target].notna()]
    if len(data) > LEAKAGE_MAX_ROWS:
        data = data.sample(n=LEAKAGE_MAX_ROWS, random_state=0)
    labels = data[target].astype(str).to_numpy()
    classes, codes = np.unique(labels, return_inverse=True)
    if len(data) < MIN_ROWS or not 2 <= len(classes) <= 50:
        return []
    names = [
        str(c)
        for c in data.columns[:LEAKAGE_MAX_COLUMNS]
        if c != target
        and pd.api.types.is_numeric_dtype(data[c])
        and not pd.api.types.is_bool_dtype(data[c])
    ][:EQUAL_PAIR_COLUMNS]
    if len(names) < 2:
        return []
    X = np.column_stack([data[c].to_numpy(dtype=np.float64) for c in names])
    onehot = np.eye(len(classes))[codes]  # rows x classes
    sizes = onehot.sum(axis=0)
    out: list[tuple[str, str, str]] = []
    for i, a in enumerate(names[:-1]):
        left, right = X[:, i : i + 1], X[:, i + 1 :]
        with np.errstate(invalid="ignore"):
            eq = np.isclose(left, right, rtol=1e-6, atol=0.0) & ((left != 0) | (right != 0))
        share = eq.mean(axis=0)
        for j in np.flatnonzero((share >= 0.02) & (share <= 0.98)):
            # A yes/no score's AUC for a class: 0.5 + (its share among the class − elsewhere) / 2.
            inside = (eq[:, j].astype(np.float64) @ onehot) / sizes
            elsewhere = (eq[:, j].sum() - inside * sizes) / (len(eq) - sizes)
            auc = 0.5 + np.abs(inside - elsewhere) / 2
            k = int(np.argmax(auc))
            if auc[k] >= LEAKAGE_SCORE:
                b = names[i + 1 + j]
                reason = (
                    f"{a} = {b} on {share[j]:.0%} of rows, which alone tells {target} "
                    f"{classes[k]!r} with AUC {auc[k]:.3f}"
                )
                out.append((a, b, reason))
    return out


def _matches(value: np.ndarray, y: np.ndarray, tolerance: float) -> float | None:
    """Share of rows where `value` is `y` (None: too few rows with both, or a zero target)."""
    usable = np.isfinite(value) & np.isfinite(y)
    if int((usable & (y != 0)).sum()) < MIN_ROWS:
        return None
    return float(np.isclose(value[usable], y[usable], rtol=1e-3, atol=tolerance).mean())


def _weighted_sum(
    columns: dict[str, tuple[np.ndarray, float]],
    ranked: list[str],
    y: np.ndarray,
    target: str,
    tolerance: float,
) -> dict[str, str]:
    """Three or more number features whose weighted sum is the target (a taxi fare's total =
    fare + extras + tax + tip + tolls + surcharge): the least-squares fit is exact."""
    if len(ranked) < 3:
        return {}
    X = np.column_stack([columns[c][0] for c in ranked])
    rows = np.isfinite(X).all(axis=1) & np.isfinite(y)
    if rows.sum() < max(MIN_ROWS, 5 * (len(ranked) + 1)):
        return {}
    A = np.column_stack([X[rows], np.ones(int(rows.sum()))])
    weights = np.linalg.lstsq(A, y[rows], rcond=None)[0]
    share = _matches(A @ weights, y[rows], tolerance)
    if share is None or share < COMBINED_SHARE:
        return {}
    spread = float(np.std(y[rows])) or 1.0
    used = [
        c
        for c, w in zip(ranked, weights[:-1], strict=True)
        if abs(w) * float(np.std(columns[c][0][rows])) > 1e-6 * spread
    ]
    if len(used) < 3:
        return {}  # one or two parts: the checks above name them
    shown = " + ".join(used[:6]) + (f" and {len(used) - 6} more" if len(used) > 6 else "")
    reason = f"a weighted sum of {shown} equals {target} on {share:.0%} of rows"
    return dict.fromkeys(used, reason)


_TIME_UNITS = (("seconds", 1.0), ("minutes", 60.0), ("hours", 3600.0), ("days", 86400.0))


def _time_between(
    data: pd.DataFrame, y: np.ndarray, target: str, tolerance: float
) -> dict[str, str]:
    """Two date-time features the target is the time between (a trip's duration from its
    pickup and dropoff times)."""
    stamps = {}
    for c in data.columns[:LEAKAGE_MAX_COLUMNS]:
        if c != target and _is_datetime(data[c]):
            moments = pd.to_datetime(data[c], errors="coerce")
            if getattr(moments.dt, "tz", None) is not None:
                moments = moments.dt.tz_localize(None)
            seconds = (moments - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=np.float64)
            stamps[str(c)] = seconds
    names = list(stamps)[:COMBINED_CANDIDATES]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for later, earlier in ((b, a), (a, b)):
                gap = stamps[later] - stamps[earlier]
                for unit, size in _TIME_UNITS:
                    share = _matches(gap / size, y, max(tolerance, 0.5))
                    if share is not None and share >= COMBINED_SHARE:
                        reason = (
                            f"{target} is the time from {earlier} to {later} in {unit} "
                            f"on {share:.0%} of rows"
                        )
                        return {earlier: reason, later: reason}
    return {}


def label_spellings(target: pd.Series) -> dict[str, str]:
    """Class labels that are one label written differently (`Yes`, ` yes`, `YES `), each
    mapped to the spelling most rows use: the engine learns them as that one class."""
    if not _is_text(target):
        return {}
    counts = target.dropna().astype(str).value_counts()
    groups: dict[str, list[str]] = {}
    for label in counts.index:  # most rows first
        groups.setdefault(" ".join(label.split()).casefold(), []).append(label)
    return {v: g[0] for g in groups.values() if len(g) > 1 for v in g[1:]}


def label_spelling_note(merged: dict[str, str], counts: pd.Series | None = None) -> str:
    """`' yes' (12), 'YES ' (3) as 'Yes'; 'no' (4) as 'No'` for a form or a guardrail."""
    into: dict[str, list[str]] = {}
    for variant, label in merged.items():
        into.setdefault(label, []).append(variant)

    def shown(v: str) -> str:
        return f"{v!r} ({int(counts[v])})" if counts is not None and v in counts else repr(v)

    return "; ".join(
        f"{', '.join(shown(v) for v in variants)} as {label!r}" for label, variants in into.items()
    )


def column_flags(
    frame: pd.DataFrame, target: str, task: str, features: list[str] | None = None
) -> list[ColumnFlag]:
    """Every column worth leaving out: ID-like, free text, and features that leak the target."""
    keep = [c for c in (features or list(frame.columns)) if c != target and c in frame.columns]
    view = frame[[*keep, target]]
    # Sentences are free text though nearly unique as IDs are (reviews); a passenger's name of
    # four words is an identifier.
    free = free_text_columns(view, target)
    sentences = {c: r for c, r in free.items() if _mean_words(view[c]) >= SENTENCE_WORDS}
    flags = [ColumnFlag(c, "free text", r) for c, r in sentences.items()]
    flags += [
        ColumnFlag(c, "id-like", r)
        for c, r in id_like_columns(view, target).items()
        if c not in sentences
    ]
    seen = {f.column for f in flags}
    flags += [ColumnFlag(c, "free text", r) for c, r in free.items() if c not in seen]
    metric = "R²" if task == "regression" else "AUC"
    alone = one_feature_scores(view, target, task)
    for c, s in sorted(alone.items(), key=lambda kv: -kv[1]):
        if s >= LEAKAGE_SCORE:
            reason = f"alone it predicts {target} with holdout {metric} {s:.3f}"
            flags.append(ColumnFlag(c, "leakage", reason, round(s, 4)))
    leaking = {f.column for f in flags if f.kind == "leakage"}
    if task == "regression":
        found = combined_leaks(view, target)
    else:
        # Of two equal columns the one that says more alone is the leak (the principal repaid,
        # not the loan's amount); a column equal to two others is one for certain.
        found = {}
        pairs = equal_pair_leaks(view, target)
        seen = Counter(c for a, b, _ in pairs for c in (a, b))
        for a, b, reason in pairs:
            key = {c: (seen[c], alone.get(c, CHANCE["classification"])) for c in (a, b)}
            found.setdefault(max((a, b), key=key.__getitem__), reason)
    for c, reason in found.items():
        if c not in leaking:
            flags.append(ColumnFlag(c, "leakage", reason))
    return flags


def relative_leakage(scores: dict[str, float], best: float | None, task: str) -> list[ColumnFlag]:
    """Features whose one-feature score reaches ``RELATIVE_LEAKAGE`` of the best model's.

    Both are measured above chance, (s - 0.5) / (best - 0.5) for AUC and s / best for R², so
    a feature that dominates a weak model is not called a leak; nothing is flagged unless the
    model beats chance and the feature alone scores ``RELATIVE_MIN_SCORE``. Highest share first.
    """
    chance = CHANCE.get(task)
    if chance is None or best is None or not np.isfinite(best) or best <= chance:
        return []
    metric = "R²" if task == "regression" else "AUC"
    flags = []
    for c, s in scores.items():
        if s is None or not np.isfinite(s):
            continue
        share = (s - chance) / (best - chance)
        if share >= RELATIVE_LEAKAGE and s >= RELATIVE_MIN_SCORE[task]:
            if share > 1:
                reason = f"{c} alone scores above the model's {metric} {best:.3f}"
            else:
                reason = f"{c} alone reaches {share * 100:.1f} % of the model's {metric} {best:.3f}"
            if chance:
                reason += f" ({metric} {s:.3f} alone, both counted above chance {chance:g})"
            flags.append(ColumnFlag(str(c), "leakage", reason, round(s, 4), round(share, 4)))
    return sorted(flags, key=lambda f: -(f.share or 0.0))


def features_matching_a_weak_model(
    scores: dict[str, float], best: float | None, task: str
) -> list[tuple[str, float]]:
    """Features that reach ``RELATIVE_LEAKAGE`` of the model's score but are not strong enough
    alone to be called leaks: the model is what is weak. Best first."""
    chance = CHANCE.get(task)
    if chance is None or best is None or not np.isfinite(best) or best <= chance:
        return []
    out = [
        (str(c), float(s))
        for c, s in scores.items()
        if s is not None
        and np.isfinite(s)
        and (s - chance) / (best - chance) >= RELATIVE_LEAKAGE
        and s < RELATIVE_MIN_SCORE[task]
    ]
    return sorted(out, key=lambda cs: -cs[1])


def leakage_note(reasons: list[str]) -> str | None:
    """A warning beside the model's score naming the features that alone almost match it."""
    if not reasons:
        return None
    return (
        "Possible target leakage: "
        + "; ".join(reasons)
        + ". Leave such a feature out (choose the columns of the run) unless it is known "
        "before the outcome."
    )


def suggested_exclusions(flags: list[ColumnFlag]) -> list[str]:
    """The flagged columns, each once, in the order flagged."""
    return list(dict.fromkeys(f.column for f in flags))


def too_good_note(metric: str, value: float | None) -> str | None:
    """A warning for a score real-world data rarely allows, else None."""
    limit = TOO_GOOD.get(metric)
    if value is None or limit is None or not np.isfinite(value) or value < limit:
        return None
    return (
        f"{metric} {value:.4f} looks too good to be true: check the leakage guardrail and "
        "whether a feature is only known after the outcome."
    )
