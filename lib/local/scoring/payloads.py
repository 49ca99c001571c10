"""Request bodies: the three Azure request shapes parsed and validated, responses shaped to match.

Pure functions over parsed JSON, no pandas and no per-request schema objects:

- `{"data": [{record}, ...]}` -> `{"result": [...]}`
- `{"Inputs": {"data": [...]}, "GlobalParameters": {"method": "predict"}}` -> `{"Results": [...]}`
- `{"input_data": {"columns": [...], "index": [...], "data": [[...]]}}` -> `[...]`

Probabilities: `GlobalParameters.method = "predict_proba"` for the `Inputs` shape, a top-level
`"method": "predict_proba"` for the `data` shape, `"params": {"method": "predict_proba"}` for the
`input_data` shape, or `?method=predict_proba` on the URL for any shape.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lib.local.fastpath.encoder import to_datetime, to_float
from lib.tabular.columns import MISSING_TOKENS

DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
METHODS = ("predict", "predict_proba")
# A feature spec lists at most this many categories of a text column (the most frequent;
# ``TabularModel``'s ``max_categories``).
CATEGORIES_LISTED = 1000
_BOOL_TEXT = {"true": True, "false": False}
_SAMPLE_MOMENT = datetime(2024, 5, 31, 13, 45)
# What uploads read as no value in a number or date column (NA, N/A, ?, null ...): the same
# text from a client is a missing value, not an error.
_NO_VALUE = frozenset(token.casefold() for token in MISSING_TOKENS)


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
    # A date-time feature (sent as text): the strptime format its training file was written
    # in, besides ISO 8601 ("" for ISO 8601 only); None for a column that is not one.
    date_format: str | None = None
    # Numbers the training file wrote with a decimal comma (`2.937,46 €`): read so from text.
    decimal_comma: bool = False
    # Words the upload read as missing in this column beyond the usual ones ("Refused").
    missing_words: frozenset[str] = frozenset()

    def is_no_value(self, text: str) -> bool:
        """A missing-value word: the usual ones ("NA", "?", "null") or the upload's own."""
        word = text.strip().casefold()
        return word in _NO_VALUE or word in self.missing_words

    @functools.cached_property
    def spellings(self) -> tuple[frozenset[str], dict[str, str]] | None:
        """A text column's categories, and each under its case-insensitive spelling, for
        values sent in another case ("true" for "True", "YES" for "yes"); None when there is
        nothing to respell: no categories, a list cut at the feature spec's limit (a value
        missing from it may still be known to the model), or categories differing only in
        case."""
        cats = self.categories
        if not cats or len(cats) >= CATEGORIES_LISTED or not all(type(c) is str for c in cats):
            return None
        folded = {c.strip().casefold(): c for c in cats}
        if len(folded) < len(cats):
            return None
        return frozenset(cats), folded

    @functools.cached_property
    def code_width(self) -> int | None:
        """The width of a column of zero-padded number codes ("02134", "00501"): every listed
        category digits only, all as wide, some starting with 0. A client reading the file
        with a number parser sends 2134 for "02134"."""
        cats = self.categories
        if self.spellings is None or not all(c.isascii() and c.isdigit() for c in cats):
            return None
        widths = {len(c) for c in cats}
        if len(widths) != 1 or not any(c.startswith("0") for c in cats):
            return None
        return widths.pop()


@dataclass
class ParsedRequest:
    """The records of one request, its shape (to answer in) and the method asked for."""

    shape: str  # "data", "inputs" or "input_data"
    records: list[dict]
    method: str = "predict"


def describe(value: Any) -> str:
    """A value as JSON, cut to 40 characters, for error messages."""
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
        return json.loads(body, parse_constant=_reject_constant, parse_int=_parse_int)
    except RecursionError:
        raise InputError("Request body is nested too deeply") from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"Request body is not valid JSON: {exc}") from None


def _parse_int(text: str) -> int | float:
    # Python refuses to convert integers over 4,300 digits; as a float such a number is
    # infinite, which the column check refuses by name like any number past 64 bits.
    return int(text) if len(text) < 4000 else float(text)


def _check_method(value: Any, where: str) -> str:
    if value not in METHODS:
        raise InputError(f"{where} must be 'predict' or 'predict_proba', got {describe(value)}")
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


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT32_MAX = 3.4028234663852886e38


def _number_limit(col: Column) -> float:
    """The largest magnitude a number column takes: float32 columns overflow past 3.4e38."""
    return _FLOAT32_MAX if col.dtype == "float" else sys.float_info.max


def number_as_text(value: Any) -> str | None:
    """A JSON number sent for a text column, as the text a CSV holding it reads as; else None.

    The shortest form that reads back as the same number, which is how JSON writes it:
    22 -> "22", 19.9667 -> "19.9667", 1.0 -> "1.0". Training read the column's CSV cells as
    written, so "22" and 22 are the same value to the model. Booleans and non-finite numbers
    are not numbers here.
    """
    if type(value) is int:
        return str(value)
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return None


def _coerce_number(value: str, decimal_comma: bool = False) -> float | int | None:
    """A number sent as text: plain, or written for people as the upload read it
    (`"$1,234.50"`, `"12%"`, `"(5)"`; with ``decimal_comma`` `"2.937,46 €"`, `"5,1"` and
    `"1.514"` as a German spreadsheet writes 1514); None when it is not one."""
    text = value.strip()
    if decimal_comma:
        number = _comma_decimal(text)
        if number is not None:
            return number
    try:
        number = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = to_float(text)
            return None if math.isnan(number) else number
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number


_COMMA_DECIMAL = re.compile(
    r"^[-+−]?\s*[$€£¥]?\s*((\d{1,3}([. \xa0\u202f]\d{3})+|\d+)(,\d+)?|,\d+)\s*[$€£¥]?\s*%?$"
)
_COMMA_DECORATION = re.compile(r"[$€£¥.%\s\xa0\u202f]")


def _comma_decimal(text: str) -> float | None:
    """`2.937,46 €` as 2937.46 (the upload's pattern of a number with a decimal comma)."""
    negative = text.startswith("(") and text.endswith(")")
    inner = text[1:-1].strip() if negative else text
    if not _COMMA_DECIMAL.match(inner):
        return None
    number = float(_COMMA_DECORATION.sub("", inner).replace(",", ".").replace("−", "-"))
    return -number if negative else number


def _flatten(rec: dict, names: frozenset[str]) -> None:
    """A nested object sent as the JSON file uploaded held it (`"profile": {"age": 31}`),
    under the `parent.child` names the upload gave its columns."""
    for key in [k for k, v in rec.items() if type(v) is dict and k not in names]:
        for name, value in _flat_items(rec.pop(key), str(key)):
            rec.setdefault(name, value)


def _flat_items(obj: dict, prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in obj.items():
        name = f"{prefix}.{key}"
        if type(value) is dict:
            yield from _flat_items(value, name)
        else:
            yield name, value


def _respell(rec: dict, names: frozenset[str], ignored: frozenset[str]) -> None:
    """Keys written as the uploaded file's header wrote them (" BMI ", "thinness  1-19 years"),
    under the names the upload gave them (spaces at the ends dropped, runs of them one); a
    blank header cell's column, which the upload named by its position (column_1), under the
    names clients reading the file give it: pandas' "Unnamed: 0", csv.DictReader's ""."""
    known = names | ignored
    for key in [k for k in rec if k not in known]:
        name = " ".join(str(key).split())
        if not name:
            positional = [c for c in known if _POSITIONAL.fullmatch(c)]
            name = positional[0] if len(positional) == 1 else name
        elif m := _PANDAS_UNNAMED.fullmatch(name):
            name = f"column_{int(m[1]) + 1}"
        if name != key and name in known and name not in rec:
            rec[name] = rec.pop(key)


_POSITIONAL = re.compile(r"column_\d+")
_PANDAS_UNNAMED = re.compile(r"Unnamed: (\d+)")


def _check_date(rec: dict, col: Column, row: int) -> None:
    """A date-time feature's value: ISO 8601 text or text in the training file's format (an
    empty text or a missing-value word is missing); anything else is refused, as an unreadable
    number is, rather than scored as a missing date."""
    name, fmt = col.name, col.date_format
    v = rec[name]
    if type(v) is str:
        if not v.strip() or col.is_no_value(v):  # "", "NA", "null": no date
            rec[name] = None
            return
        if to_datetime(v, fmt or None) is not None:
            return
    example = "2024-05-31 or 2024-05-31T13:45:00"
    if fmt:
        try:
            example += f", or as the training file wrote it, e.g. {_SAMPLE_MOMENT.strftime(fmt)}"
        except ValueError:
            pass
    raise InputError(
        f"Row {row}, column {name!r}: expected a date (ISO 8601, {example}), got {describe(v)}"
    )


def validate_records(
    records: list,
    columns: list[Column],
    max_rows: int,
    allow_null_integers: bool = True,
    ignored: frozenset[str] = frozenset(),
) -> None:
    """Check records against the columns, in place: numeric strings become numbers, and the
    `ignored` columns (of the training table, not read by the model) are dropped."""
    n = len(records)
    if n == 0:
        raise InputError("No rows to score: send at least one record")
    if n > max_rows:
        raise InputError(f"Too many rows: {n} (the limit is {max_rows} per request)", 413)
    names = frozenset(c.name for c in columns)
    required = frozenset(c.name for c in columns if c.required)
    all_required = required == names
    limits = {c.name: _number_limit(c) for c in columns if c.kind == "number"}
    for i, rec in enumerate(records):
        if type(rec) is not dict:
            raise InputError(f"Row {i}: expected a JSON object (record), got {_json_type(rec)}")
        if not (all_required and rec.keys() == names):
            if any(k not in names and k not in ignored for k in rec):
                _flatten(rec, names)
                _respell(rec, names, ignored)
            for name in ignored.intersection(rec):
                del rec[name]
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
                limit = limits[name]
                if t is str:
                    if not v.strip():  # an empty cell of a CSV row: missing
                        rec[name] = None
                        continue
                    v = _coerce_number(v, col.decimal_comma)
                    if v is None and col.is_no_value(rec[name]):
                        rec[name] = None  # "NA", "?", "n/a": as the upload read the column
                        continue
                    if v is None:
                        raise InputError(
                            f"Row {i}, column {name!r}: expected a number, got {describe(rec[name])}"
                        )
                    t = type(v)
                    rec[name] = v
                if t is float or t is int:
                    # False for inf and nan too: JSON's 1e999 parses to inf.
                    if -limit <= v <= limit:
                        continue
                    raise InputError(
                        f"Row {i}, column {name!r}: number out of range ({describe(v)}); "
                        f"this column takes finite numbers up to {limit:.6g} in magnitude"
                    )
                raise InputError(f"Row {i}, column {name!r}: expected a number, got {describe(v)}")
            if kind == "string":
                if col.date_format is not None:
                    _check_date(rec, col, i)
                    continue
                spellings = col.spellings
                if t is str:
                    if spellings is not None and v not in spellings[0]:
                        rec[name] = spellings[1].get(v.strip().casefold(), v)
                    continue
                if t is bool and spellings is not None:
                    # a True/False column with blanks is text: JSON true is its "True"
                    known = spellings[1].get("true" if v else "false")
                    if known is not None:
                        rec[name] = known
                        continue
                text = number_as_text(v)
                if text is not None:
                    width = col.code_width
                    if width and 0 <= v < 10**width and (t is int or v.is_integer()):
                        text = str(int(v)).zfill(width)  # 6511.0 from a pandas client too
                    rec[name] = text
                    continue
                if t is list:  # a JSON upload kept a list as its JSON text
                    rec[name] = json.dumps(v, ensure_ascii=False)
                    continue
                raise InputError(f"Row {i}, column {name!r}: expected a string, got {describe(v)}")
            if kind == "integer":
                if t is int:
                    if _INT64_MIN <= v <= _INT64_MAX:
                        continue
                    num = v
                else:
                    num = (
                        _coerce_number(v, col.decimal_comma)
                        if t is str
                        else v
                        if t is float
                        else None
                    )
                    if num is None and t is str and col.is_no_value(v):
                        if not allow_null_integers:
                            raise InputError(
                                f"Row {i}, column {name!r}: this model's signature types it "
                                f"as an integer, which cannot be missing ({describe(v)})"
                            )
                        rec[name] = None
                        continue
                    if num is None or not (type(num) is int or num.is_integer()):
                        raise InputError(
                            f"Row {i}, column {name!r}: expected an integer, got {describe(v)}"
                        )
                    num = int(num)
                    if _INT64_MIN <= num <= _INT64_MAX:
                        rec[name] = num
                        continue
                raise InputError(
                    f"Row {i}, column {name!r}: integer out of range ({describe(v)}); "
                    f"this column takes 64-bit integers ({_INT64_MIN} to {_INT64_MAX})"
                )
            if t is str and v.strip().casefold() in _BOOL_TEXT:  # boolean
                rec[name] = _BOOL_TEXT[v.strip().casefold()]
                continue
            if t is not bool:
                raise InputError(
                    f"Row {i}, column {name!r}: expected true or false, got {describe(v)}"
                )


def render_response(shape: str, values: list) -> Any:
    """Wrap predictions in the response shape that matches the request shape."""
    if shape == "data":
        return {"result": values}
    if shape == "inputs":
        return {"Results": values}
    return values


def _finite(value: Any) -> bool:
    if hasattr(value, "item") and not isinstance(value, list | dict):  # numpy scalar
        value = value.item()
    if type(value) is float:
        return value - value == 0.0  # nan and inf give nan
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def non_finite_error(values: list, records: list[dict], columns: list[Column]) -> InputError:
    """A 422 naming the first row whose prediction is NaN or infinite, and its unusual columns."""
    i = next((n for n, v in enumerate(values) if not _finite(v)), 0)
    rec = records[i] if i < len(records) else {}
    far = []
    for col in columns:
        v = rec.get(col.name)
        if type(v) not in (int, float) or col.minimum is None or col.maximum is None:
            continue
        if not col.minimum <= v <= col.maximum:
            far.append(
                f"column {col.name!r} = {describe(v)} is outside its training range "
                f"({col.minimum} to {col.maximum})"
            )
    why = "; ".join(far) if far else "no column is outside its known training range"
    return InputError(
        f"Row {i}: the model gave no finite prediction (NaN or infinity) for this input: {why}",
        422,
    )


def render_body(shape: str, values: list, records: list[dict], columns: list[Column]) -> bytes:
    """The response body as JSON; a NaN or infinite prediction is an `InputError` (422) instead."""
    try:
        return dumps(render_response(shape, values))
    except ValueError:
        raise non_finite_error(values, records, columns) from None


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(obj: Any) -> bytes:
    """Strict, compact JSON bytes (NaN and infinity raise `ValueError`); numpy becomes plain."""
    return json.dumps(obj, separators=(",", ":"), default=_json_default, allow_nan=False).encode()
