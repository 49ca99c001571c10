"""Missing-value tokens in text columns: which tokens count there, and the cells holding them
made missing (`NA` for North America stays a value unless the file writes it for missing
numbers or dates too)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from lib.tabular.columns import MISSING_TOKENS, PLACEHOLDER_TOKENS, TEXT, as_string, is_textual


def text_missing_tokens(
    tokens: Iterable[str], recognised_elsewhere: Iterable[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """The tokens read as missing in text columns, as (exact strings, lower-case strings):
    placeholders as they are written (`N/A`, `n/a`; not `Nan`, a name), the operator's own
    tokens in any case, and the word-like defaults exactly as the file writes them for missing
    numbers or dates (`recognised_elsewhere`), so sodium's `Na` stays a value beside `NA`."""
    defaults = {t.lower() for t in MISSING_TOKENS}
    written = {t.strip() for t in recognised_elsewhere}
    exact: set[str] = set()
    folded: set[str] = set()
    for token in tokens:
        clean = token.strip()
        low = clean.lower()
        if not low:
            continue
        if low not in defaults:
            folded.add(low)
        elif low in PLACEHOLDER_TOKENS:
            exact |= {clean, low, clean.upper()}
        else:
            exact |= {w for w in written if w.lower() == low}
    return frozenset(exact), frozenset(folded)


def missing_in_text(
    table: pa.Table,
    missing: dict[str, dict[str, int]],
    tokens: Iterable[str],
    kept_as_written: frozenset[str] = frozenset(),
    written_for_missing: Iterable[str] = (),
) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    """Text columns with the cells holding a missing-value token made missing, and the
    tokens counted; columns in `kept_as_written` are left as they are. `written_for_missing`:
    tokens the file is known to write for a missing value (R's bare `NA`)."""
    text = [
        str(n)
        for n, t in zip(table.column_names, table.schema.types, strict=True)
        if is_textual(t) and str(n) not in kept_as_written
    ]
    if not text:
        return table, missing
    elsewhere = [t for name, counts in missing.items() if name not in text for t in counts]
    elsewhere += list(written_for_missing)
    exact, folded = text_missing_tokens(tokens, elsewhere)
    if not exact and not folded:
        return table, missing
    value_sets = (pa.array(sorted(exact), pa.string()), pa.array(sorted(folded), pa.string()))
    missing = {k: dict(v) for k, v in missing.items()}
    # Positions looked up once and columns replaced together: per column, both cost the
    # width of the table (quadratic in a wide one).
    where = {str(n): i for i, n in enumerate(table.column_names)}
    columns = table.columns
    for name in text:
        index = where[name]
        column = columns[index]
        counts: Counter[str] = Counter()
        chunks = []
        for chunk in column.chunks:
            hit = _token_cells(chunk, *value_sets)
            if hit is None:
                chunks.append(chunk)
                continue
            strings = as_string(chunk)
            for item in pc.value_counts(pc.filter(strings, hit)).to_pylist():
                counts[item["values"]] += item["counts"]
            cleaned = pc.if_else(hit, pa.scalar(None, pa.string()), strings)
            chunks.append(
                pc.dictionary_encode(cleaned) if chunk.type == TEXT else cleaned.cast(chunk.type)
            )
        if counts:
            missing.setdefault(name, {}).update(counts)
            columns[index] = pa.chunked_array(chunks, column.type)
    return pa.Table.from_arrays(columns, schema=table.schema), missing


def _token_cells(chunk: pa.Array, exact: pa.Array, folded: pa.Array) -> pa.Array | None:
    """Which cells of a text chunk hold a token (`exact` as written, `folded` in any case);
    None if none does."""

    def found(values: pa.Array) -> pa.Array:
        hit = pc.is_in(values, value_set=exact)
        if len(folded):
            hit = pc.or_(hit, pc.is_in(pc.utf8_lower(values), value_set=folded))
        return pc.fill_null(hit, False)

    if pa.types.is_dictionary(chunk.type):
        # The dictionary first: most text columns hold no token, and it is small.
        known = found(chunk.dictionary)
        if not pc.any(known).as_py():
            return None
        return pc.fill_null(pc.take(known, chunk.indices), False)
    hit = found(chunk)
    return hit if pc.any(hit).as_py() else None
