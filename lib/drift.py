"""Model drift, for both backends: the training profile of a model's inputs and predictions, the
population stability index (PSI) of live data against it, and the OK / watch / drift rule.

A `Baseline` fixes every feature's cells once, from the training data: a numeric feature's cells
are the bins between its training deciles plus a missing cell; a categorical feature's are its
training categories plus an unseen and a missing cell; the label's likewise (classes, or deciles
of a numeric target). Live rows are counted into the same cells (`Baseline.count`), so a store
keeps only summed counts per time bin, and PSI is computed from sums, never from raw rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from lib.tabular.columns import ACCOUNTING_NEGATIVE, FORMATTED_NUMBER, NUMBER_DECORATION

PSI_WATCH = 0.1
PSI_DRIFT = 0.25
# Fewer sampled rows than this in a window: too few to call drift either way. With no change
# at all PSI still averages about (cells - 1) / rows: over ten deciles 0.11 at 81 rows (a
# "watch", and a "drift" for some feature of many), 0.045 at 200.
MIN_ROWS = 200
# An empty cell counts as this share in PSI (ln(0) would make any new category infinite).
SHARE_FLOOR = 1e-4
MAX_CATEGORIES = 500
DECILES = tuple(round(q, 1) for q in np.linspace(0.1, 0.9, 9))
MISSING = "(missing)"
UNSEEN = "(unseen)"
NO_DATA = "no data"
STATE_RANK = {NO_DATA: -1, "OK": 0, "watch": 1, "drift": 2}
_FORMATTED = re.compile(FORMATTED_NUMBER)
_DECORATION = re.compile(NUMBER_DECORATION)
_NEGATIVE = re.compile(ACCOUNTING_NEGATIVE)


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = SHARE_FLOOR) -> float:
    """Population stability index of `actual` shares against `expected` shares (same cells)."""
    e = np.clip(np.asarray(expected, dtype=float), floor, None)
    a = np.clip(np.asarray(actual, dtype=float), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_state(value: float | None) -> str:
    """OK below PSI 0.1, watch below 0.25, drift from 0.25; "no data" without a value."""
    if value is None or not math.isfinite(value):
        return NO_DATA
    if value < PSI_WATCH:
        return "OK"
    return "watch" if value < PSI_DRIFT else "drift"


def worst_state(states: Iterable[str]) -> str:
    """The most severe of several states ("no data" when there are none)."""
    return max(states, key=lambda s: STATE_RANK.get(s, -1), default=NO_DATA)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return value != value
    return isinstance(value, str) and value == ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _floats(values: list) -> np.ndarray:
    try:
        return np.array(values, dtype=float)  # None becomes NaN
    except (TypeError, ValueError):
        out = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            try:
                out[i] = float(v) if not _is_missing(v) else np.nan
            except (TypeError, ValueError):
                # "$1,234.50" is the number endpoints read it as; anything else counts as missing
                text = _NEGATIVE.sub(r"-\1", v.strip()) if isinstance(v, str) else ""
                if _FORMATTED.match(text):
                    out[i] = float(_DECORATION.sub("", text).replace("−", "-"))
        return out


def _number(value: float) -> str:
    """A bin edge for people: whole above a thousand (17,680, never 1.768e+04), else four
    significant digits."""
    value = float(value)
    if value.is_integer() or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class FeatureProfile:
    """One feature's (or the label's) cells and their shares in the training data."""

    name: str
    kind: str  # "numeric" or "categorical"
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    shares: tuple[float, ...] = ()
    # Numbers the upload read as missing (-999): a client sending one sends no value.
    blanks: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        return len(self.edges) + 2 if self.kind == "numeric" else len(self.categories) + 2

    @property
    def missing_cell(self) -> int:
        return self.size - 1

    @property
    def unseen_cell(self) -> int | None:
        return self.size - 2 if self.kind == "categorical" else None

    @cached_property
    def _index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.categories)}

    def labels(self) -> list[str]:
        """A readable name per cell: ranges for numbers, categories, then unseen and missing."""
        if self.kind == "categorical":
            return [*self.categories, UNSEEN, MISSING]
        e = self.edges
        if not e:
            return ["all values", MISSING]
        ranges = [f"< {_number(e[0])}"]
        ranges += [f"{_number(lo)} – {_number(hi)}" for lo, hi in zip(e[:-1], e[1:], strict=True)]
        return [*ranges, f"≥ {_number(e[-1])}", MISSING]

    def count(self, values: list) -> np.ndarray:
        """How many of `values` fall in each cell (int64, length `size`)."""
        if self.kind == "numeric":
            arr = _floats(values)
            if self.blanks:
                arr[np.isin(arr, self.blanks)] = np.nan
            cells = np.searchsorted(np.asarray(self.edges, dtype=float), arr, side="right")
            cells[np.isnan(arr)] = self.missing_cell
        else:
            index, unseen, missing = self._index, self.size - 2, self.size - 1
            cells = np.fromiter(
                (missing if _is_missing(v) else index.get(_text(v), unseen) for v in values),
                dtype=np.int64,
                count=len(values),
            )
        return np.bincount(cells, minlength=self.size).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "kind": self.kind,
            "edges": list(self.edges),
            "categories": list(self.categories),
            "shares": list(self.shares),
        }
        if self.blanks:  # only then: the ids of baselines without any stay as they were
            out["blanks"] = list(self.blanks)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureProfile:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            edges=tuple(float(v) for v in data.get("edges", ())),
            categories=tuple(str(v) for v in data.get("categories", ())),
            shares=tuple(float(v) for v in data.get("shares", ())),
            blanks=tuple(float(v) for v in data.get("blanks", ())),
        )


def profile_values(
    name: str, values: pd.Series, kind: str | None = None, blanks: Sequence[float] = ()
) -> FeatureProfile:
    """The cells of one training column and its shares in them (``blanks``: numbers the
    upload read as missing, counted as missing in live traffic too)."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    kind = kind or ("numeric" if numeric else "categorical")
    if kind == "numeric":
        present = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
        present = present[np.isfinite(present)]
        edges = (
            tuple(float(v) for v in np.unique(np.quantile(present, DECILES)))
            if len(present)
            else ()
        )
        profile = FeatureProfile(name, "numeric", edges=edges, blanks=tuple(map(float, blanks)))
        raw = values.tolist()
    else:
        text = values.map(lambda v: None if _is_missing(v) else _text(v))
        counts = text.value_counts(dropna=True)
        categories = tuple(str(c) for c in counts.index[:MAX_CATEGORIES])
        profile = FeatureProfile(name, "categorical", categories=categories)
        raw = text.tolist()
    counted = profile.count(raw)
    total = max(1, int(counted.sum()))
    shares = tuple(float(c) / total for c in counted)
    return replace(profile, shares=shares)


@dataclass(frozen=True)
class Baseline:
    """The training profile a model's live traffic is compared with."""

    features: tuple[FeatureProfile, ...]
    prediction: FeatureProfile | None = None
    source: str = ""  # e.g. "bank v3, target y"
    rows: int = 0

    @cached_property
    def id(self) -> str:
        """A content hash: counts are only ever summed between rows of the same baseline."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:16]

    @cached_property
    def offsets(self) -> list[int]:
        """Where each feature's cells start in the count vector (the prediction's come last)."""
        starts, at = [], 0
        for profile in self.profiles:
            starts.append(at)
            at += profile.size
        return [*starts, at]

    @property
    def profiles(self) -> list[FeatureProfile]:
        return [*self.features, *([self.prediction] if self.prediction is not None else [])]

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def count(self, records: list[dict], predictions: list | None = None) -> np.ndarray:
        """Cell counts of scored records (and their predictions) as one int64 vector."""
        out = np.zeros(self.size, dtype=np.int64)
        for profile, start in zip(self.features, self.offsets, strict=False):
            name = profile.name
            out[start : start + profile.size] = profile.count([r.get(name) for r in records])
        if self.prediction is not None and predictions is not None:
            start = self.offsets[len(self.features)]
            out[start : start + self.prediction.size] = self.prediction.count(list(predictions))
        return out

    def split(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """A count vector cut back into one array per feature (and "__prediction__")."""
        parts = {}
        for i, profile in enumerate(self.features):
            parts[profile.name] = counts[self.offsets[i] : self.offsets[i + 1]]
        if self.prediction is not None:
            parts[PREDICTION] = counts[self.offsets[-2] : self.offsets[-1]]
        return parts

    def to_json(self) -> str:
        return json.dumps(
            {
                "features": [f.to_dict() for f in self.features],
                "prediction": self.prediction.to_dict() if self.prediction else None,
                "source": self.source,
                "rows": self.rows,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Baseline:
        data = json.loads(text)
        return cls(
            features=tuple(FeatureProfile.from_dict(f) for f in data["features"]),
            prediction=FeatureProfile.from_dict(data["prediction"])
            if data.get("prediction")
            else None,
            source=str(data.get("source", "")),
            rows=int(data.get("rows", 0)),
        )


PREDICTION = "__prediction__"


def build_baseline(
    frame: pd.DataFrame,
    target: str | None = None,
    features: Sequence[str] | None = None,
    task: str | None = None,
    source: str = "",
    missing_numbers: Mapping[str, Sequence[float]] | None = None,
) -> Baseline:
    """The training profile of `frame`: every feature (default: all but the target) and the label.

    ``missing_numbers``: column -> numbers its upload read as missing (-999)."""
    names = [c for c in (features or frame.columns) if c in frame.columns and c != target]
    # Datetime features are left out: live dates come after the training ones by nature, so
    # their distribution always "drifts" and would drown the features that can.
    names = [c for c in names if not pd.api.types.is_datetime64_any_dtype(frame[c])]
    blanks = missing_numbers or {}
    profiles = tuple(profile_values(str(c), frame[c], blanks=blanks.get(str(c), ())) for c in names)
    label = None
    if target is not None and target in frame.columns:
        kind = None
        if task is not None:
            kind = "numeric" if task in ("regression", "forecasting") else "categorical"
        label = profile_values(target, frame[target], kind)
    return Baseline(profiles, label, source=source, rows=len(frame))


# --- comparing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's live distribution against training, in the baseline's cells."""

    feature: str
    kind: str
    psi: float | None
    state: str
    labels: tuple[str, ...]
    expected: tuple[float, ...]  # training share per cell
    actual: tuple[float, ...]  # live share per cell
    rows: int
    missing_train: float
    missing_live: float
    unseen_live: float = 0.0  # categorical: share of live values never seen in training

    @property
    def missing_change(self) -> float:
        return self.missing_live - self.missing_train


def compare(profile: FeatureProfile, counts: np.ndarray) -> FeatureDrift:
    """PSI and state of live `counts` (cells of `profile`) against the training shares."""
    counts = np.asarray(counts, dtype=float)
    rows = int(counts.sum())
    expected = np.asarray(profile.shares, dtype=float)
    actual = counts / rows if rows else np.zeros_like(expected)
    value = psi(expected, actual) if rows >= MIN_ROWS and len(expected) == len(actual) else None
    unseen = profile.unseen_cell
    return FeatureDrift(
        feature=profile.name,
        kind=profile.kind,
        psi=value,
        state=drift_state(value),
        labels=tuple(profile.labels()),
        expected=tuple(float(v) for v in expected),
        actual=tuple(float(v) for v in actual),
        rows=rows,
        missing_train=float(expected[profile.missing_cell]) if len(expected) else 0.0,
        missing_live=float(actual[profile.missing_cell]) if rows else 0.0,
        unseen_live=float(actual[unseen]) if unseen is not None and rows else 0.0,
    )


@dataclass(frozen=True, eq=False)
class DriftReport:
    """An endpoint's drift over a window: features ranked by PSI, predictions against the label."""

    endpoint: str
    since: datetime
    until: datetime
    rows: int  # sampled live rows in the window
    baseline_source: str = ""
    features: tuple[FeatureDrift, ...] = ()
    prediction: FeatureDrift | None = None
    # TimeGenerated (bin start), Prediction, Rows, Share: predicted class shares or value bins.
    predictions_over_time: pd.DataFrame = field(default_factory=pd.DataFrame)
    message: str = ""  # why there is nothing to compare, when there is not
    # Every model sampled in the window, the reported one first: (baseline id, its
    # deployments and training data, rows). Two deployments of different versions have two.
    served: tuple[tuple[str, str, int], ...] = ()

    @property
    def state(self) -> str:
        return worst_state(f.state for f in self.features)

    def table(self) -> pd.DataFrame:
        """One row per feature, most drifted first: the Monitoring view's ranking."""
        return pd.DataFrame(
            {
                "Feature": [f.feature for f in self.features],
                "Kind": [f.kind for f in self.features],
                "PSI": [f.psi for f in self.features],
                "State": [f.state for f in self.features],
                "Missing (train)": [100 * f.missing_train for f in self.features],
                "Missing (live)": [100 * f.missing_live for f in self.features],
                "Unseen (live)": [
                    100 * f.unseen_live if f.kind == "categorical" else None for f in self.features
                ],
            }
        )


def rank(drifts: Iterable[FeatureDrift]) -> tuple[FeatureDrift, ...]:
    """Most drifted first (features without a PSI last, then by name)."""
    return tuple(sorted(drifts, key=lambda d: (d.psi is None, -(d.psi or 0.0), d.feature)))


def compare_all(
    baseline: Baseline, counts: np.ndarray
) -> tuple[tuple[FeatureDrift, ...], FeatureDrift | None]:
    """Every feature's drift, ranked, and the prediction's drift against the label distribution."""
    parts = baseline.split(np.asarray(counts))
    features = rank(compare(p, parts[p.name]) for p in baseline.features)
    prediction = (
        compare(baseline.prediction, parts[PREDICTION]) if baseline.prediction is not None else None
    )
    return features, prediction
