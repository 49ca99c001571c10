"""Column types of an uploaded table: missing-value tokens, numbers, booleans, datetimes, text.

Numbers written for people (`$1,234.50`, `12%`, `1,000`) are numbers too: the currency sign,
the thousands separators and a trailing percent sign are dropped (`12%` reads as 12). In a file
whose decimal mark is a comma (semicolon-separated, as spreadsheets write them where the comma is
the decimal mark) `1.234,5` and `12,5 %` read as 1234.5 and 12.5.

A column of strings is typed chunk by chunk as it is read (`ColumnBuilder`), so the text is
never held twice; the rare column whose kind changes late is read again as text. Missing-value tokens
(`NA`, `?`, `-`, ...) count as missing where the rest of the column is numeric or datetime. In
a text column the tokens no one writes as a value (`?`, `N/A`, `null`, `#N/A`, ...) and the
tokens the operator added are missing too; the ones a category can be (`NA` for North America,
`None` for no veneer, `-`, `.`) only when the same file writes them for missing numbers or dates
(`lib.tabular.text_missing`). Text is dictionary-encoded in memory (4 bytes a cell) and stored as plain
strings.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

# Compared case-insensitively. Besides the usual words: what spreadsheets write for a cell with
# no value (`#N/A`, `#NA` and the error values a formula leaves in an exported CSV), pandas'
# `<NA>` and `#N/A N/A`, the `.`, `--`, `---` and dashes (`–`, `—`, `−`) statistics packages,
# reports and web tables print, the `\N` of a MySQL or Hive export, a C library's `(null)`, a
# pivot table's `(blank)`, the US Census Bureau's `(X)` (not applicable) and `*****` (no margin
# of error), and the words surveys and hand-kept sheets write among numbers
# (`unknown`, `missing`, `not available`, `n.a.`, `nil`).
MISSING_TOKENS: tuple[str, ...] = (
    "",
    "NA",
    "N/A",
    "NaN",
    "null",
    "None",
    "?",
    "-",
    "--",
    "–",
    "—",
    "−",
    ".",
    "#N/A",
    "#NA",
    "<NA>",
    "#DIV/0!",
    "#VALUE!",
    "#REF!",
    "#NAME?",
    "#NUM!",
    "#NULL!",
    "\\N",
    "---",
    "#N/A N/A",
    "(null)",
    "<null>",
    "(blank)",
    "(X)",
    "*****",
    "unknown",
    "missing",
    "not available",
    "n.a.",
    "nil",
)
# Words that stand for no value among numbers or dates, but are a category among words
# (Bank Marketing's `education` = "unknown"): in text columns, like `NA`, missing only where
# the file writes them for missing numbers or dates too.
VALUE_WORDS = frozenset({"unknown", "missing", "not available", "n.a.", "nil"})
# The default tokens that are never a value: missing in text columns as well (lower case).
PLACEHOLDER_TOKENS = (
    frozenset(t.lower() for t in MISSING_TOKENS if t and t not in ("NA", "None", "-", "."))
    - VALUE_WORDS
)
TEXT = pa.dictionary(pa.int32(), pa.string())
TIMESTAMP_UNIT = "us"
# Tried after ISO 8601, in this order; the first one that parses every value of a column wins
# (so 01/02/2020 is read month first, as pandas does).
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    # As US open-data portals and spreadsheets in a US locale write date and time.
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%d/%m/%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %I:%M:%S %p",
    "%d/%m/%Y %I:%M %p",
    "%d.%m.%Y",
    "%Y.%m.%d",  # as Korea, Hungary and Lithuania write dates
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d-%m-%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%m-%d-%Y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%d-%b-%y",
    # Two-digit years, as a spreadsheet in a US (or European) locale writes short dates.
    "%m/%d/%y",
    "%d/%m/%y",
    "%d.%m.%y",
    # Months: a loan's issue month, a report's period (day 1 of the month).
    "%Y-%m",
    "%m/%Y",
    "%b-%Y",
    "%b %Y",
    "%B %Y",
    "%b-%y",
    # Times of day (on 1900-01-01, as strptime reads them; the model's encoder reads clients'
    # "14:35" the same way), minutes always in two digits: "2:1" is a score, not a time.
    "%H:%M",
    "%H:%M:%S",
    "%I:%M %p",
    "%I:%M:%S %p",
)
# NB: the record encoder reads clients' `… UTC` with the same pattern (it cannot import this).
_ZONE_NAMED = re.compile(r"\s+(UTC|GMT)$")
_TIME_OF_DAY = r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(\s*[AaPp]\.?[Mm]\.?)?$"
# A number as people write it: sign, currency sign, thousands separators in threes, percent.
# NB: the record encoder (lib/local/fastpath/encoder.py) reads clients' values with the same
# pattern; it ships inside saved models and cannot import this module.
# A minus may be the typographic one (U+2212), as tables copied from web pages write it.
FORMATTED_NUMBER = r"^[-+−]?\s*[$€£¥]?\s*((\d{1,3}(,\d{3})+|\d+)(\.\d+)?|\.\d+)\s*%?$"
NUMBER_DECORATION = r"[$€£¥,%\s]"
# The same with a decimal comma and dots (or spaces) between thousands; the currency sign may
# also follow the number (`12,50 €`).
# Spreadsheets in French and other locales put a (narrow) no-break space between thousands.
COMMA_DECIMAL_NUMBER = (
    r"^[-+−]?\s*[$€£¥]?\s*((\d{1,3}([. \x{a0}\x{202f}]\d{3})+|\d+)(,\d+)?|,\d+)\s*[$€£¥]?\s*%?$"
)
_COMMA_DECIMAL_DECORATION = r"[$€£¥.%\s\x{a0}\x{202f}]"
# Accounting notation: a negative amount in parentheses, `(1,234.50)` is -1234.5.
ACCOUNTING_NEGATIVE = r"^\(\s*([^()]*?)\s*\)$"
# A thousands comma and then a decimal point: `1,234.50` can only be written the US way.
_BOTH_MARKS = r"\d,\d{3}(,\d{3})*\.\d"
# In a file with a decimal comma: a whole number with thousands dots (`13.510`), and one of at
# most three digits, which needs none.
_THOUSANDS_DOTS = r"^[-+−]?[1-9]\d{0,2}(\.\d{3})+$"
_UNDER_A_THOUSAND = r"^[-+−]?\d{1,3}$"
_ISO_TYPES = (pa.timestamp(TIMESTAMP_UNIT), pa.timestamp(TIMESTAMP_UNIT, tz="UTC"))
_BOOL_WORDS = pa.array(["true", "false"])
PROBE_VALUES = 64


def normalize_tokens(tokens: Iterable[str] | None) -> tuple[str, ...]:
    """The operator's token list, stripped and de-duplicated (None means the defaults)."""
    if tokens is None:
        return MISSING_TOKENS
    out: list[str] = []
    seen: set[str] = set()
    for token in tokens:
        clean = str(token).strip()
        if clean.lower() not in seen:
            seen.add(clean.lower())
            out.append(clean)
    return tuple(out)


@lru_cache(maxsize=32)
def _lowered_tokens(tokens: tuple[str, ...]) -> pa.Array:
    return pa.array([t.lower() for t in tokens], pa.string())


def _try_parse(values: pa.Array, target: pa.DataType | str) -> pa.Array | None:
    """`values` parsed as `target` (a type, or a strptime format), or None if any value fails."""
    # A failing cast costs ~100x a successful one (0.4 s for 160k strings): a small probe
    # first rules text columns out cheaply.
    try:
        if len(values) > 16 * PROBE_VALUES:
            _parse(values.slice(0, PROBE_VALUES), target)
        return _parse(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _parse(values: pa.Array, target: pa.DataType | str) -> pa.Array:
    if (
        not isinstance(target, str)
        and pa.types.is_timestamp(target)
        and len(values)
        and _ZONE_NAMED.search(values[0].as_py() or "")
    ):
        # BigQuery and many logs name the zone: `2024-01-31 14:35:00.123 UTC` is ISO 8601 in
        # UTC (the record encoder reads clients' values the same way).
        values = pc.replace_substring_regex(values, _ZONE_NAMED.pattern, "+00:00")
    if isinstance(target, str):
        parsed = pc.strptime(values, format=target, unit=TIMESTAMP_UNIT, error_is_null=False)
        if (
            target.startswith(("%H", "%I"))
            and not pc.all(pc.match_substring_regex(values, _TIME_OF_DAY)).as_py()
        ):
            raise pa.ArrowInvalid(f"not a time of day under {target}")
        # Arrow's %Y takes one to four digits: "1/5/24" is not the year 24 under "%m/%d/%Y"
        # (a short-year format reads it).
        if "%Y" in target and len(parsed):
            first = pc.min(pc.year(parsed)).as_py()
            if first is not None and first < 1000:
                raise pa.ArrowInvalid(f"a year of fewer than four digits under {target}")
        return parsed
    return pc.cast(values, target)


def _formatted_numbers(values: pa.Array, decimal_comma: bool = False) -> pa.Array | None:
    """Non-null strings as float64 when every one is a number written with a currency sign,
    thousands separators or a percent sign, or (``decimal_comma``) a decimal comma."""
    values = pc.replace_substring_regex(values, ACCOUNTING_NEGATIVE, r"-\1")
    pattern = COMMA_DECIMAL_NUMBER if decimal_comma else FORMATTED_NUMBER
    if not pc.all(pc.match_substring_regex(values, pattern)).as_py():
        return None
    return _parse_formatted(values, decimal_comma)


def _parse_formatted(values: pa.Array, decimal_comma: bool = False) -> pa.Array:
    values = pc.replace_substring(values, "−", "-")
    values = pc.replace_substring_regex(values, ACCOUNTING_NEGATIVE, r"-\1")
    if decimal_comma:
        plain = pc.replace_substring_regex(values, _COMMA_DECIMAL_DECORATION, "")
        return pc.cast(pc.replace_substring(plain, ",", "."), pa.float64())
    return pc.cast(pc.replace_substring_regex(values, NUMBER_DECORATION, ""), pa.float64())


def as_string(values: pa.Array) -> pa.Array:
    """Text values as plain strings (a dictionary or large-string column decoded)."""
    if pa.types.is_dictionary(values.type) or pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    return values


@dataclass
class _Chunk:
    """One chunk of strings split into missing cells and values, with what the values fit."""

    cleaned: pa.Array  # trimmed, tokens and nulls as null
    token_counts: Counter[str]
    values: int
    fits: list[str | pa.DataType]  # "int", "float", "formatted", "bool", datetime targets


def _zero_padded(values: pa.Array) -> bool:
    """Whole numbers written as codes: all as wide, at least three digits, some with a leading
    zero (ZIP codes' 02134, county codes, account numbers). Read as numbers they lose it."""
    lengths = pc.min_max(pc.utf8_length(pc.utf8_trim_whitespace(values)))
    if lengths["min"].as_py() != lengths["max"].as_py() or (lengths["min"].as_py() or 0) < 3:
        return False
    return bool(pc.any(pc.starts_with(pc.utf8_trim_whitespace(values), "0")).as_py())


class ColumnBuilder:
    """Types one text column chunk by chunk and keeps the converted chunks.

    The kind starts from the first chunk with values (int, float, bool, datetime or text) and
    can only widen: int to float by casting what was kept; any other change (a date format
    ruled out later, numbers then words) needs the column's strings again, and `needs_reread`
    asks the caller to feed them once more (`reread`).
    """

    def __init__(
        self,
        name: str,
        tokens: tuple[str, ...] = MISSING_TOKENS,
        decimal_comma: bool = False,
        thousands_dots: bool = False,
    ) -> None:
        self.name = name
        self.tokens = tokens
        self.decimal_comma = decimal_comma  # "1,5" is one and a half (else "1,500" is 1500)
        # The file writes decimal commas elsewhere: "1.514" is 1514 even with no smaller number.
        self.thousands_dots = decimal_comma and thousands_dots
        self._lowered = _lowered_tokens(tokens)
        self.kind = "unknown"  # then int, float, formatted (numbers), bool, datetime, text
        self.target: pa.DataType | str | None = None  # the datetime parse in use
        self.datetime_fits: list[pa.DataType | str] = []
        self.chunks: list[pa.Array] = []
        self.token_counts: Counter[str] = Counter()
        self.missing = 0
        self.needs_reread = False
        self._unknown_tokens = False  # "?" seen before the kind was known

    def read_as_text(self) -> None:
        """Keep every value as written, as a column already found to hold text would."""
        self._start("text")

    # --- per chunk --------------------------------------------------------------------

    def add(self, chunk: pa.Array) -> None:
        """Type and keep one chunk of the column's strings."""
        if self.needs_reread:
            return
        chunk = as_string(chunk)
        if self.kind == "text":
            self.chunks.append(self._text(chunk))
            return
        fast = self._fast(chunk)
        if fast is not None:
            self.chunks.append(fast)
            return
        split = self._split(chunk)
        missing = len(chunk) - split.values
        if split.values == 0:
            self._count(split, missing)
            self._add_all_missing(chunk, split)
            return
        self._widen(split, missing)
        if self.needs_reread:
            return
        if self.kind == "text":
            self.chunks.append(self._text(chunk))
            return
        self._count(split, missing)
        self.chunks.append(self._convert(chunk, split))

    def _count(self, split: _Chunk, missing: int) -> None:
        self.token_counts.update(split.token_counts)
        self.missing += missing

    def _fast(self, chunk: pa.Array) -> pa.Array | None:
        """A clean numeric chunk (no padding, tokens or nulls) in one cast."""
        if chunk.null_count or self.kind not in ("unknown", "int", "float"):
            return None
        if self.decimal_comma and pc.any(pc.match_substring(chunk, ".")).as_py():
            return None  # `13.510` may be thirteen thousand: `_split` decides
        if self.kind in ("unknown", "int"):
            ints = _try_parse(chunk, pa.int64())
            if ints is not None and _zero_padded(chunk):
                return None  # `_split` reads it as the code it is
            if ints is not None:
                if self.kind == "unknown":
                    self._start("int")
                return ints if self.kind == "int" else ints.cast(pa.float64())
        floats = _try_parse(chunk, pa.float64())
        # NaN may be the token "NaN", inf one the operator added: leave such chunks to the
        # careful path.
        if floats is None or pc.any(pc.or_(pc.is_nan(floats), pc.is_inf(floats))).as_py():
            return None
        self._widen_to("float")
        return floats if not self.needs_reread else None

    def _split(self, chunk: pa.Array, classify: bool = True) -> _Chunk:
        trimmed = pc.utf8_trim_whitespace(chunk)
        is_token = pc.fill_null(pc.is_in(pc.utf8_lower(trimmed), value_set=self._lowered), True)
        counts: Counter[str] = Counter()
        tokens = pc.filter(trimmed, pc.and_(is_token, pc.is_valid(trimmed)))
        if len(tokens):
            for item in pc.value_counts(tokens).to_pylist():
                counts[item["values"]] += item["counts"]
        cleaned = pc.if_else(is_token, pa.scalar(None, pa.string()), trimmed)
        values = pc.drop_null(cleaned)
        fits: list[str | pa.DataType] = []
        dotted = self._dotted_fits(values) if len(values) and classify else None
        if dotted is not None:
            fits = dotted
        elif len(values) and classify:
            if _try_parse(values, pa.int64()) is not None:
                if not _zero_padded(values):
                    fits += ["int", "float", "formatted"]
            elif _try_parse(values, pa.float64()) is not None:
                fits += ["float", "formatted"]
            elif not pc.all(pc.match_substring_regex(values, r"\d")).as_py():
                # Every written number and date has a digit: words are bool or text, without
                # some forty failing parses (a 10,000-column table of words took a minute).
                if pc.all(pc.is_in(pc.utf8_lower(values), value_set=_BOOL_WORDS)).as_py():
                    fits.append("bool")
            elif _formatted_numbers(values, self.decimal_comma) is not None:
                fits.append("formatted")
            elif self._written_in_us_style(values):
                self.decimal_comma = False
                fits.append("formatted")
            elif pc.all(pc.match_substring_regex(values, r"\d\D*\d")).as_py():
                # (Every date form has two digits: codes like `A1` skip the formats.)
                candidates = self.datetime_fits or [*_ISO_TYPES, *DATETIME_FORMATS]
                fits += [c for c in candidates if _try_parse(values, c) is not None]
        return _Chunk(cleaned=cleaned, token_counts=counts, values=len(values), fits=fits)

    def _dotted_fits(self, values: pa.Array) -> list[str | pa.DataType] | None:
        """In a file whose decimal mark is a comma, what numbers written with a dot fit.

        Whole numbers with thousands dots beside numbers under a thousand written without
        (`13.510` and `998` items, as a German spreadsheet exports them) are read so; other
        numbers with a dot (`0.5`) have a decimal point, which reading the comma as the
        decimal mark would turn into 5. None: no number with a dot here (or no number).
        """
        if not self.decimal_comma or not pc.any(pc.match_substring(values, ".")).as_py():
            return None
        thousands = pc.match_substring_regex(values, _THOUSANDS_DOTS)
        small = pc.match_substring_regex(values, _UNDER_A_THOUSAND)
        if pc.all(pc.or_(thousands, small)).as_py() and (
            self.thousands_dots
            or self.kind == "formatted"
            or pc.any(small).as_py()
            or pc.any(pc.match_substring_regex(values, r"\.\d{3}\.")).as_py()
        ):
            return ["formatted"]
        if _try_parse(values, pa.float64()) is not None:
            return ["float"]
        return None

    def _written_in_us_style(self, values: pa.Array) -> bool:
        """In a file whose decimal mark is a comma, a column of numbers written the US way,
        told apart by a value with both marks (`1,234.50`): read with a decimal point. Only
        while what was kept holds no decimal comma (plain numbers read the same either way)."""
        if not self.decimal_comma or self.kind not in ("unknown", "int", "float"):
            return False
        if not pc.any(pc.match_substring_regex(values, _BOTH_MARKS)).as_py():
            return False
        return _formatted_numbers(values, decimal_comma=False) is not None

    def _add_all_missing(self, chunk: pa.Array, split: _Chunk) -> None:
        if self.kind == "unknown":
            self._unknown_tokens |= any(t for t in split.token_counts)
            self.chunks.append(pa.nulls(len(chunk)))
        elif self.kind == "bool":
            self._reread()  # booleans with missing values load as text
        else:
            self.chunks.append(self._convert(chunk, split))

    def _widen(self, split: _Chunk, missing: int) -> None:
        """Join the column's kind with what this chunk's values fit."""
        if not split.fits:
            self._widen_to("text")
        elif self.kind == "unknown":
            first = split.fits[0]
            if first in _KIND_TYPES:
                self._start(str(first))
            else:
                self.datetime_fits = list(split.fits)
                self.target = first
                self._start("datetime")
        elif self.kind == "datetime":
            kept = [c for c in self.datetime_fits if c in split.fits]
            if not kept or kept[0] != self.target:
                self._reread()  # chunks kept so far were parsed with a format now ruled out
            self.datetime_fits = kept
        elif self.kind not in split.fits:
            wider = next((k for k in ("float", "formatted") if k in split.fits), "text")
            self._widen_to(wider)
        if self.kind == "bool" and (missing or self.missing):
            self._reread()  # booleans with missing values load as text

    def _start(self, kind: str) -> None:
        """Fix the kind from the first chunk with values (kept chunks are all missing)."""
        if self._unknown_tokens and kind in ("text", "bool"):
            self._reread()  # the "?" cells seen so far are text values, not missing
            return
        self.kind = kind
        self.chunks = [c.cast(self._type()) for c in self.chunks]

    def _type(self) -> pa.DataType:
        if self.kind == "datetime":
            return self.target if isinstance(self.target, pa.DataType) else _STRPTIME_TYPE
        return _KIND_TYPES[self.kind]

    def _widen_to(self, kind: str) -> None:
        if self.kind == kind:
            return
        if self.kind == "unknown":
            self._start(kind)
        elif self.kind in ("int", "float") and kind in ("float", "formatted"):
            self.kind = kind  # numbers kept so far are the same numbers as floats
            self.chunks = [c.cast(pa.float64()) for c in self.chunks]
        else:
            self._reread()

    def _reread(self) -> None:
        self.needs_reread = True
        self.chunks = []

    def _convert(self, chunk: pa.Array, split: _Chunk) -> pa.Array:
        if self.kind == "text":
            return self._text(chunk)
        if self.kind == "bool":
            return pc.cast(pc.utf8_lower(split.cleaned), pa.bool_())
        if self.kind == "datetime":
            return _parse(split.cleaned, self.target)
        if self.kind == "formatted":
            return _parse_formatted(split.cleaned, self.decimal_comma)
        return pc.cast(split.cleaned, _KIND_TYPES[self.kind])

    def _text(self, chunk: pa.Array) -> pa.Array:
        # Spaces around a value are how it was written, not what it is: files written with
        # ", " between fields (UCI's adult census) would otherwise make " Private" a category
        # no client sends.
        chunk = pc.utf8_trim_whitespace(chunk)
        if "" in self.tokens:
            empty = pc.equal(chunk, "")
            empties = int(pc.sum(empty).as_py() or 0)
            if empties:
                self.token_counts[""] += empties
                chunk = pc.if_else(empty, pa.scalar(None, pa.string()), chunk)
        self.missing += chunk.null_count
        return pc.dictionary_encode(chunk)

    # --- whole column -----------------------------------------------------------------

    def reread(self, chunks: Iterable[pa.Array]) -> None:
        """Read the column again (after `needs_reread`): as datetime if one format still
        parses every value, else as text."""
        strings = [as_string(c) for c in chunks]
        candidates = self.datetime_fits if self.kind == "datetime" else []
        self.needs_reread, self._unknown_tokens = False, False
        for target in candidates:
            self.token_counts, self.missing, self.chunks = Counter(), 0, []
            self.target = target
            try:
                for chunk in strings:
                    split = self._split(chunk, classify=False)
                    self._count(split, len(chunk) - split.values)
                    self.chunks.append(_parse(split.cleaned, target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
            return
        self.kind, self.chunks = "text", []
        self.token_counts, self.missing = Counter(), 0
        for chunk in strings:
            self.chunks.append(self._text(chunk))

    def finish(self) -> pa.ChunkedArray:
        """The typed column (int with missing values as float, all-missing as float)."""
        if self.unresolved:
            raise RuntimeError(f"column {self.name!r} must be read again as text first")
        if self.kind == "unknown":
            self.kind = "empty"
            return pa.chunked_array([c.cast(pa.float64()) for c in self.chunks], pa.float64())
        if self.kind == "int" and self.missing:
            self.kind = "float"
            self.chunks = [c.cast(pa.float64()) for c in self.chunks]
        if self.kind == "text":
            empties = self.token_counts.get("", 0)
            self.token_counts = Counter({"": empties} if empties else {})
        target = self._type()
        return pa.chunked_array([c.cast(target) for c in self.chunks], target)

    @property
    def unresolved(self) -> bool:
        """True when the column must be read again as text before `finish`."""
        return self.needs_reread or (self.kind == "unknown" and self._unknown_tokens)

    def recognised(self) -> dict[str, int]:
        """The tokens read as missing in this column and how often."""
        return dict(self.token_counts)

    @property
    def read_decimal_comma(self) -> bool:
        """True for numbers read with a decimal comma (`1.234,5`, `12,5 %`)."""
        return self.kind == "formatted" and self.decimal_comma

    @property
    def date_format(self) -> str | None:
        """The strptime format a datetime column was read with (None for ISO 8601 or others)."""
        return self.target if self.kind == "datetime" and isinstance(self.target, str) else None


# Schema metadata key (JSON: column -> strptime format) of the datetime columns read with a
# format. The stored Parquet copy drops schema metadata, so datasets record it beside the file
# (meta.json); a model trained on such a column reads that text from clients as well as ISO 8601.
DATE_FORMATS_KEY = b"opsdeck.date_formats"


# ... and (JSON list) the number columns read with a decimal comma (`2.937,46`), which their
# endpoint reads so in clients' text too.
DECIMAL_COMMA_KEY = b"opsdeck.decimal_comma"


def with_date_formats(
    columns: list[pa.ChunkedArray],
    names: list[str],
    formats: dict[str, str],
    decimal_commas: Iterable[str] = (),
) -> pa.Table:
    """The table of `columns`, saying which datetime columns were read with which format, and
    which number columns with a decimal comma."""
    table = pa.table(columns, names=names)
    metadata = {}
    if formats:
        metadata[DATE_FORMATS_KEY] = json.dumps(formats).encode()
    if decimal_commas := sorted(decimal_commas):
        metadata[DECIMAL_COMMA_KEY] = json.dumps(decimal_commas).encode()
    return table.replace_schema_metadata(metadata) if metadata else table


def decimal_comma_columns(schema: pa.Schema) -> list[str]:
    """The number columns a table was read with a decimal comma."""
    raw = (schema.metadata or {}).get(DECIMAL_COMMA_KEY)
    return [str(c) for c in json.loads(raw)] if raw else []


def date_formats(schema: pa.Schema) -> dict[str, str]:
    """Column -> strptime format, of the datetime columns a table was read with a format."""
    raw = (schema.metadata or {}).get(DATE_FORMATS_KEY)
    return {str(k): str(v) for k, v in json.loads(raw).items()} if raw else {}


_STRPTIME_TYPE = pa.timestamp(TIMESTAMP_UNIT)
_KIND_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "formatted": pa.float64(),
    "bool": pa.bool_(),
    "text": TEXT,
}


def is_textual(data_type: pa.DataType) -> bool:
    """Strings (or dictionary-encoded strings): the columns whose type is learned."""
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


def normalize_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A typed (non-text) column in the form whose pandas dtype the schema alone predicts.

    Integers with missing values become float64 and booleans with missing values text, as
    pandas would load them; dates and second-resolution times become microsecond timestamps.
    """
    t = column.type
    if pa.types.is_null(t):
        return pa.chunked_array(
            [pa.nulls(len(c), pa.float64()) for c in column.chunks], pa.float64()
        )
    if pa.types.is_integer(t) and column.null_count:
        return column.cast(pa.float64())
    if pa.types.is_boolean(t) and column.null_count:
        return pa.chunked_array(
            [pc.dictionary_encode(c.cast(pa.string())) for c in column.chunks], TEXT
        )
    if pa.types.is_date(t):
        return column.cast(pa.timestamp(TIMESTAMP_UNIT))
    if pa.types.is_timestamp(t) and t.unit == "s":
        return column.cast(pa.timestamp(TIMESTAMP_UNIT, tz=t.tz))
    return column


def storage_type(data_type: pa.DataType) -> pa.DataType:
    """How a column is stored in Parquet: dictionary-encoded text as plain strings."""
    if pa.types.is_dictionary(data_type):
        return storage_type(data_type.value_type)
    if pa.types.is_large_string(data_type):
        return pa.string()
    return data_type


def storage_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of the stored Parquet copy (no pandas metadata, text as strings)."""
    return pa.schema([pa.field(f.name, storage_type(f.type)) for f in schema])


def pandas_dtypes(schema: pa.Schema) -> dict[str, str]:
    """The pandas dtype each stored column loads as."""
    return {str(f.name): _pandas_dtype(storage_type(f.type)) for f in schema}


@lru_cache(maxsize=256)
def _pandas_dtype(data_type: pa.DataType) -> str:
    empty = pa.table({"x": pa.array([], data_type)}).to_pandas()
    return str(empty.dtypes.iloc[0])


def to_storage(table: pa.Table) -> pa.Table:
    """The table in its stored schema (dictionary text decoded)."""
    return table.cast(storage_schema(table.schema))
