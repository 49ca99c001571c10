"""Compressed uploads: a gzip, bzip2 or xz file, or a zip archive holding one table (or a
training table beside others), read as the file inside.

Data portals hand out `adult.data.gz`, `covtype.data.bz2` and `telco-churn.zip`; a competition's
zip holds `train.csv` beside `test.csv` and a sample submission, and `train.csv` is read. A
spreadsheet is a zip too, and is left to the spreadsheet reader. What is inflated is counted against the decoded-size limit as it
is inflated (an archive's declared sizes can lie), so a small bomb never becomes a big buffer.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from lib.settings import UploadLimits
from lib.tabular.excel import WORKBOOK_PARTS, ZIP_MAGIC
from lib.tabular.limits import TableError

GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = re.compile(rb"BZh[1-9]1AY&SY")
XZ_MAGIC = b"\xfd7zXZ\x00"
# A compressed stream: how it begins, its name, how to open it, the suffixes it adds.
_STREAMS = (
    (re.compile(re.escape(GZIP_MAGIC)), "gzip", gzip.open, (".gz", ".gzip")),
    (BZIP2_MAGIC, "bzip2", bz2.open, (".bz2",)),
    (re.compile(re.escape(XZ_MAGIC)), "xz", lzma.open, (".xz",)),
)
# The table to train on among several in an archive: `train.csv`, `training_data.csv`, `adult_train`.
_TRAINING = re.compile(r"(^|[^a-z])train(ing)?([^a-z]|$)", re.IGNORECASE)
# Members of a zip archive that can be the table (anything else is a readme, a licence, ...).
TABLE_SUFFIXES = (
    ".csv",
    ".tsv",
    ".tab",
    ".psv",
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
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Unpacked:
    """The file to read, and where it came from when it was inside an archive."""

    file_name: str
    data: bytes
    archive: str | None = None  # "gzip", "bzip2", "xz" or "zip"
    others: tuple[str, ...] = ()  # the other tables of a zip archive, when it holds several


def unpack(file_name: str, data: bytes, limits: UploadLimits) -> Unpacked:
    """The table file inside a compressed file or a zip archive (not a workbook); else as
    given."""
    for magic, kind, opener, suffixes in _STREAMS:
        if magic.match(data[:16]):
            inner = _inflate(data, limits, kind, opener)
            if _compressed(inner):
                raise TableError("The file is compressed twice: upload the table file itself.")
            return Unpacked(_without_suffix(file_name, suffixes), inner, kind)
    if data[:4] == ZIP_MAGIC and not _is_workbook(data):
        name, inner, others = _unzip(data, limits)
        return Unpacked(name, inner, "zip", others)
    return Unpacked(file_name, data)


def _compressed(data: bytes) -> bool:
    if any(magic.match(data[:16]) for magic, *_ in _STREAMS):
        return True
    return data[:4] == ZIP_MAGIC and not _is_workbook(data)


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


def _inflate(data: bytes, limits: UploadLimits, kind: str, opener: Callable) -> bytes:
    limit = _inflated_limit(limits)
    out = io.BytesIO()
    try:
        with opener(io.BytesIO(data)) as stream:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
                if out.tell() > limit:
                    raise _too_big(limit)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
        raise TableError(f"The {kind} file does not decompress ({exc}).") from exc
    return out.getvalue()


def _is_workbook(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError):
        return True  # let the spreadsheet reader say what is wrong with it
    return any(part in names for part in WORKBOOK_PARTS)


def _unzip(data: bytes, limits: UploadLimits) -> tuple[str, bytes, tuple[str, ...]]:
    """The one table in a zip archive, or its one training table beside others (folders,
    hidden files and macOS metadata ignored); and the names of the others."""
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
        others: tuple[str, ...] = ()
        training = [i for i in tables if _TRAINING.search(PurePosixPath(i.filename).stem)]
        if len(tables) > 1 and len(training) == 1:
            others = tuple(i.filename for i in tables if i is not training[0])
            tables = training
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
    return PurePosixPath(info.filename).name, out.getvalue(), others
