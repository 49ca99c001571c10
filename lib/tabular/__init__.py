"""Reading uploaded tables (CSV, Parquet) within the upload limits, typing columns, profiling.

Pure functions of bytes and Arrow tables, shared by both backends and the Score page.
"""

from lib.tabular.columns import (
    MISSING_TOKENS,
    date_formats,
    decimal_comma_columns,
    normalize_tokens,
    pandas_dtypes,
)
from lib.tabular.csv_text import CSV_DELIMITERS, SNIFF_MAX_BYTES, choose_delimiter
from lib.tabular.file_layout import FileLayout, layout_of
from lib.tabular.limits import TableError
from lib.tabular.profile import (
    HISTOGRAM_BINS,
    PROFILE_COLUMNS,
    format_tokens,
    profile_frame,
    profile_from_records,
    profile_records,
)
from lib.tabular.reading import (
    EXCEL_SUFFIXES,
    ORIGINAL_SUFFIXES,
    ParsedTable,
    detect_format,
    frame_to_table,
    parse_csv,
    parse_parquet,
    parse_table,
    read_preview,
    table_to_frame,
    to_parquet_bytes,
    write_parquet,
    write_preview,
)
from lib.tabular.sentinels import missing_words, sentinel_values

__all__ = [
    "missing_words",
    "sentinel_values",
    "date_formats",
    "decimal_comma_columns",
    "CSV_DELIMITERS",
    "HISTOGRAM_BINS",
    "EXCEL_SUFFIXES",
    "MISSING_TOKENS",
    "ORIGINAL_SUFFIXES",
    "PROFILE_COLUMNS",
    "SNIFF_MAX_BYTES",
    "FileLayout",
    "ParsedTable",
    "TableError",
    "choose_delimiter",
    "detect_format",
    "format_tokens",
    "frame_to_table",
    "layout_of",
    "normalize_tokens",
    "pandas_dtypes",
    "parse_csv",
    "parse_parquet",
    "parse_table",
    "profile_frame",
    "profile_from_records",
    "profile_records",
    "read_preview",
    "table_to_frame",
    "to_parquet_bytes",
    "write_parquet",
    "write_preview",
]
