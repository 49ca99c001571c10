"""Files of statistics packages (SPSS `.sav`/`.zsav`, Stata `.dta`, SAS `.xpt`/`.sas7bdat`)
as Arrow tables.

Read with pyreadstat (ReadStat) from the bytes, in chunks: the declared rows and columns are
checked against the upload limits before any row is decoded, then each chunk before the next.
The reader is C code that a damaged or hostile `.sav` file can crash (a fuzzed `.sav` ends the
process with a segmentation fault), so it runs in a child process: the page survives any file.
Value labels become the values (`1` labelled "male" reads "male"), user-defined and extended
missing values (SPSS's 99 = "refused", Stata's `.a`) are missing, dates are dates.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from lib.settings import UploadLimits
from lib.tabular.limits import TableError, check_columns, check_decoded_size, check_rows

CHUNK_ROWS = 100_000
# A file the reader has not finished in this long is refused (a hostile file may loop).
READ_TIMEOUT_S = 300
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding `lib`
_REFUSED = 2
# kind -> (what the operator calls it, the reader's function name)
KINDS = {
    "spss": ("SPSS", "read_sav"),
    "stata": ("Stata", "read_dta"),
    "xport": ("SAS transport", "read_xport"),
    "sas7bdat": ("SAS", "read_sas7bdat"),
}
SUFFIXES = {
    ".sav": "spss",
    ".zsav": "spss",
    ".dta": "stata",
    ".xpt": "xport",
    ".sas7bdat": "sas7bdat",
}
_MAGIC = (
    (b"$FL2", "spss"),
    (b"$FL3", "spss"),  # compressed (.zsav)
    (b"<stata_dta>", "stata"),  # Stata 13 and later
    (b"HEADER RECORD*******LIB", "xport"),
    (bytes.fromhex("000000000000000000000000c2ea8160b31411cfbd92080009c7318c181f1011"), "sas7bdat"),
)


def stat_format(file_name: str, data: bytes) -> str | None:
    """ "spss", "stata", "xport" or "sas7bdat" from the file's first bytes (or its name);
    None for any other file."""
    for magic, kind in _MAGIC:
        if data[: len(magic)] == magic:
            return kind
    if _old_stata(data):
        return "stata"
    lower = file_name.lower()
    return next((kind for suffix, kind in SUFFIXES.items() if lower.endswith(suffix)), None)


def _old_stata(data: bytes) -> bool:
    # Stata 8-12: format 113-115, byte order 1 or 2, file type 1, then a zero byte.
    return (
        len(data) > 4
        and data[0] in (113, 114, 115)
        and data[1] in (1, 2)
        and data[2:4] == b"\x01\x00"
    )


def read_stat_file(kind: str, data: bytes, limits: UploadLimits) -> pa.Table:
    """The file's table within `limits`, read in a child process; refuses what does not read
    (or stops the reader), with the reason."""
    label = KINDS[kind][0]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    args = [str(limits.max_rows), str(limits.max_columns), str(limits.max_uncompressed_bytes)]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lib.tabular.stat_files", kind, *args],
            input=data,
            capture_output=True,
            timeout=READ_TIMEOUT_S,
            env=env,
            cwd=_ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TableError(
            f"The {label} file was not read within {READ_TIMEOUT_S} s: refused."
        ) from exc
    if done.returncode == _REFUSED:
        raise TableError(done.stderr.decode("utf-8", errors="replace").strip())
    if done.returncode != 0:
        raise TableError(
            f"The file is not a readable {label} file (the reader stopped on it, "
            f"exit {done.returncode})."
        )
    with pa.ipc.open_stream(done.stdout) as stream:
        return stream.read_all()


def _read(kind: str, data: bytes, limits: UploadLimits) -> pa.Table:
    """The file's table within `limits` (in this process)."""
    import pyreadstat  # noqa: PLC0415 - only these files need it

    label, function = KINDS[kind]
    read: Callable[..., Any] = getattr(pyreadstat, function)
    parts: list[pa.Table] = []
    rows = decoded = 0
    try:
        _, meta = read(io.BytesIO(data), metadataonly=True)
        if meta.number_rows is not None:
            check_rows(int(meta.number_rows), limits)
        check_columns(int(meta.number_columns or 0), limits)
        for chunk in _chunks(read, data, kind):
            rows += len(chunk)
            check_rows(rows, limits, at_least=True)
            table = pa.Table.from_pandas(_plain(chunk), preserve_index=False)
            decoded += table.nbytes
            check_decoded_size(decoded, limits, at_least=True)
            parts.append(table)
    except TableError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader's errors are many and all mean "unreadable"
        raise TableError(f"The file is not a readable {label} file ({exc}).") from exc
    if rows == 0:
        raise TableError(f"The {label} file has no rows.")
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TableError(f"The {label} file's columns change type ({exc}).") from exc


def _chunks(read: Callable[..., Any], data: bytes, kind: str) -> Iterator[pd.DataFrame]:
    offset = 0
    while True:
        chunk, _ = read(
            io.BytesIO(data),
            row_offset=offset,
            row_limit=CHUNK_ROWS,
            **({"apply_value_formats": True} if kind in ("spss", "stata") else {}),
        )
        if len(chunk):
            yield chunk
        if len(chunk) < CHUNK_ROWS:
            return
        offset += len(chunk)


def _plain(chunk: pd.DataFrame) -> pd.DataFrame:
    """Labelled values as their labels (text), timestamps in microseconds."""
    out = {}
    for name, column in chunk.items():
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object).map(_text)
        elif pd.api.types.is_datetime64_any_dtype(column):
            column = column.astype("datetime64[us]")
        elif column.dtype == object:
            column = column.map(_text)
        out[str(name)] = column
    return pd.DataFrame(out)


def _text(value: object) -> object:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else str(value)


def main() -> None:
    """The child: the file on stdin, its table as an Arrow stream on stdout; a refusal's
    reason on stderr with exit status 2."""
    kind, rows, columns, decoded = sys.argv[1], *map(int, sys.argv[2:5])
    limits = UploadLimits(
        max_upload_bytes=sys.maxsize,
        max_rows=rows,
        max_columns=columns,
        max_uncompressed_bytes=decoded,
    )
    try:
        table = _read(kind, sys.stdin.buffer.read(), limits)
    except TableError as exc:
        sys.stderr.write(str(exc))
        sys.exit(_REFUSED)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    sys.stdout.buffer.write(sink.getvalue().to_pybytes())


if __name__ == "__main__":
    main()
