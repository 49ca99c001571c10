"""The record encoder: raw feature values to the float64 matrix the members were trained on.

One encoder for every way into a model: ``TabularModel`` (training frames, the pandas
reference ``predict`` and its ``fast_predict``) and the compiled fast path all use the rules
below, so a value is encoded the same way whichever path scores it.

It imports numpy and the standard library only: it ships inside every saved model beside
``lib/local/tabular_model.py`` and must load without the rest of ``lib``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

NUMERIC = "numeric"
CATEGORICAL = "categorical"
DATETIME = "datetime"
# A datetime feature is several encoded columns, in this order: days since 1970-01-01 (under
# the feature's own name), then calendar parts; "hour" only when training saw times of day.
DATE_PARTS = ("days", "year", "month", "day", "weekday")
TIME_PARTS = ("hour",)
_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_US_PER_DAY = 86_400_000_000

_PANDAS_MISSING = frozenset({"NAType", "NaTType"})
# The upload's pattern of a number written for people (lib/tabular/columns.py), repeated here
# because this module ships inside saved models on its own.
_FORMATTED_NUMBER = re.compile(
    r"^[-+−]?\s*[$€£¥]?\s*((\d{1,3}(,\d{3})+|\d+)(\.\d+)?|\.\d+)\s*%?$", re.ASCII
)
_NUMBER_DECORATION = re.compile(r"[$€£¥,%\s]")
_ACCOUNTING_NEGATIVE = re.compile(r"^\(\s*([^()]*?)\s*\)$")


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
    """A numeric feature value: missing or not a number (e.g. ``"abc"``, ``""``) is NaN.

    Text written for people reads as the number it shows, as uploads read it: ``"$1,234.50"``
    is 1234.5, ``"12%"`` is 12 and ``"(5)"`` (accounting) is -5.
    """
    if value is None:
        return math.nan
    try:
        # float() of a NaN is NaN; pandas.NA and pandas.NaT raise TypeError.
        return float(value)
    except (TypeError, ValueError):
        if not isinstance(value, str):
            return math.nan
        text = _ACCOUNTING_NEGATIVE.sub(r"-\1", value.strip())
        if _FORMATTED_NUMBER.match(text):
            return float(_NUMBER_DECORATION.sub("", text).replace("−", "-"))
        return math.nan


_ZONE_NAMED = re.compile(r"\s+(UTC|GMT)$")
_ISO_MONTH = re.compile(r"^\d{4}-\d{2}$")


def to_datetime(value: Any, fmt: str | None = None) -> datetime | None:
    """A datetime feature value as a naive UTC datetime; None when missing or unparseable.

    Takes ISO 8601 text, ``datetime``/``date`` objects (pandas Timestamps are datetimes),
    numpy datetime64, and text in ``fmt`` (the strptime format the training column was read
    with, if any).
    """
    if is_missing(value):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    elif isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        try:
            micros = int(value.astype("datetime64[us]").astype(np.int64))
            return _EPOCH + timedelta(microseconds=micros)
        except (OverflowError, ValueError):
            return None
    elif isinstance(value, str):
        # `… 14:35:00 UTC` (BigQuery, logs) is ISO 8601 in UTC, as the upload reads it.
        text = _ZONE_NAMED.sub("+00:00", value.strip())
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            # ISO 8601's month (`2011-12`), which fromisoformat does not read, else `fmt`.
            fmt = "%Y-%m" if _ISO_MONTH.match(text) else fmt
            if not fmt:
                return None
            try:
                dt = datetime.strptime(text, fmt)
            except ValueError:
                return None
    else:
        return None  # a number is not a date: missing, as text is in a numeric column
    if dt.utcoffset() is not None:
        # Aware values are compared on one clock: converted to UTC, then the zone dropped
        # (training frames hold naive or UTC timestamps).
        try:
            dt = dt.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return None
    return dt


def date_parts(value: Any, parts: Sequence[str], fmt: str | None = None) -> list[float]:
    """The encoded columns of one datetime feature value (NaN for each when missing)."""
    dt = to_datetime(value, fmt)
    if dt is None:
        return [math.nan] * len(parts)
    out = []
    for part in parts:
        if part == "days":
            # From integer fields, so a Timestamp and its ISO text encode to the same float.
            micros = ((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1_000_000 + dt.microsecond
            out.append((dt.toordinal() - _EPOCH_ORDINAL) + micros / _US_PER_DAY)
        elif part == "weekday":
            out.append(float(dt.weekday()))
        else:  # year, month, day, hour
            out.append(float(getattr(dt, part)))
    return out


def encoded_names(feature: Mapping[str, Any]) -> list[str]:
    """Names of the encoded columns of one feature-spec entry."""
    name = str(feature["name"])
    if feature["kind"] != DATETIME:
        return [name]
    return [name if p == "days" else f"{name} ({p})" for p in feature["parts"]]


def category_lookup(categories: Sequence[Any]) -> dict[Any, float]:
    """Code of every category, keyed by the value and by its ``str()``: JSON sends "1" or 1;
    and by its text without surrounding spaces, which files like "a, b" leave in values."""
    table: dict[Any, float] = {}
    for code, cat in enumerate(categories):
        table.setdefault(str(cat), float(code))
        table[cat] = float(code)
    for code, cat in enumerate(categories):
        table.setdefault(str(cat).strip(), float(code))
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
    text = str(value)
    code = lookup.get(text)
    return lookup.get(text.strip(), math.nan) if code is None else code


class RecordEncoder:
    """Plain dict records to the float64 matrix: numerics as floats, categoricals as codes,
    datetimes as their parts (several columns each)."""

    # NB: models pickle this object's __dict__. Only an encoder with a datetime feature stores
    # ``_dates``; every other one keeps exactly the attributes older models were saved with,
    # and the class default below serves them unchanged.
    _dates: list[tuple[tuple[str, ...], str | None] | None] | None = None
    # Likewise only an encoder with numbers read as missing at upload (-999) stores these:
    # (encoded column, those numbers) of each such feature.
    _blanks: list[tuple[int, np.ndarray]] | None = None

    def __init__(self, feature_spec: list[dict[str, Any]]):
        self.feature_spec = feature_spec
        self.columns = [f["name"] for f in feature_spec]
        self._lookups: list[dict[Any, float] | None] = [
            category_lookup(f["categories"]) if f["kind"] == CATEGORICAL else None
            for f in feature_spec
        ]
        if any(f["kind"] == DATETIME for f in feature_spec):
            self._dates = [
                (tuple(f["parts"]), f.get("format")) if f["kind"] == DATETIME else None
                for f in feature_spec
            ]
        if any(f.get("missing_values") for f in feature_spec):
            self._blanks = [
                (at, np.asarray(f["missing_values"], dtype=np.float64))
                for at, f in zip(self.offsets, feature_spec, strict=True)
                if f["kind"] == NUMERIC and f.get("missing_values")
            ]

    def blank_out(self, matrix: np.ndarray) -> np.ndarray:
        """The encoded matrix with the numbers the upload read as missing made NaN (in place)."""
        for at, values in self._blanks or ():
            column = matrix[:, at]
            column[np.isin(column, values)] = np.nan
        return matrix

    @property
    def encoded_columns(self) -> list[str]:
        """Names of the encoded matrix's columns (a datetime feature has several)."""
        return [n for f in self.feature_spec for n in encoded_names(f)]

    @property
    def offsets(self) -> list[int]:
        """Position of each input column's first encoded column."""
        if self._dates is None:
            return list(range(len(self.columns)))
        out, at = [], 0
        for dates in self._dates:
            out.append(at)
            at += 1 if dates is None else len(dates[0])
        return out

    @property
    def width(self) -> int:
        """Number of encoded columns."""
        if self._dates is None:
            return len(self.columns)
        return sum(1 if d is None else len(d[0]) for d in self._dates)

    def encode(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """One row per record; an absent column is a missing value."""
        if self._dates is not None:
            return self._encode_expanded(records)
        rows = [
            [
                to_float(rec.get(name)) if lookup is None else category_code(lookup, rec.get(name))
                for name, lookup in zip(self.columns, self._lookups, strict=True)
            ]
            for rec in records
        ]
        matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(self.columns))
        return matrix if self._blanks is None else self.blank_out(matrix)

    def _encode_expanded(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        plan = list(zip(self.columns, self._lookups, self._dates, strict=True))
        rows = []
        for rec in records:
            row: list[float] = []
            for name, lookup, dates in plan:
                value = rec.get(name)
                if dates is not None:
                    row.extend(date_parts(value, dates[0], dates[1]))
                elif lookup is None:
                    row.append(to_float(value))
                else:
                    row.append(category_code(lookup, value))
            rows.append(row)
        matrix = np.array(rows, dtype=np.float64).reshape(len(rows), self.width)
        return matrix if self._blanks is None else self.blank_out(matrix)
