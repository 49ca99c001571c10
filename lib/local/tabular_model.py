"""The served tabular model: own preprocessing plus native estimators, as an MLflow pyfunc.

Two ways in, one computation: ``predict`` (pandas, the reference behaviour) and
``fast_predict`` (plain Python records, no pandas) both encode to the same float64
matrix with the one record encoder (``lib.local.fastpath.encoder``) and call the same
native scoring code, so their results are identical.

Saved models are pickled with a reference to this module; ``write_model_code`` ships it and
the encoder inside every saved model, so it imports nothing else from ``lib``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from lib.local.fastpath.encoder import (
    CATEGORICAL,
    DATE_PARTS,
    DATETIME,
    NUMERIC,
    TIME_PARTS,
    RecordEncoder,
    category_code,
    date_parts,
    to_datetime,
    to_float,
)

__all__ = [
    "CATEGORICAL",
    "DATETIME",
    "NUMERIC",
    "Encoder",
    "Member",
    "TabularModel",
    "write_model_code",
]

# What a saved model imports when it is unpickled, relative to the repository root.
MODEL_CODE = ("lib/local/tabular_model.py", "lib/local/fastpath/encoder.py")


def write_model_code(target: Path) -> Path:
    """Copy the modules a saved model needs under ``target/lib``; return that for ``code_paths``.

    NB: deliberately without ``__init__.py`` files, so the copy is only a namespace-package
    fallback: when the repository's regular ``lib`` package is importable it always wins
    and the saved copy never shadows it.
    """
    root = Path(__file__).resolve().parents[2]
    for rel in MODEL_CODE:
        dest = Path(target) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest)
    return Path(target) / "lib"


@dataclass
class Member:
    """One fitted native estimator of the model and its weight in the probability average."""

    kind: str  # "lgbm" | "xgboost" | "sklearn"
    estimator: Any  # lightgbm.Booster, xgboost.Booster or a fitted sklearn estimator
    weight: float = 1.0
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """Numpy scalars to Python scalars (for JSON, MLflow params and category lookup)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


class Encoder(RecordEncoder):
    """The record encoder plus what needs pandas: learning the spec, encoding whole frames."""

    # NB: registered models pickle this object's __dict__ (feature_spec, columns, kinds,
    # _lookups, categorical_indices; _dates and _blanks when they have them): keep those names
    # so they still unpickle.
    def __init__(self, feature_spec: list[dict[str, Any]]):
        super().__init__(feature_spec)
        self.kinds = [f["kind"] for f in feature_spec]
        # Positions in the encoded matrix (a datetime feature before one shifts them).
        self.categorical_indices = [
            self.offsets[i] for i, k in enumerate(self.kinds) if k == CATEGORICAL
        ]

    @staticmethod
    def from_frame(
        df: pd.DataFrame,
        *,
        max_categories: int = 1000,
        categorical: Sequence[str] = (),
        datetime_formats: Mapping[str, str] | None = None,
        missing_numbers: Mapping[str, Sequence[float]] | None = None,
        decimal_comma: Sequence[str] | None = None,
        missing_words: Mapping[str, Sequence[str]] | None = None,
    ) -> Encoder:
        """Learn the feature spec from training features (categories ordered by frequency).

        ``datetime_formats`` names the strptime format a datetime column was read with, so
        records may send that text as well as ISO 8601. ``missing_numbers`` names the numbers
        a column's upload read as missing (-999), which records then send for "no value";
        ``decimal_comma`` the number columns uploaded with a decimal comma and ``missing_words``
        the words read as missing in a column ("Refused"), for endpoints to read clients' text
        as the upload read it.
        """
        spec: list[dict[str, Any]] = []
        for name in df.columns:
            col = df[name]
            words = list((missing_words or {}).get(str(name)) or [])
            if name not in categorical and pd.api.types.is_datetime64_any_dtype(col):
                spec.append(_datetime_entry(col, (datetime_formats or {}).get(str(name))))
                if words:
                    spec[-1]["missing_words"] = words
                continue
            is_cat = name in categorical or not (
                pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
            )
            non_null = col.dropna()
            example = _plain(non_null.iloc[0]) if len(non_null) else None
            entry: dict[str, Any] = {
                "name": str(name),
                "kind": CATEGORICAL if is_cat else NUMERIC,
                "dtype": str(col.dtype),
                "example": example,
            }
            if is_cat:
                counts = non_null.value_counts(sort=True)
                entry["categories"] = [_plain(v) for v in counts.index[:max_categories]]
                entry["min"] = entry["max"] = None
            else:
                numeric = pd.to_numeric(non_null, errors="coerce").astype("float64")
                entry["categories"] = None
                entry["min"] = float(numeric.min()) if len(numeric) else None
                entry["max"] = float(numeric.max()) if len(numeric) else None
                blanks = (missing_numbers or {}).get(str(name))
                if blanks:
                    entry["missing_values"] = [float(v) for v in blanks]
                if str(name) in (decimal_comma or ()):
                    entry["decimal_comma"] = True
                if words:
                    entry["missing_words"] = words
            spec.append(entry)
        return Encoder(spec)

    def encode_frame(self, df: pd.DataFrame) -> np.ndarray:
        """Vectorised encoding of a DataFrame (missing columns become missing values)."""
        out = np.full((len(df), self.width), np.nan, dtype=np.float64)
        offsets = self.offsets
        for i, name in enumerate(self.columns):
            if name not in df.columns:
                continue
            col = df[name]
            lookup = self._lookups[i]
            dates = None if self._dates is None else self._dates[i]
            at = offsets[i]
            if dates is not None:
                # Value by value through the record rules: the same floats as ``encode``.
                parts, fmt = dates
                if len(df):
                    out[:, at : at + len(parts)] = [date_parts(v, parts, fmt) for v in col.tolist()]
            elif lookup is None:
                if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                    out[:, at] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
                else:
                    out[:, at] = [to_float(v) for v in col.tolist()]
            else:
                out[:, at] = [category_code(lookup, v) for v in col.tolist()]
        return self.blank_out(out)

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encoding of plain dict records with no pandas on the path."""
        return self.encode(records)


def _datetime_entry(col: pd.Series, fmt: str | None) -> dict[str, Any]:
    """The spec of a datetime column: its parts, and hour only if any value has a time of day."""
    stamps = [d for d in (to_datetime(v) for v in col.dropna().tolist()) if d is not None]
    timed = any(d.hour or d.minute or d.second or d.microsecond for d in stamps)
    first = stamps[0] if stamps else None
    example = None if first is None else (first.isoformat() if timed else first.date().isoformat())
    return {
        "name": str(col.name),
        "kind": DATETIME,
        "dtype": str(col.dtype),
        "example": example,
        "categories": None,
        "min": None,
        "max": None,
        "parts": [*DATE_PARTS, *TIME_PARTS] if timed else list(DATE_PARTS),
        "format": fmt,
    }


def member_scores(member: Member, X: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    """Class probabilities (n x k) for classification, predictions (n,) for regression."""
    single = X.shape[0] == 1
    est = member.estimator
    if member.kind == "lgbm":
        raw = est.predict(X, num_threads=1 if single else 0)
    elif member.kind == "xgboost":
        raw = est.inplace_predict(X)
    elif task == "classification":
        return np.asarray(est.predict_proba(X), dtype=np.float64)
    else:
        return np.asarray(est.predict(X), dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    if task != "classification":
        return raw
    if raw.ndim == 1:
        return np.column_stack([1.0 - raw, raw])
    return raw.reshape(X.shape[0], n_classes)


class TabularModel(mlflow.pyfunc.PythonModel):
    """Encoder + weighted native estimators; labels in the original label space."""

    # Columns of the training table the model was not trained on (ID-like, constant, not
    # chosen): a client sending a whole row of that table is served, those values unread.
    # A class default, so models saved before it load with none.
    ignored_inputs: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        task: str,
        encoder: Encoder,
        members: list[Member],
        classes: list[Any] | None = None,
        threshold: float | None = None,
        positive_label: Any = None,
        ignored_inputs: Sequence[str] = (),
    ):
        if ignored_inputs:
            self.ignored_inputs = tuple(str(c) for c in ignored_inputs)
        self.task = task
        self.encoder = encoder
        self.members = members
        self.classes_ = list(classes) if classes is not None else []
        self.threshold = threshold
        self.positive_label = positive_label
        total = sum(m.weight for m in members)
        self._weights = [m.weight / total for m in members]
        self._prepare()

    def _prepare(self) -> None:
        # Online scoring is one row at a time: a thread pool only waits for busy cores.
        for m in self.members:
            if m.kind == "xgboost":
                m.estimator.set_param({"nthread": 1})
            elif m.kind == "sklearn" and hasattr(m.estimator, "n_jobs"):
                m.estimator.n_jobs = 1

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._prepare()

    @property
    def feature_spec(self) -> list[dict[str, Any]]:
        return self.encoder.feature_spec

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded matrix's columns, as the estimators see them."""
        return list(self.encoder.encoded_columns)

    @property
    def input_names(self) -> list[str]:
        """The record fields the model reads (one per input column)."""
        return list(self.encoder.columns)

    # -- core computation, shared by every entry point ------------------------------------
    def _scores(self, X: np.ndarray) -> np.ndarray:
        n_classes = len(self.classes_)
        out = None
        for w, m in zip(self._weights, self.members, strict=True):
            s = member_scores(m, X, self.task, n_classes)
            out = s * w if out is None else out + s * w
        return out

    def _labels(self, proba: np.ndarray) -> list[Any]:
        if len(self.classes_) == 2 and self.threshold is not None:
            idx = (proba[:, 1] >= self.threshold).astype(int)
        else:
            idx = proba.argmax(axis=1)
        return [self.classes_[i] for i in idx]

    def encoded_scores(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (classification) or predictions (regression) for an encoded matrix."""
        return self._scores(X)

    # -- pandas entry points (reference behaviour) -----------------------------------------
    def predict_proba_frame(self, df: pd.DataFrame) -> np.ndarray:
        """Class probabilities (columns in ``classes_`` order) for a DataFrame."""
        if self.task != "classification":
            raise ValueError("predict_proba is only defined for classification models")
        return self._scores(self.encoder.encode_frame(df))

    def predict_proba(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> np.ndarray:
        """PythonModel-style twin of ``predict_proba_frame``."""
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.predict_proba_frame(model_input)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> Any:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        X = self.encoder.encode_frame(model_input)
        scores = self._scores(X)
        if self.task == "classification":
            return np.array(self._labels(scores), dtype=object)
        return scores

    # -- fast path: plain Python records in, plain Python lists out ------------------------
    def fast_predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        scores = self._scores(self.encoder.encode_records(records))
        if self.task == "classification":
            return self._labels(scores)
        return scores.tolist()

    def fast_predict_proba(self, records: Sequence[Mapping[str, Any]]) -> list[list[float]]:
        if self.task != "classification":
            raise ValueError("predict_proba is only defined for classification models")
        return self._scores(self.encoder.encode_records(records)).tolist()
