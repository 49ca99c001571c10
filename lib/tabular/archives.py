"""Compressed uploads: a gzip file, or a zip archive holding one table, read as the file inside.

Data portals hand out `adult.data.gz` and `telco-churn.zip`; a spreadsheet is a zip too, and is
left to the spreadsheet reader. What is inflated is counted against the decoded-size limit as it
is inflated (an archive's declared sizes can lie), so a small bomb never becomes a big buffer.
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from lib.settings import UploadLimits
from lib.tabular.excel import WORKBOOK_PARTS, ZIP_MAGIC
from lib.tabular.limits import TableError

GZIP_MAGIC = b"\x1f\x8b"
# Members of a zip archive that can be the table (anything else is a readme, a licence, ...).
TABLE_SUFFIXES = (
    ".csv",
    ".tsv",
    ".txt",
    ".data",
    ".dat",
    ".arff",
    ".json",
    ".jsonl",
    ".ndjson",
    ".geojson",
    ".sav",
    ".zsav",
    ".dta",
    ".xpt",
    ".sas7bdat",
    ".parquet",
    ".pq",
    ".xlsx",
    ".xlsm",
    ".xlsb",
    ".xls",
    ".ods",
)
# What the upload form accepts: a table file, or one compressed.
UPLOAD_SUFFIXES = (*TABLE_SUFFIXES, ".gz", ".zip")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Unpacked:
    """The file to read, and where it came from when it was inside an archive."""

    file_name: str
    data: bytes
    archive: str | None = None  # "gzip" or "zip"


def unpack(file_name: str, data: bytes, limits: UploadLimits) -> Unpacked:
    """The table file inside a gzip file or a zip archive (not a workbook); else as given."""
    if data[:2] == GZIP_MAGIC:
        inner = _gunzip(data, limits)
        if inner[:2] == GZIP_MAGIC or (inner[:4] == ZIP_MAGIC and not _is_workbook(inner)):
            raise TableError("The file is compressed twice: upload the table file itself.")
        return Unpacked(_without_suffix(file_name, (".gz", ".gzip")), inner, "gzip")
    if data[:4] == ZIP_MAGIC and not _is_workbook(data):
        name, inner = _unzip(data, limits)
        return Unpacked(name, inner, "zip")
    return Unpacked(file_name, data)


def _without_suffix(file_name: str, suffixes: tuple[str, ...]) -> str:
    lower = file_name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return file_name


def _inflated_limit(limits: UploadLimits) -> int:
    # The file inside is held whole, as an uncompressed upload is: the same limit.
    return min(limits.max_uncompressed_bytes, limits.max_upload_bytes)


def _too_big(limit: int) -> TableError:
    return TableError(
        f"The compressed file inflates past {limit / (1024 * 1024):g} MB, the limit for the "
        "table file inside: upload a smaller table."
    )


def _gunzip(data: bytes, limits: UploadLimits) -> bytes:
    limit = _inflated_limit(limits)
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
                if out.tell() > limit:
                    raise _too_big(limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise TableError(f"The gzip file does not decompress ({exc}).") from exc
    return out.getvalue()


def _is_workbook(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError):
        return True  # let the spreadsheet reader say what is wrong with it
    return any(part in names for part in WORKBOOK_PARTS)


def _unzip(data: bytes, limits: UploadLimits) -> tuple[str, bytes]:
    """The one table in a zip archive (folders, hidden files and macOS metadata ignored)."""
    limit = _inflated_limit(limits)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = [
            info
            for info in archive.infolist()
            if not info.is_dir()
            and not info.filename.startswith("__MACOSX/")
            and not PurePosixPath(info.filename).name.startswith(".")
        ]
        tables = [i for i in files if i.filename.lower().endswith(TABLE_SUFFIXES)]
        # A .txt beside a .csv is its readme; alone, it may be the (tab-separated) table.
        named = [i for i in tables if not i.filename.lower().endswith(".txt")]
        tables = named or tables
        if not tables:
            shown = ", ".join(i.filename for i in files[:5]) or "nothing"
            raise TableError(
                f"The zip archive holds no CSV, Parquet or spreadsheet file (it holds {shown})."
            )
        if len(tables) > 1:
            shown = ", ".join(i.filename for i in tables[:5])
            more = f" and {len(tables) - 5} more" if len(tables) > 5 else ""
            raise TableError(
                f"The zip archive holds {len(tables)} tables ({shown}{more}): "
                "upload the one to register."
            )
        info = tables[0]
        if info.flag_bits & 0x1:
            raise TableError("The zip archive is encrypted: upload the table file itself.")
        if info.file_size > limit:
            raise _too_big(limit)
        out = io.BytesIO()
        try:
            with archive.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    out.write(chunk)
                    if out.tell() > limit:
                        raise _too_big(limit)
        except (zipfile.BadZipFile, NotImplementedError, zlib.error, EOFError) as exc:
            raise TableError(f"The zip archive does not decompress ({exc}).") from exc
    return PurePosixPath(info.filename).name, out.getvalue()
