"""Text columns that hold numbers but for a few repeated words (`refused`, `pending`, `<0.5`)."""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd

from lib.tabular.columns import COMMA_DECIMAL_NUMBER, DATETIME_FORMATS, FORMATTED_NUMBER

# The cells that are numbers, as the reader would read them (plain, formatted, decimal comma;
# the reader's patterns are Arrow's RE2, whose `\x{a0}` Python writes `\xa0`).
_NUMBER = re.compile(
    "|".join(
        (
            r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$",
            FORMATTED_NUMBER,
            re.sub(r"\\x\{([0-9a-f]+)\}", lambda m: chr(int(m.group(1), 16)), COMMA_DECIMAL_NUMBER),
        )
    )
)
# A column is numbers spoiled by words when this share of its cells are numbers and the rest
# are at most this many distinct words, each written more than once.
NUMBER_SHARE = 0.8
MAX_WORDS = 3
MIN_NUMBERS = 20


def words_among_numbers(values: pd.Series) -> dict[str, int]:
    """The words (and their counts) that keep a column of numbers a text column, else {}."""
    values = values.dropna()
    if len(values) < MIN_NUMBERS or values.dtype.kind in "biufcmM":
        return {}
    counts = values.astype(str).value_counts(sort=False)
    numeric = counts.index.map(lambda v: bool(_NUMBER.match(v))).to_numpy(dtype=bool)
    words = counts[~numeric]
    # A word written once is a typo or a code among codes, not a convention for "no value".
    if words.empty or words.min() < 2 or len(words) > MAX_WORDS or numeric.sum() < 3:
        return {}
    if counts[numeric].sum() < max(MIN_NUMBERS, NUMBER_SHARE * len(values)):
        return {}
    # Years with a few whole dates among them (a contract's end, "Jun 30, 2019"): the dates are
    # values, and reading them as missing would erase them.
    if any(_is_date(str(w)) for w in words.index):
        return {}
    return {str(w): int(n) for w, n in words.sort_values(ascending=False).items()}


def _is_date(text: str) -> bool:
    text = text.strip()
    if not any(c.isdigit() for c in text):
        return False
    for pattern in DATETIME_FORMATS:
        try:
            datetime.strptime(text, pattern)
        except ValueError:
            continue
        return True
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def numbers_spoiled_by_words(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Every such column of `frame`: column -> {word: cells}."""
    out = {}
    for name in frame.columns:
        found = words_among_numbers(frame[name])
        if found:
            out[str(name)] = found
    return out


def spoiled_note(column: str, words: dict[str, int]) -> str:
    """How the operator gets the column read as numbers."""
    cells = ", ".join(f'"{w}" ({n:,})' for w, n in words.items())
    tokens = ", ".join(words)
    return (
        f"{column} is numbers but for {cells}, so it was read as text: add {tokens} to the "
        "missing-value tokens and register the file again to read it as numbers."
    )
