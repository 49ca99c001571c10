"""Numbers that stand for a missing value (`-999`, `9999`): the operator's numeric tokens.

A file that writes `-999` for "not measured" holds a number column, so a token matched against
the written text would miss `-999.0` and every cell a workbook or Parquet file stores as a
number. A token that is a finite number is therefore matched by value in number columns, and the
values found are kept with the dataset so a model reads them as missing at the endpoint too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc


def number_tokens(tokens: Iterable[str]) -> dict[str, float]:
    """The tokens that are finite numbers: token as written -> its value."""
    out: dict[str, float] = {}
    for token in tokens:
        text = str(token).strip().replace("−", "-")
        try:
            value = float(text)
        except ValueError:
            continue
        if math.isfinite(value):
            out[str(token).strip()] = value
    return out


def column_number_tokens(tokens: Iterable[str]) -> dict[str, dict[str, float]]:
    """Tokens written `column=value` (`Insulin=0`: a zero that means "not measured" in one
    column, a count elsewhere): column name -> {value as written: value}."""
    out: dict[str, dict[str, float]] = {}
    for token in tokens:
        name, sep, written = str(token).rpartition("=")
        if not sep or not name.strip():
            continue
        found = number_tokens([written])
        if found:
            out.setdefault(name.strip(), {}).update(found)
    return out


def _scoped(scoped: Mapping[str, dict[str, float]], column: str) -> dict[str, float]:
    """The column's own numeric tokens (its name as written, else in any case)."""
    if column in scoped:
        return scoped[column]
    folded = {k.lower(): v for k, v in scoped.items()}
    return folded.get(column.strip().lower(), {})


def _is_number(data_type: pa.DataType) -> bool:
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type)


def missing_in_numbers(
    table: pa.Table, missing: Mapping[str, Mapping[str, int]], tokens: Iterable[str]
) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    """Number columns with the cells equal to a numeric token made missing (whole-number
    columns become float, as any number column with a missing value is), and the tokens counted
    as the operator wrote them (a `column=value` token in its column only, counted as `value`)."""
    tokens = list(tokens)
    everywhere = number_tokens(tokens)
    scoped = column_number_tokens(tokens)
    out = {k: dict(v) for k, v in missing.items()}
    if not everywhere and not scoped:
        return table, out
    fields, columns = list(table.schema), table.columns
    for index, field in enumerate(table.schema):
        if not _is_number(field.type):
            continue
        found: dict[str, float] = {}
        for token, value in {**everywhere, **_scoped(scoped, field.name)}.items():
            if value not in found.values():  # `-999` and `-999.0` count the cells once
                found[token] = value
        if not found:
            continue
        values = pa.array(sorted(set(found.values())), pa.float64())
        as_float = columns[index].cast(pa.float64())
        hit = pc.fill_null(pc.is_in(as_float, value_set=values), False)
        if not pc.any(hit).as_py():
            continue
        counts = out.setdefault(field.name, {})
        for token, value in found.items():
            n = int(pc.sum(pc.equal(as_float, value)).as_py() or 0)
            if n:
                counts[token] = counts.get(token, 0) + n
        columns[index] = pc.if_else(hit, pa.scalar(None, pa.float64()), as_float)
        fields[index] = pa.field(field.name, pa.float64())
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return pa.Table.from_arrays(columns, schema=schema), out


def missing_words(
    recognised: Mapping[str, Mapping[str, int]], schema: pa.Schema
) -> dict[str, list[str]]:
    """Number and date column -> the words read as missing in it ("Refused", "NA"): what its
    endpoint reads as no value in clients' text too."""
    out: dict[str, list[str]] = {}
    for field in schema:
        if not (_is_number(field.type) or pa.types.is_temporal(field.type)):
            continue
        tokens = recognised.get(field.name, {})
        numbers = number_tokens(tokens)
        words = sorted(t for t in tokens if t.strip() and t not in numbers)
        if words:
            out[field.name] = words
    return out


def sentinel_values(
    recognised: Mapping[str, Mapping[str, int]], schema: pa.Schema
) -> dict[str, list[float]]:
    """Number column -> the values read as missing in it (what its endpoint must read so too)."""
    out: dict[str, list[float]] = {}
    for field in schema:
        if not _is_number(field.type):
            continue
        found = number_tokens(recognised.get(field.name, {}))
        if found:
            out[field.name] = sorted(set(found.values()))
    return out
