"""Fixed-width text (a mainframe or statistics export): columns found by where every line is
blank, then written out as CSV for the CSV reader.

Only for text no delimiter splits: a column-aligned file whose cells hold no space is already
read by its whitespace (`csv_text.collapse_spaces`); this one has cells with spaces inside
(`John Smith`, `New York`), so whitespace cannot tell cells apart but positions can.
"""

from __future__ import annotations

import csv
import io
import re

# Lines looked at to find the columns, and how many must show a run of spaces between values
# (a list of sentences has no position blank on every line, but a list of "A 1" codes would).
SAMPLE_LINES = 200
MIN_LINES = 3
PADDED_SHARE = 0.8
_PADDED = re.compile(r"\S {2,}\S")


def column_spans(sample: str) -> list[tuple[int, int | None]] | None:
    """Character spans of the columns of fixed-width text (the last open-ended), or None when
    the sample does not look fixed-width: at least two columns separated by positions that are
    blank on every line, and most lines padded with runs of spaces between values."""
    lines = [line.rstrip("\r\n") for line in sample.splitlines() if line.strip()]
    lines = lines[:SAMPLE_LINES]
    if len(lines) < MIN_LINES or any("\t" in line for line in lines):
        return None
    if sum(bool(_PADDED.search(line)) for line in lines) < PADDED_SHARE * len(lines):
        return None
    filled = bytearray(max(len(line) for line in lines))
    for line in lines:
        for i, ch in enumerate(line):
            if ch != " ":
                filled[i] = 1
    spans: list[tuple[int, int | None]] = []
    start = None
    for i, used in enumerate(filled):
        if used and start is None:
            start = i
        elif not used and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(filled)))
    if len(spans) < 2:
        return None
    # Values longer than the sample's (further down the file) run on in the last column.
    return [*spans[:-1], (spans[-1][0], None)]


def as_csv(text: str, spans: list[tuple[int, int | None]]) -> str:
    """Every line of fixed-width text cut at `spans` (cells stripped), as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for line in text.splitlines():
        if line.strip():
            writer.writerow([line[a:b].strip() for a, b in spans])
    return out.getvalue()
