"""The header row of a delimited table: whether the first row is one, a second header row
below it, and the column names they give."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lib.tabular.columns import MISSING_TOKENS as _DEFAULT_MISSING
from lib.tabular.limits import TableError

SNIFF_MAX_LINES = 50

# A header cell that is a code, not a name (X1, V12, A): a second header row below names it.
_CODE_NAME = re.compile(r"[A-Za-z]{0,2}\d+|[A-Za-z]")
_DECORATION = re.compile(r"[$€£¥,%\s()]")


def looks_numeric(value: str, decimal_comma: bool = False) -> bool:
    if decimal_comma:
        value = value.replace(",", ".")
    try:
        float(value)
    except ValueError:
        return False
    return True


def numberish(text: str) -> bool:
    """A number, perhaps written for people ($1,234.50, 12 %, (5))."""
    return looks_numeric(_DECORATION.sub("", text))


def _is_whole(value: str, decimal_comma: bool) -> bool:
    return value.strip().lstrip("+-").isdigit() if not decimal_comma else "," not in value


def first_row_is_data(header: list[str], rows: Sequence[Sequence[str]], delimiter: str) -> bool:
    """True when the first row of a file holds values, not column names (as UCI's `.data`
    files and `write.table(col.names = FALSE)` write them).

    Every column whose sample values are all numbers must have a number on the first row
    (a name above numbers is a header); and then the first row is all numbers, or has a
    fraction (column names may be years, never 2.5), or one of its text cells recurs among
    the values of its own column (`Private` above a column of `Private`s). A table of text
    alone needs most of its first row to recur so (the mushroom data's `p,x,s,n,...`).
    """
    width = len(header)
    if width < 2:
        return False
    decimal_comma = delimiter == ";"
    tokens = {t.lower() for t in _DEFAULT_MISSING}
    cells = [h.strip() for h in header]
    # The first row again further down (files joined one after another) says nothing.
    rows = [r for r in rows if [v.strip() for v in r] != cells]
    body = [r for r in rows if len(r) == width][:SNIFF_MAX_LINES]
    numeric_columns = text_columns = recurring = 0
    for j, cell in enumerate(cells):
        values = [v for v in (r[j].strip() for r in body) if v.lower() not in tokens]
        if not values:
            continue
        if all(looks_numeric(v, decimal_comma) for v in values):
            if not (looks_numeric(cell, decimal_comma) or cell.lower() in tokens):
                return False
            numeric_columns += 1
        else:
            text_columns += 1
            recurring += bool(cell) and cell in values
    numbers = [c for c in cells if c and looks_numeric(c, decimal_comma)]
    if len(numbers) == width:
        return True
    if not numeric_columns:
        return text_columns >= 2 and recurring * 2 > text_columns
    return recurring > 0 or any(not _is_whole(c, decimal_comma) for c in numbers)


def header_names(header: list[str]) -> list[str]:
    """Column names of a header row: stripped (a line break inside one a space), a blank one named after its position
    (``column_1`` for the first, as the index column pandas writes without a name), and a
    name that repeats numbered from its second time (``Date``, ``Date_2``)."""
    names = [_name(h) or f"column_{i + 1}" for i, h in enumerate(header)]
    taken = set(names)
    seen: set[str] = set()
    # Where each repeated name's numbering goes on: a header of one name 20,000 times would
    # otherwise count up from 2 for every column (quadratic, 28 s for a 64 KB header line).
    next_number: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            n = next_number.get(name, 2)
            while f"{name}_{n}" in taken:
                n += 1
            next_number[name] = n + 1
            name = f"{name}_{n}"
            taken.add(name)
        seen.add(name)
        out.append(name)
    return out


def _name(cell: Any) -> str:
    """A header cell as a name: spaces, tabs and line breaks inside it as one space."""
    return " ".join(str(cell).split())


def renamed_columns(header: list[str]) -> list[str]:
    """The names `header_names` gave to repeated names of a header row."""
    given = [_name(h) or f"column_{i + 1}" for i, h in enumerate(header)]
    return [new for old, new in zip(given, header_names(header), strict=True) if new != old]


def second_header_row(
    header: Sequence[str], candidate: Sequence[str], rows: Sequence[Sequence[str]], delimiter: str
) -> bool:
    """True when the row below the header names the columns again: words above the numeric
    columns and no number (UCI's credit-card default data puts X1..X23 above LIMIT_BAL, SEX,
    ...; engineering exports put units below the names, blank above unitless columns)."""
    width = len(header)
    if width < 2 or len(candidate) != width or sum(1 for h in header if str(h).strip()) < 2:
        return False
    decimal_comma = delimiter == ";"
    tokens = {t.lower() for t in _DEFAULT_MISSING}
    body = [r for r in rows if len(r) == width][:SNIFF_MAX_LINES]
    numeric = named = 0
    for j in range(width):
        values = [v for v in (str(r[j]).strip() for r in body) if v.lower() not in tokens]
        if not values or not all(looks_numeric(v, decimal_comma) for v in values):
            continue
        numeric += 1
        cell = str(candidate[j]).strip()
        if looks_numeric(cell, decimal_comma):
            return False
        named += bool(cell) and cell.lower() not in tokens
    return named >= 2 and named * 2 >= numeric


def merge_header_rows(first: Sequence[str], second: Sequence[str]) -> list[str]:
    """One name per column from two header rows: both (`Temperature °C`), or the second alone
    where the first is blank, repeats it or is a code (`X1`, `V12`). A name over several
    columns (a merged cell: `Q1` over `sales` and `units`, blank beside it) names each of them
    (`Q1 sales`, `Q1 units`)."""
    upper = [str(a).strip() for a in first]
    lower = [str(b).strip() for b in second]
    groups = _header_groups(upper, lower)
    names = []
    for a, b, group in zip(upper, lower, groups, strict=True):
        if group:
            names.append(f"{group} {b}" if b else group)
        elif not b:
            names.append(a)
        elif not a or a == b or _CODE_NAME.fullmatch(a):
            names.append(b)
        else:
            names.append(f"{a} {b}")
    return names


def _header_groups(upper: list[str], lower: list[str]) -> list[str]:
    """For each column, the upper name it falls under when that name spans several columns
    (filled, then blank above named columns to its right), else ""."""
    groups = [""] * len(upper)
    for j, name in enumerate(upper):
        if not name or j + 1 >= len(upper) or upper[j + 1] or not lower[j + 1]:
            continue
        k = j
        while k < len(upper) and (k == j or (not upper[k] and lower[k])):
            groups[k] = name
            k += 1
    return groups


def positional_names(width: int) -> list[str]:
    """Names of the columns of a file without a header row: column_1, column_2, ..."""
    return [f"column_{i + 1}" for i in range(width)]


def check_header(header: list[str]) -> None:
    """Refuse a missing or numeric (no header row) set of column names."""
    if not header or all(not h.strip() for h in header):
        raise TableError("The first line is empty: a header row with column names is required.")
    header = header_names(header)
    if all(looks_numeric(h.strip()) for h in header):
        raise TableError(
            "The first row is all numbers, so the file seems to have no header row: "
            "add a first line with column names."
        )


def check_duplicates(names: list[str]) -> None:
    """Refuse column names that repeat (after stripping blanks)."""
    seen: set[str] = set()
    dupes: list[str] = []
    for name in names:
        key = name.strip()
        if key in seen and key not in dupes:
            dupes.append(key)
        seen.add(key)
    if dupes:
        shown = ", ".join(repr(d) for d in dupes[:20])
        raise TableError(f"Duplicate column names: {shown}.")
