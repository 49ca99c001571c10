"""A model's input columns, for either backend: from an MLflow `MLmodel` signature or training data.

A feature spec is one dict per input column: name, kind ("numeric", "categorical" or
"datetime"), dtype, example, categories (categoricals, most frequent first) and min/max
(numerics). The Score page builds its form from it; a datetime is sent as ISO 8601 text.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import yaml

NUMERIC = "numeric"
CATEGORICAL = "categorical"
DATETIME = "datetime"
# MLflow column types that are numbers.
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})
MAX_CATEGORIES = 1000


def signature_columns(mlmodel_text: str) -> list[tuple[str, str]]:
    """(name, MLflow type) of each input column in an `MLmodel` file's signature.

    Empty when there is no signature or an input has no name (unnamed tensors).
    """
    try:
        data = yaml.safe_load(mlmodel_text) or {}
        inputs = (data.get("signature") or {}).get("inputs")
        # MLflow writes the schema as a JSON string inside the YAML.
        specs = json.loads(inputs) if isinstance(inputs, str) else inputs
    except (yaml.YAMLError, ValueError, AttributeError):
        return []
    if not isinstance(specs, list) or not specs:
        return []
    columns = []
    for spec in specs:
        if not isinstance(spec, dict) or not spec.get("name"):
            return []
        kind = spec.get("type")
        if kind == "tensor":
            kind = (spec.get("tensor-spec") or {}).get("dtype")
        elif isinstance(kind, dict):
            kind = kind.get("type")  # array, object and map columns nest their type
        columns.append((str(spec["name"]), str(kind)))
    return columns


def column_from_signature(name: str, mlflow_type: str) -> dict[str, Any]:
    """The feature-spec entry of a column known only by its signature type."""
    numeric = mlflow_type in NUMERIC_TYPES
    if mlflow_type == "datetime":
        return {**_no_values(name, DATETIME, mlflow_type), "categories": None}
    return {
        "name": name,
        "kind": NUMERIC if numeric else CATEGORICAL,
        "dtype": mlflow_type,
        "example": None,
        "categories": None if numeric else [],
        "min": None,
        "max": None,
    }


def _no_values(name: str, kind: str, dtype: str) -> dict[str, Any]:
    return {"name": name, "kind": kind, "dtype": dtype, "example": None, "min": None, "max": None}


def _datetime_entry(name: str, column: pd.Series) -> dict[str, Any]:
    """A datetime column: its example as ISO 8601 text (a date alone when no value has a time)."""
    entry = {**_no_values(name, DATETIME, str(column.dtype)), "categories": None}
    present = column.dropna()
    if len(present):
        timed = bool((present != present.dt.normalize()).any())
        first = present.iloc[0]
        entry["example"] = first.isoformat() if timed else first.date().isoformat()
    return entry


def _plain(value: Any) -> Any:
    """Numpy scalars as Python scalars (for JSON and category lookup)."""
    return value.item() if isinstance(value, np.generic) else value


def learn_feature_spec(
    frame: pd.DataFrame, max_categories: int = MAX_CATEGORIES
) -> list[dict[str, Any]]:
    """The feature spec of training features: non-numeric columns are categorical."""
    spec: list[dict[str, Any]] = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            spec.append(_datetime_entry(str(name), column))
            continue
        numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        present = column.dropna()
        entry: dict[str, Any] = {
            "name": str(name),
            "kind": NUMERIC if numeric else CATEGORICAL,
            "dtype": str(column.dtype),
            "example": _plain(present.iloc[0]) if len(present) else None,
        }
        if numeric:
            values = pd.to_numeric(present, errors="coerce").astype("float64")
            entry["categories"] = None
            entry["min"] = float(values.min()) if len(values) else None
            entry["max"] = float(values.max()) if len(values) else None
        else:
            counts = present.value_counts(sort=True)
            entry["categories"] = [_plain(v) for v in counts.index[:max_categories]]
            entry["min"] = entry["max"] = None
        spec.append(entry)
    return spec


def merge_feature_spec(
    columns: list[tuple[str, str]], learnt: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The signature's columns in its order, each as learnt from training data when it was."""
    by_name = {s["name"]: s for s in learnt}
    return [by_name.get(name) or column_from_signature(name, kind) for name, kind in columns]


def schema_table(spec: list[dict[str, Any]]) -> pd.DataFrame:
    """The input schema as the Models page shows it: one text cell per fact, so a column of
    examples mixing numbers, text and dates is one type (Arrow refused it, and logged why)."""
    rows = []
    for col in spec:
        cats = col.get("categories") or []
        known = ", ".join(map(str, cats[:8])) + (f" … ({len(cats):,})" if len(cats) > 8 else "")
        lo, hi = col.get("min"), col.get("max")
        reads = [
            f"dates also as {col['format']}" if col.get("format") else "",
            "decimal comma" if col.get("decimal_comma") else "",
            "missing: " + ", ".join(map(str, col["missing_words"]))
            if col.get("missing_words")
            else "",
            "missing: " + ", ".join(f"{v:g}" for v in col["missing_values"])
            if col.get("missing_values")
            else "",
        ]
        rows.append(
            {
                "name": str(col.get("name")),
                "kind": str(col.get("kind") or ""),
                "dtype": str(col.get("dtype") or ""),
                "example": "" if col.get("example") is None else str(col["example"]),
                "range": f"{lo:g} … {hi:g}" if lo is not None and hi is not None else "",
                "categories": known,
                "reads": "; ".join(r for r in reads if r),
            }
        )
    return pd.DataFrame(
        rows, columns=["name", "kind", "dtype", "example", "range", "categories", "reads"]
    )
