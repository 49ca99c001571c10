"""The served model: the scoring path chosen at start-up, and the check that makes it safe.

`prepare_model` serves a registered pyfunc model through its own `fast_predict` (plain records,
no pandas) only when it agrees with the model's `predict` on sample rows, and falls back to
`predict` on pandas otherwise; `prepare_compiled` serves a compiled model (`lib.local.fastpath`)
that was verified when it was compiled.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib.local.scoring.payloads import Column, InputError, describe, validate_records

log = logging.getLogger("opsdeck.scoring")

_MLFLOW_KINDS = {
    "double": "number",
    "float": "number",
    "long": "integer",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
}


def _spec_kind(spec: dict) -> str:
    dtype = str(spec.get("dtype") or "").lower()
    if dtype.startswith("bool"):
        return "boolean"
    if spec.get("kind") == "numeric" or dtype.startswith(("int", "uint", "float")):
        return "integer" if dtype.startswith(("int", "uint")) else "number"
    return "string"


def _date_format(spec: dict, kind: str) -> str | None:
    """A text column's date format when the engine's feature spec says it is a date-time
    feature ("" for ISO 8601 only), else None."""
    if kind != "string" or spec.get("kind") != "datetime":
        return None
    return str(spec.get("format") or "")


def _text_reading(spec: dict) -> dict[str, Any]:
    """How the upload read a column's text, for clients' text: decimal comma, missing words."""
    return {
        "decimal_comma": bool(spec.get("decimal_comma")),
        "missing_words": frozenset(
            str(w).strip().casefold() for w in spec.get("missing_words") or ()
        ),
    }


def columns_from_model(signature_inputs: Any, feature_spec: list[dict] | None) -> list[Column]:
    """Input columns from the model signature, enriched by the engine's `feature_spec`."""
    by_name = {s["name"]: s for s in feature_spec or []}
    cols: list[Column] = []
    if signature_inputs is not None and getattr(signature_inputs, "inputs", None):
        for spec in signature_inputs.inputs:
            if spec.name is None:
                raise ValueError("the model signature has unnamed (tensor) inputs; not servable")
            type_name = getattr(spec.type, "name", str(spec.type))
            kind = _MLFLOW_KINDS.get(type_name)
            if kind is None:
                raise ValueError(f"column {spec.name!r} has unsupported type {type_name!r}")
            fs = by_name.get(spec.name, {})
            cols.append(
                Column(
                    name=spec.name,
                    kind=kind,
                    required=bool(getattr(spec, "required", True)),
                    categories=tuple(fs["categories"]) if fs.get("categories") else None,
                    example=fs.get("example"),
                    minimum=fs.get("min"),
                    maximum=fs.get("max"),
                    dtype=type_name,
                    date_format=_date_format(fs, kind),
                    **_text_reading(fs),
                )
            )
    elif feature_spec:
        for fs in feature_spec:
            cols.append(
                Column(
                    name=fs["name"],
                    kind=_spec_kind(fs),
                    categories=tuple(fs["categories"]) if fs.get("categories") else None,
                    example=fs.get("example"),
                    minimum=fs.get("min"),
                    maximum=fs.get("max"),
                    dtype=str(fs.get("dtype") or ""),
                    date_format=_date_format(fs, _spec_kind(fs)),
                    **_text_reading(fs),
                )
            )
    if not cols:
        raise ValueError("the model has neither a signature nor a feature_spec: no input schema")
    return cols


class ModelInputError(InputError):
    """The model itself rejected input that passed validation (e.g. MLflow schema enforcement)."""


def as_list(preds: Any) -> list:
    """Predictions (array, Series, one-column DataFrame, list) as a plain list."""
    if hasattr(preds, "columns"):  # DataFrame
        if len(preds.columns) == 1:
            return preds.iloc[:, 0].tolist()
        return preds.to_dict("records")
    if hasattr(preds, "tolist"):
        return preds.tolist()
    return list(preds)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        x, y = _plain(x), _plain(y)
        if isinstance(x, float) or isinstance(y, float):
            if not isinstance(x, int | float) or not isinstance(y, int | float):
                return False
            if not (math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) or (x != x and y != y)):
                return False
        elif isinstance(x, list) or isinstance(y, list):
            if not isinstance(x, list) or not isinstance(y, list) or not _same(x, y):
                return False
        elif x != y:
            return False
    return True


def sample_records(columns: list[Column], n: int = 24, seed: int = 0) -> list[dict]:
    """Deterministic synthetic rows over the columns' ranges/categories, incl. an unseen category."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rec: dict[str, Any] = {}
        for col in columns:
            if col.kind in ("number", "integer"):
                lo = col.minimum if col.minimum is not None else 0.0
                hi = col.maximum if col.maximum is not None else (lo + 100.0)
                v = rng.uniform(float(lo), float(hi))
                rec[col.name] = int(round(v)) if col.kind == "integer" else round(v, 4)
            elif col.kind == "boolean":
                rec[col.name] = bool(i % 2)
            else:
                cats = list(col.categories or ([col.example] if col.example is not None else ["a"]))
                rec[col.name] = cats[i % len(cats)] if i < n - 1 else "__unseen_category__"
        rows.append(rec)
    return rows


@dataclass
class ServedModel:
    """The loaded model with the path chosen at start-up ("fast" or "pyfunc")."""

    pyfunc: Any
    columns: list[Column]
    path: str
    check_message: str
    classes: list | None = None
    task: str | None = None
    example_records: list[dict] = field(default_factory=list)
    # Columns of the training table the model does not read: accepted and dropped.
    ignored: frozenset[str] = frozenset()
    _fast_predict: Callable[[list[dict]], list] | None = None
    _fast_proba: Callable[[list[dict]], list] | None = None
    _pandas_proba: Callable[[Any], Any] | None = None

    @property
    def has_proba(self) -> bool:
        return self._fast_proba is not None or self._pandas_proba is not None

    @property
    def allows_null_integers(self) -> bool:
        # MLflow's schema enforcement refuses NaN in integer columns; the fast paths take None.
        return self.path in ("fast", "compiled")

    def frame(self, records: list[dict]) -> Any:
        """Records as a DataFrame typed like the signature (fallback path only)."""
        import pandas as pd

        df = pd.DataFrame.from_records(records, columns=[c.name for c in self.columns])
        for col in self.columns:
            if col.kind == "number":
                df[col.name] = df[col.name].astype("float32" if col.dtype == "float" else "float64")
            elif col.kind == "integer" and not df[col.name].isna().any():
                df[col.name] = df[col.name].astype("int32" if col.dtype == "integer" else "int64")
        return df

    def _pyfunc_predict(self, records: list[dict]) -> list:
        try:
            return as_list(self.pyfunc.predict(self.frame(records)))
        except Exception as exc:
            if type(exc).__name__ == "MlflowException":
                raise ModelInputError(f"The model rejected the input: {exc}") from None
            raise

    def predict(self, records: list[dict]) -> list:
        if self._fast_predict is not None:
            return self._fast_predict(records)
        return self._pyfunc_predict(records)

    def predict_proba(self, records: list[dict]) -> list:
        if self._fast_proba is not None:
            return self._fast_proba(records)
        if self._pandas_proba is None:
            raise InputError("This model does not provide probabilities (predict_proba)")
        return as_list(self._pandas_proba(self.frame(records)))


def _pandas_proba_fn(raw: Any) -> Callable[[Any], Any] | None:
    fn = getattr(raw, "predict_proba", None)
    if not callable(fn):
        return None
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if len(params) == 2:  # PythonModel style: predict_proba(context, model_input)
        return lambda df: fn(None, df)
    return fn


def _input_example_records(pyfunc: Any) -> list[dict]:
    example = getattr(pyfunc, "input_example", None)
    if example is None:
        return []
    if hasattr(example, "to_dict"):
        return [{k: _plain(v) for k, v in r.items()} for r in example.to_dict("records")]
    if isinstance(example, dict) and all(isinstance(v, list) for v in example.values()):
        keys = list(example)
        return [dict(zip(keys, vals, strict=True)) for vals in zip(*example.values(), strict=True)]
    if isinstance(example, list) and all(isinstance(r, dict) for r in example):
        return example
    return []


def prepare_compiled(compiled: Any, report: dict | None = None) -> ServedModel:
    """Serve a numpy-only compiled model (lib.local.fastpath), verified when it was compiled."""
    columns = columns_from_model(None, compiled.feature_spec)
    classes = [_plain(c) for c in compiled.classes_] if compiled.classes_ else None
    checked = (report or {}).get("rows")
    served = ServedModel(
        pyfunc=None,
        columns=columns,
        path="compiled",
        check_message=(
            f"compiled fast path, identical to the registered model's predict on {checked} rows"
            if checked
            else "compiled fast path"
        ),
        classes=classes,
        task=compiled.task,
        ignored=frozenset(getattr(compiled, "ignored_inputs", ())),
        _fast_predict=compiled.fast_predict,
        _fast_proba=compiled.fast_predict_proba if compiled.task == "classification" else None,
    )
    served.example_records = sample_records(columns, 2)[:1]
    return served


def prepare_model(pyfunc: Any, check_records: list[dict] | None = None) -> ServedModel:
    """Choose the serving path: the model's fast path if it agrees with `pyfunc.predict`."""
    try:
        raw = pyfunc.unwrap_python_model()
    except Exception:
        try:
            raw = pyfunc.get_raw_model()
        except Exception:
            raw = None
    feature_spec = getattr(raw, "feature_spec", None)
    columns = columns_from_model(pyfunc.metadata.get_input_schema(), feature_spec)
    classes = getattr(raw, "classes_", None)
    classes = [_plain(c) for c in classes] if classes is not None else None
    served = ServedModel(
        pyfunc=pyfunc,
        columns=columns,
        path="pyfunc",
        check_message="",
        classes=classes,
        task=getattr(raw, "task", None),
        ignored=frozenset(getattr(raw, "ignored_inputs", ())),
        _pandas_proba=_pandas_proba_fn(raw) if raw is not None else None,
    )
    examples = _input_example_records(pyfunc)
    served.example_records = [dict(r) for r in examples[:3]] or sample_records(columns, 2)
    fast = getattr(raw, "fast_predict", None)
    if not callable(fast):
        served.check_message = "no fast path on this model: serving pyfunc.predict on pandas"
        return served

    candidates = [dict(r) for r in (check_records or [])] + examples + sample_records(columns)
    usable, expected = [], []
    for rec in candidates:
        try:
            validate_records([rec], columns, 1)
            usable.append(rec)
        except InputError:
            continue
    try:
        expected = served._pyfunc_predict([dict(r) for r in usable]) if usable else []
    except Exception:  # some row is refused by the reference predict: keep the rows it accepts
        kept = []
        for rec in usable:
            try:
                expected.extend(served._pyfunc_predict([dict(rec)]))
                kept.append(rec)
            except Exception:
                continue
        usable = kept
    if not usable:
        served.check_message = "fast path not checked (no sample row accepted): serving pyfunc"
        log.warning(served.check_message)
        return served
    try:
        got = as_list(fast([dict(r) for r in usable]))
    except Exception as exc:
        served.check_message = f"fast path failed on sample rows ({exc!r}): serving pyfunc"
        log.warning(served.check_message)
        return served
    if not _same(got, expected):
        bad = next(
            i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if not _same([a], [b])
        )
        served.check_message = (
            f"fast path disagrees with pyfunc.predict on sample row {bad} "
            f"({describe(got[bad] if bad < len(got) else None)} vs {describe(expected[bad])}): "
            "serving pyfunc"
        )
        log.warning(served.check_message)
        return served

    fast_proba = getattr(raw, "fast_predict_proba", None)
    proba_note = ""
    if callable(fast_proba):
        try:
            fp = as_list(fast_proba([dict(r) for r in usable]))
            ref = served._pandas_proba
            ok = len(fp) == len(usable)
            if ok and ref is not None:
                ok = _same(fp, as_list(ref(served.frame(usable))))
            elif ok and classes:
                ok = all(
                    classes[max(range(len(p)), key=p.__getitem__)] == g
                    for p, g in zip(fp, got, strict=True)
                )
        except Exception:
            ok = False
        if ok:
            served._fast_proba = fast_proba
        else:
            proba_note = "; fast_predict_proba disagrees, probabilities via pandas"
            log.warning("fast_predict_proba disagrees with the reference: not used")
    served._fast_predict = fast
    served.path = "fast"
    served.check_message = f"fast path agrees with pyfunc.predict on {len(usable)} rows{proba_note}"
    return served
