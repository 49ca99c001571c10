"""The local scoring server: an ASGI app factory over an already-loaded MLflow pyfunc model.

Routes follow Azure's inference server: `GET /` (liveness, `Healthy`), `POST /score`,
`GET /swagger.json` (`?version=2` Swagger 2.0, default; `?version=3` OpenAPI 3.0.3) and
`GET /docs` (a readable HTML rendering of the spec, upgraded to Swagger UI when its CDN is
reachable).

Request shapes, each answered in its own shape:

- `{"data": [{record}, ...]}` -> `{"result": [...]}`
- `{"Inputs": {"data": [...]}, "GlobalParameters": {"method": "predict"}}` -> `{"Results": [...]}`
- `{"input_data": {"columns": [...], "index": [...], "data": [[...]]}}` -> `[...]`

Probabilities: `GlobalParameters.method = "predict_proba"` for the `Inputs` shape, a top-level
`"method": "predict_proba"` for the `data` shape, `"params": {"method": "predict_proba"}` for the
`input_data` shape, or `?method=predict_proba` on the URL for any shape. They come back as one
list per row in the order given by the `x-ms-classes` response header (a JSON list).

The hot path is plain Python over the parsed JSON: no pandas and no per-request schema objects.
Pandas is used only when the model has no verified fast path (see `prepare_model`).
"""

from __future__ import annotations

import asyncio
import hmac
import html
import inspect
import json
import logging
import math
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from lib.local.telemetry import RequestRecord

log = logging.getLogger("opsdeck.scoring")

DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
METHODS = ("predict", "predict_proba")
# Larger batches are predicted on a worker thread so health probes stay responsive.
INLINE_ROWS = 256
SWAGGER_UI_CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"


class RequestSink(Protocol):
    def record_request(self, record: RequestRecord) -> None: ...


@dataclass(frozen=True)
class ScoringSettings:
    """Everything the app needs besides the model; `keys_file=None` disables auth."""

    endpoint: str = "local"
    model_version: str = ""
    keys_file: Path | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    telemetry: RequestSink | None = None
    check_records: list[dict] | None = None
    # Azure's inference server leaves liveness probes out of AppRequests; so do we by default.
    record_health_probes: bool = False
    title: str = ""


class InputError(Exception):
    """A client error: answered with `status` and `{"message": str(self)}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    """One input column: kind is "number", "integer", "string" or "boolean"."""

    name: str
    kind: str
    required: bool = True
    nullable: bool = True
    categories: tuple | None = None
    example: Any = None
    minimum: float | None = None
    maximum: float | None = None
    dtype: str = ""


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
                )
            )
    if not cols:
        raise ValueError("the model has neither a signature nor a feature_spec: no input schema")
    return cols


# ----------------------------------------------------------------------------- payloads


@dataclass
class ParsedRequest:
    shape: str  # "data", "inputs" or "input_data"
    records: list[dict]
    method: str = "predict"


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Parse a request body; anything that is not strict JSON is an `InputError`."""
    if not body.strip():
        raise InputError("Request body is empty; expected a JSON object")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise InputError("Request body is nested too deeply") from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"Request body is not valid JSON: {exc}") from None


def _check_method(value: Any, where: str) -> str:
    if value not in METHODS:
        raise InputError(f"{where} must be 'predict' or 'predict_proba', got {_describe(value)}")
    return value


def _check_keys(obj: dict, allowed: tuple[str, ...], where: str) -> None:
    extra = [k for k in obj if k not in allowed]
    if extra:
        raise InputError(
            f"Unknown field {where}{extra[0]!r}; allowed here: {', '.join(repr(a) for a in allowed)}"
        )


def _records_list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise InputError(f"'{where}' must be a list of records, got {_json_type(value)}")
    return value


def _split_to_records(split: Any) -> list:
    if isinstance(split, list):  # records orientation
        return split
    if not isinstance(split, dict):
        raise InputError(f"'input_data' must be an object, got {_json_type(split)}")
    _check_keys(split, ("columns", "index", "data"), "input_data.")
    columns, rows = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InputError("'input_data.columns' must be a list of column names")
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise InputError(f"'input_data.columns' names column {dup!r} twice")
    if not isinstance(rows, list):
        raise InputError(f"'input_data.data' must be a list of rows, got {_json_type(rows)}")
    index = split.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
        raise InputError("'input_data.index' must be a list with one entry per row of 'data'")
    n = len(columns)
    records = []
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InputError(
                f"'input_data.data[{i}]' must be a list of values, got {_json_type(row)}"
            )
        if len(row) != n:
            raise InputError(f"'input_data.data[{i}]' has {len(row)} values; 'columns' names {n}")
        records.append(dict(zip(columns, row, strict=True)))
    return records


def parse_payload(payload: Any, query_method: str | None = None) -> ParsedRequest:
    """Recognise one of the three request shapes; return its records and the method asked for."""
    if query_method is not None:
        _check_method(query_method, "Query parameter 'method'")
    if not isinstance(payload, dict):
        raise InputError(
            f"Request body must be a JSON object with 'data', 'Inputs' or 'input_data', "
            f"got {_json_type(payload)}"
        )
    method = None
    if "Inputs" in payload:
        _check_keys(payload, ("Inputs", "GlobalParameters"), "")
        inputs = payload["Inputs"]
        if not isinstance(inputs, dict):
            raise InputError(f"'Inputs' must be an object, got {_json_type(inputs)}")
        _check_keys(inputs, ("data",), "Inputs.")
        if "data" not in inputs:
            raise InputError("'Inputs.data' is missing")
        records = _records_list(inputs["data"], "Inputs.data")
        params = payload.get("GlobalParameters")
        if params is not None:
            if not isinstance(params, dict):
                raise InputError(f"'GlobalParameters' must be an object, got {_json_type(params)}")
            _check_keys(params, ("method",), "GlobalParameters.")
            if "method" in params:
                method = _check_method(params["method"], "'GlobalParameters.method'")
        shape = "inputs"
    elif "data" in payload:
        _check_keys(payload, ("data", "method"), "")
        records = _records_list(payload["data"], "data")
        if "method" in payload:
            method = _check_method(payload["method"], "'method'")
        shape = "data"
    elif "input_data" in payload:
        _check_keys(payload, ("input_data", "params"), "")
        records = _split_to_records(payload["input_data"])
        params = payload.get("params")
        if params is not None:
            if not isinstance(params, dict):
                raise InputError(f"'params' must be an object, got {_json_type(params)}")
            _check_keys(params, ("method",), "params.")
            if "method" in params:
                method = _check_method(params["method"], "'params.method'")
        shape = "input_data"
    else:
        keys = ", ".join(repr(k) for k in list(payload)[:5]) or "none"
        raise InputError(
            f"Request body must have one of the fields 'data', 'Inputs' or 'input_data' (got {keys})"
        )
    if method is not None and query_method is not None and method != query_method:
        raise InputError(f"The body asks for {method!r} but the query string for {query_method!r}")
    return ParsedRequest(shape, records, method or query_method or "predict")


def _coerce_number(value: str) -> float | int | None:
    text = value.strip()
    try:
        number = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number


def validate_records(
    records: list, columns: list[Column], max_rows: int, allow_null_integers: bool = True
) -> None:
    """Check records against the columns, in place: numeric strings become numbers."""
    n = len(records)
    if n == 0:
        raise InputError("No rows to score: send at least one record")
    if n > max_rows:
        raise InputError(f"Too many rows: {n} (the limit is {max_rows} per request)", 413)
    names = frozenset(c.name for c in columns)
    required = frozenset(c.name for c in columns if c.required)
    all_required = required == names
    for i, rec in enumerate(records):
        if type(rec) is not dict:
            raise InputError(f"Row {i}: expected a JSON object (record), got {_json_type(rec)}")
        if not (all_required and rec.keys() == names):
            unknown = [k for k in rec if k not in names]
            if unknown:
                raise InputError(f"Row {i}: unknown column {unknown[0]!r}")
            missing = [c for c in columns if c.required and c.name not in rec]
            if missing:
                raise InputError(f"Row {i}: missing column {missing[0].name!r}")
        for col in columns:
            name = col.name
            if name not in rec:
                rec[name] = None
                continue
            v = rec[name]
            t = type(v)
            if v is None:
                if col.kind == "integer" and not allow_null_integers:
                    raise InputError(
                        f"Row {i}, column {name!r}: this model's signature types it as an "
                        f"integer, which cannot be null"
                    )
                continue
            kind = col.kind
            if kind == "number":
                if t is float or t is int:
                    if t is int and abs(v) > 1e308:
                        raise InputError(f"Row {i}, column {name!r}: number out of range")
                    continue
                if t is str:
                    num = _coerce_number(v)
                    if num is not None:
                        rec[name] = num
                        continue
                raise InputError(f"Row {i}, column {name!r}: expected a number, got {_describe(v)}")
            if kind == "string":
                if t is str:
                    continue
                raise InputError(f"Row {i}, column {name!r}: expected a string, got {_describe(v)}")
            if kind == "integer":
                if t is int:
                    continue
                num = _coerce_number(v) if t is str else v if t is float else None
                if num is not None and (type(num) is int or num.is_integer()):
                    rec[name] = int(num)
                    continue
                raise InputError(
                    f"Row {i}, column {name!r}: expected an integer, got {_describe(v)}"
                )
            if t is not bool:  # boolean
                raise InputError(
                    f"Row {i}, column {name!r}: expected true or false, got {_describe(v)}"
                )


def render_response(shape: str, values: list) -> Any:
    """Wrap predictions in the response shape that matches the request shape."""
    if shape == "data":
        return {"result": values}
    if shape == "inputs":
        return {"Results": values}
    return values


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=_json_default).encode()


# ----------------------------------------------------------------------------- model


class ModelInputError(InputError):
    """The model itself rejected input that passed validation (e.g. MLflow schema enforcement)."""


def _to_list(preds: Any) -> list:
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
            return _to_list(self.pyfunc.predict(self.frame(records)))
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
        return _to_list(self._pandas_proba(self.frame(records)))


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
        got = _to_list(fast([dict(r) for r in usable]))
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
            f"({_describe(got[bad] if bad < len(got) else None)} vs {_describe(expected[bad])}): "
            "serving pyfunc"
        )
        log.warning(served.check_message)
        return served

    fast_proba = getattr(raw, "fast_predict_proba", None)
    proba_note = ""
    if callable(fast_proba):
        try:
            fp = _to_list(fast_proba([dict(r) for r in usable]))
            ref = served._pandas_proba
            ok = len(fp) == len(usable)
            if ok and ref is not None:
                ok = _same(fp, _to_list(ref(served.frame(usable))))
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


# ----------------------------------------------------------------------------- keys


def write_keys_file(
    path: Path, primary: str | None = None, secondary: str | None = None
) -> tuple[str, str]:
    """Write (or regenerate) the two endpoint keys atomically with mode 600; return them."""
    primary = primary or secrets.token_urlsafe(32)
    secondary = secondary or secrets.token_urlsafe(32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"primary_key": primary, "secondary_key": secondary}, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return primary, secondary


def read_keys_file(path: Path) -> tuple[str, str]:
    """Read `{"primary_key": ..., "secondary_key": ...}` (also accepts `primary`/`secondary`)."""
    data = json.loads(Path(path).read_text())
    primary = data.get("primary_key", data.get("primary")) or ""
    secondary = data.get("secondary_key", data.get("secondary")) or ""
    if not isinstance(primary, str) or not isinstance(secondary, str) or not (primary or secondary):
        raise ValueError(f"keys file {path} holds no usable keys")
    return primary, secondary


class KeyStore:
    """The endpoint's keys, re-read whenever the keys file changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._keys: tuple[bytes, ...] = ()
        self._refresh(initial=True)

    def _refresh(self, initial: bool = False) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            if initial:
                raise
            return  # keep the last good keys while the file is being replaced
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        if stamp == self._stamp:
            return
        try:
            keys = read_keys_file(self.path)
        except (OSError, ValueError) as exc:
            if initial:
                raise
            log.warning(
                "keys file %s unreadable (%s); keeping the previous keys",
                self.path,
                type(exc).__name__,
            )
            return
        self._keys = tuple(k.encode() for k in keys if k)
        self._stamp = stamp
        if not initial:
            log.info("endpoint keys reloaded from %s", self.path)

    def check(self, authorization: bytes | None) -> bool:
        """True when the header is `Bearer <one of the keys>` (constant-time comparison)."""
        self._refresh()
        if not authorization or authorization[:7].lower() != b"bearer ":
            return False
        token = authorization[7:].strip()
        ok = False
        for key in self._keys:  # compare against every key so timing reveals nothing
            ok |= hmac.compare_digest(token, key)
        return ok and bool(token)


# ----------------------------------------------------------------------------- swagger


def _property_schema(col: Column, version: int) -> dict:
    types = {
        "number": ("number", "double"),
        "integer": ("integer", "int64"),
        "boolean": ("boolean", None),
        "string": ("string", None),
    }
    t, fmt = types[col.kind]
    prop: dict[str, Any] = {"type": t}
    if fmt:
        prop["format"] = fmt
    prop["x-nullable" if version == 2 else "nullable"] = True
    desc = []
    if col.categories:
        cats = ", ".join(str(c) for c in col.categories[:30])
        desc.append(f"Known categories: {cats}{' ...' if len(col.categories) > 30 else ''}")
    if col.minimum is not None and col.maximum is not None:
        desc.append(f"Training range {col.minimum} to {col.maximum}")
    if desc:
        prop["description"] = ". ".join(desc)
    if col.example is not None:
        prop["example"] = col.example
    return prop


def build_swagger(
    served: ServedModel, version: int = 2, title: str = "", example_output: list | None = None
) -> dict:
    """Swagger 2.0 (`version=2`) or OpenAPI 3.0.3 (`version=3`) document for the endpoint."""
    if version not in (2, 3):
        raise ValueError("version must be 2 or 3")
    ref = "#/definitions/" if version == 2 else "#/components/schemas/"
    records = [{c.name: r.get(c.name) for c in served.columns} for r in served.example_records]
    example_in = {"Inputs": {"data": records}, "GlobalParameters": {"method": "predict"}}
    example_out = {"Results": example_output if example_output is not None else []}
    record_schema = {
        "type": "object",
        "required": [c.name for c in served.columns if c.required],
        "properties": {c.name: _property_schema(c, version) for c in served.columns},
        "additionalProperties": False,
    }
    records_schema = {"type": "array", "items": {"$ref": ref + "ServiceRecord"}}
    method_schema = {"type": "string", "enum": list(METHODS), "default": "predict"}
    label_type = "string"
    if served.classes and all(
        isinstance(c, bool | int) and not isinstance(c, bool) for c in served.classes
    ):
        label_type = "integer"
    elif served.task == "regression":
        label_type = "number"
    classes_note = f" Classes, in probability order: {served.classes}." if served.classes else ""
    prediction = {
        "description": (
            "One prediction per input row, in input order; with method=predict_proba a list of "
            "class probabilities per row." + classes_note
        ),
    }
    if version == 3:
        prediction["oneOf"] = [{"type": label_type}, {"type": "array", "items": {"type": "number"}}]
    schemas = {
        "ServiceRecord": record_schema,
        "ServiceInput": {
            "type": "object",
            "description": (
                "Send exactly one of: `Inputs` (+ optional `GlobalParameters`), answered with "
                "`Results`; `data` (+ optional `method`), answered with `result`; or `input_data` "
                "({columns, index, data}, + optional `params.method`), answered with a bare array."
            ),
            "properties": {
                "Inputs": {
                    "type": "object",
                    "properties": {"data": records_schema},
                    "required": ["data"],
                },
                "GlobalParameters": {"type": "object", "properties": {"method": method_schema}},
                "data": records_schema,
                "method": method_schema,
                "input_data": {
                    "type": "object",
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "index": {"type": "array", "items": {"type": "integer"}},
                        "data": {"type": "array", "items": {"type": "array", "items": {}}},
                    },
                    "required": ["columns", "data"],
                },
                "params": {"type": "object", "properties": {"method": method_schema}},
            },
            "example": example_in,
        },
        "ServiceOutput": {
            "type": "object",
            "description": "`Results` for `Inputs` requests, `result` for `data` requests; `input_data` requests get the bare list.",
            "properties": {
                "Results": {"type": "array", "items": prediction},
                "result": {"type": "array", "items": prediction},
            },
            "example": example_out,
        },
        "ErrorResponse": {
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
            "example": {"message": "Row 0, column 'age': expected a number, got \"abc\""},
        },
    }
    title = title or "opsdeck scoring endpoint"
    info = {
        "title": title,
        "description": f"API specification for the scoring endpoint {title}",
        "version": "1.0",
    }
    errors = {
        "400": "Bad input; the message names the field or row",
        "401": "Missing or invalid key",
        "413": "Body or row count over the limit",
    }
    method_param = {
        "name": "method",
        "in": "query",
        "required": False,
        "description": "predict_proba returns class probabilities for any request shape",
    }
    version_param = {
        "name": "version",
        "in": "query",
        "required": False,
        "description": "2 (Swagger 2.0, default) or 3 (OpenAPI 3.0.3)",
    }

    def _resp(desc: str, schema_name: str, media: str = "application/json") -> dict:
        if version == 2:
            return {"description": desc, "schema": {"$ref": ref + schema_name}}
        return {"description": desc, "content": {media: {"schema": {"$ref": ref + schema_name}}}}

    score_responses = {"200": _resp("Predictions in the shape of the request", "ServiceOutput")}
    score_responses |= {code: _resp(desc, "ErrorResponse") for code, desc in errors.items()}
    score_responses["default"] = _resp("Server fault", "ErrorResponse")
    health_ok = {"description": "The server is up"}
    if version == 2:
        health_ok["schema"] = {"type": "string", "example": "Healthy"}
        spec_ok = {"description": "This document", "schema": {"type": "object"}}
        score_params = [
            {
                "name": "serviceInputPayload",
                "in": "body",
                "required": True,
                "schema": {"$ref": ref + "ServiceInput"},
            },
            method_param | {"type": "string", "enum": list(METHODS)},
        ]
        version_param = version_param | {"type": "string", "enum": ["2", "3"]}
    else:
        health_ok["content"] = {"text/plain": {"schema": {"type": "string", "example": "Healthy"}}}
        spec_ok = {
            "description": "This document",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
        score_params = [method_param | {"schema": {"type": "string", "enum": list(METHODS)}}]
        version_param = version_param | {"schema": {"type": "string", "enum": ["2", "3"]}}
    score_op: dict[str, Any] = {
        "operationId": "RunMLService",
        "summary": "Score records with the deployed model",
        "description": "Run the model on the rows of the request. Authorization: 'Bearer <key>'.",
        "security": [{"Bearer": []}],
        "parameters": score_params,
        "responses": score_responses,
    }
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "operationId": "ServiceHealthCheck",
                "summary": "Liveness",
                "responses": {"200": health_ok},
            }
        },
        "/score": {"post": score_op},
        "/swagger.json": {
            "get": {
                "operationId": "GetSwaggerSpec",
                "summary": "This API specification",
                "parameters": [version_param],
                "responses": {"200": spec_ok},
            }
        },
    }
    bearer = {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "For example: Bearer abc123",
    }
    if version == 2:
        paths["/"]["get"]["produces"] = ["text/plain"]
        score_op["consumes"] = ["application/json"]
        score_op["produces"] = ["application/json"]
        return {
            "swagger": "2.0",
            "info": info,
            "schemes": ["http"],
            "consumes": ["application/json"],
            "produces": ["application/json"],
            "securityDefinitions": {"Bearer": bearer},
            "paths": paths,
            "definitions": schemas,
        }
    score_op["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": ref + "ServiceInput"}, "example": example_in}
        },
    }
    return {
        "openapi": "3.0.3",
        "info": info,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"Bearer": bearer}},
    }


def render_docs_html(spec: dict) -> str:
    """A self-contained HTML page describing the endpoint; Swagger UI replaces it when online."""
    e = html.escape
    schemas = spec.get("definitions") or spec["components"]["schemas"]
    record = schemas["ServiceRecord"]
    rows = []
    for name, prop in record["properties"].items():
        rows.append(
            f"<tr><td><code>{e(name)}</code></td><td>{e(prop['type'])}</td>"
            f"<td><code>{e(json.dumps(prop.get('example')))}</code></td>"
            f"<td>{e(prop.get('description', ''))}</td></tr>"
        )
    example = json.dumps(schemas["ServiceInput"]["example"], indent=2)
    output = json.dumps(schemas["ServiceOutput"]["example"], indent=2)
    title = e(spec["info"]["title"])
    curl = (
        'curl -X POST "$SCORING_URI" -H "Content-Type: application/json" '
        '-H "Authorization: Bearer $KEY" -d @body.json'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; }}
pre {{ background: #f6f8fa; padding: .8rem; overflow-x: auto; }} code {{ font-size: .95em; }}
.route {{ font-family: monospace; font-weight: bold; }}
</style></head><body>
<div id="swagger-ui"><div id="static-doc">
<h1>{title}</h1>
<p>Specification: <a href="swagger.json?version=2">swagger.json (Swagger 2.0)</a> ·
<a href="swagger.json?version=3">swagger.json?version=3 (OpenAPI 3.0.3)</a></p>
<h2>Routes</h2>
<table><tr><th>route</th><th>auth</th><th>what it does</th></tr>
<tr><td class="route">GET /</td><td>none</td><td>liveness: answers <code>Healthy</code></td></tr>
<tr><td class="route">POST /score</td><td><code>Authorization: Bearer &lt;key&gt;</code></td><td>predictions for the rows of the body</td></tr>
<tr><td class="route">GET /swagger.json</td><td>none</td><td>this API as Swagger 2.0 or OpenAPI 3 (<code>?version=3</code>)</td></tr>
</table>
<h2>Request shapes</h2>
<table><tr><th>body</th><th>answer</th><th>probabilities</th></tr>
<tr><td><code>{{"Inputs": {{"data": [records]}}, "GlobalParameters": {{"method": "predict"}}}}</code></td><td><code>{{"Results": [...]}}</code></td><td><code>"method": "predict_proba"</code></td></tr>
<tr><td><code>{{"data": [records]}}</code></td><td><code>{{"result": [...]}}</code></td><td><code>"method": "predict_proba"</code> or <code>?method=predict_proba</code></td></tr>
<tr><td><code>{{"input_data": {{"columns": [...], "index": [...], "data": [[...]]}}}}</code></td><td><code>[...]</code></td><td><code>"params": {{"method": "predict_proba"}}</code> or <code>?method=predict_proba</code></td></tr>
</table>
<p>Errors are <code>{{"message": "..."}}</code> with a 4xx status that names the row and column.</p>
<h2>Input columns (one record)</h2>
<table><tr><th>column</th><th>type</th><th>example</th><th>notes</th></tr>
{"".join(rows)}
</table>
<h2>Example request</h2><pre>{e(example)}</pre>
<h2>Example response</h2><pre>{e(output)}</pre>
<h2>curl</h2><pre>{e(curl)}</pre>
</div></div>
<link rel="stylesheet" href="{SWAGGER_UI_CDN}/swagger-ui.css">
<script src="{SWAGGER_UI_CDN}/swagger-ui-bundle.js" onerror="void 0"></script>
<script>
if (window.SwaggerUIBundle) {{
  window.SwaggerUIBundle({{url: "swagger.json?version=2", dom_id: "#swagger-ui"}});
}}
</script>
</body></html>
"""


# ----------------------------------------------------------------------------- ASGI app


_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"
_HTML = b"text/html; charset=utf-8"


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


class ScoringApp:
    """The ASGI application; built by `create_app`."""

    def __init__(self, served: ServedModel, settings: ScoringSettings) -> None:
        self.served = served
        self.settings = settings
        self.keys = KeyStore(settings.keys_file) if settings.keys_file else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._base_url: str | None = None
        title = (
            settings.title or f"{settings.endpoint} (model version {settings.model_version or '?'})"
        )
        try:
            example_output = served.predict([dict(r) for r in served.example_records])
        except Exception:
            example_output = None
        self.swagger = {v: dumps(build_swagger(served, v, title, example_output)) for v in (2, 3)}
        self.docs_html = render_docs_html(build_swagger(served, 2, title, example_output)).encode()
        classes = dumps(served.classes) if served.classes is not None else None
        self._extra_headers = [(b"x-ms-classes", classes)] if classes else []

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self._executor.shutdown(wait=False)
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: dict, receive: Callable, send: Callable) -> None:
        start = time.perf_counter()
        wall = time.time()
        method, path = scope["method"], scope["path"]
        req_id = _header(scope, b"x-request-id")
        op_id = (
            req_id.decode("latin-1")
            if req_id and len(req_id) <= 64 and req_id.isascii()
            else uuid.uuid4().hex
        )
        rows: int | None = None
        headers = [(b"x-request-id", op_id.encode("latin-1"))]
        record = True
        try:
            if path == "/score":
                if method == "POST":
                    status, body, rows = await self._score(scope, receive)
                    ctype = _JSON
                    headers.append(
                        (
                            b"x-ms-run-fn-exec-ms",
                            f"{(time.perf_counter() - start) * 1000:.3f}".encode(),
                        )
                    )
                    if status == 200:
                        headers.extend(self._extra_headers)
                    elif status == 401:
                        headers.append((b"www-authenticate", b"Bearer"))
                else:
                    status, ctype, body = (
                        405,
                        _JSON,
                        dumps({"message": f"Method {method} not allowed on /score; use POST"}),
                    )
                    headers.append((b"allow", b"POST"))
            elif path == "/" and method in ("GET", "HEAD"):
                status, ctype, body = 200, _TEXT, b"Healthy"
                record = self.settings.record_health_probes
            elif path == "/swagger.json" and method in ("GET", "HEAD"):
                status, ctype, body = self._swagger(scope)
            elif path == "/docs" and method in ("GET", "HEAD"):
                status, ctype, body = 200, _HTML, self.docs_html
            elif path in ("/", "/swagger.json", "/docs"):
                status, ctype, body = (
                    405,
                    _JSON,
                    dumps({"message": f"Method {method} not allowed on {path}"}),
                )
            else:
                status, ctype, body = 404, _JSON, dumps({"message": f"Not found: {path}"})
        except Exception:
            log.exception("internal error while serving %s %s (operation %s)", method, path, op_id)
            status, ctype = 500, _JSON
            body = dumps({"message": f"Internal server error (operation id {op_id})"})
        headers.append((b"content-type", ctype))
        headers.append((b"content-length", str(len(body)).encode()))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        finally:
            sink = self.settings.telemetry
            if record and sink is not None:
                sink.record_request(
                    RequestRecord(
                        time=wall,
                        operation_id=op_id,
                        name=f"{method} {path}",
                        url=self._url(scope),
                        result_code=status,
                        duration_ms=(time.perf_counter() - start) * 1000,
                        endpoint=self.settings.endpoint,
                        model_version=self.settings.model_version,
                        rows=rows,
                    )
                )

    def _url(self, scope: dict) -> str:
        if self._base_url is None:
            server = scope.get("server") or ("localhost", None)
            host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
            self._base_url = f"{scope.get('scheme', 'http')}://{host}"
        qs = scope.get("query_string")
        return self._base_url + scope["path"] + ("?" + qs.decode("latin-1") if qs else "")

    def _swagger(self, scope: dict) -> tuple[int, bytes, bytes]:
        qs = scope.get("query_string") or b""
        version = parse_qs(qs.decode("latin-1")).get("version", ["2"])[0] if qs else "2"
        spec = {"2": 2, "2.0": 2, "3": 3, "3.0": 3}.get(version)
        if spec is None:
            return (
                404,
                _JSON,
                dumps({"message": f"Swagger version {version!r} is not available; use 2 or 3"}),
            )
        return 200, _JSON, self.swagger[spec]

    async def _read_body(self, scope: dict, receive: Callable) -> bytes | None:
        limit = self.settings.max_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise InputError("Content-Length is not a number") from None
            if size > limit:
                raise InputError(
                    f"Request body too large: {size} bytes (the limit is {limit})", 413
                )
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if chunk:
                total += len(chunk)
                if total > limit:
                    raise InputError(f"Request body too large: over {limit} bytes", 413)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _score(self, scope: dict, receive: Callable) -> tuple[int, bytes, int | None]:
        if self.keys is not None and not self.keys.check(_header(scope, b"authorization")):
            return (
                401,
                dumps({"message": "Missing or invalid key: send 'Authorization: Bearer <key>'"}),
                None,
            )
        rows = None
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                return 499, dumps({"message": "Client disconnected"}), None
            qs = scope.get("query_string")
            query_method = None
            if qs:
                values = parse_qs(qs.decode("latin-1")).get("method")
                query_method = values[0] if values else None
            parsed = parse_payload(parse_json(body), query_method)
            rows = len(parsed.records)
            served = self.served
            validate_records(
                parsed.records, served.columns, self.settings.max_rows, served.allows_null_integers
            )
            fn = served.predict_proba if parsed.method == "predict_proba" else served.predict
            if rows > INLINE_ROWS:
                values = await asyncio.get_running_loop().run_in_executor(
                    self._executor, fn, parsed.records
                )
            else:
                values = fn(parsed.records)
            return 200, dumps(render_response(parsed.shape, _to_list(values))), rows
        except InputError as exc:
            return exc.status, dumps({"message": str(exc)}), rows


def create_app(model: Any, settings: ScoringSettings) -> ScoringApp:
    """Build the ASGI app over a loaded pyfunc model (or an already prepared `ServedModel`)."""
    served = (
        model if isinstance(model, ServedModel) else prepare_model(model, settings.check_records)
    )
    log.info("scoring path: %s (%s)", served.path, served.check_message)
    return ScoringApp(served, settings)
