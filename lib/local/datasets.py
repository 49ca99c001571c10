"""Local datasets: immutable numbered versions, each a folder with the original file, a typed
Parquet copy, and the preview and profile computed once at registration.

Layout under `<home>/datasets/`: `<name>/v<N>/` (original.*, data.parquet, preview.arrow,
profile.json, meta.json), `.staging/<pid>-<id>/` while an upload is written, `.trash/` while a
delete removes files. Version numbers come from a per-name high-water mark, so a deleted name
starts again above its old versions and a bookmark never points to different data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from threading import Lock
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lib.files import atomic_write, fsync_dir
from lib.local.store import Store
from lib.settings import UploadLimits
from lib.tabular import (
    EXCEL_SUFFIXES,
    ORIGINAL_SUFFIXES,
    ParsedTable,
    date_formats,
    decimal_comma_columns,
    missing_words,
    normalize_tokens,
    profile_from_records,
    profile_records,
    read_preview,
    sentinel_values,
    write_parquet,
    write_preview,
)
from lib.workspace import Dataset, DatasetVersion, WorkspaceError, check_upload

DATA_FILE = "data.parquet"
PREVIEW_FILE = "preview.arrow"
PROFILE_FILE = "profile.json"
META_FILE = "meta.json"
PREVIEW_ROWS = 100
STAGING_DIR = ".staging"
TRASH_DIR = ".trash"
CACHE_ENTRIES = 16


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_version_files(
    folder: Path,
    parsed: ParsedTable,
    data: bytes,
    file_name: str,
    tokens: tuple[str, ...],
    sheet: str | None = None,
) -> None:
    """The original bytes, the typed copy, and the preview and profile pages will read."""
    suffix = ORIGINAL_SUFFIXES.get(parsed.file_format, ".csv")
    if parsed.file_format == "excel" and Path(file_name).suffix.lower() in EXCEL_SUFFIXES:
        suffix = Path(file_name).suffix.lower()  # an .xls or .ods file is not an .xlsx
    atomic_write(folder / f"original{suffix}", data)
    table = parsed.table
    atomic_write(folder / DATA_FILE, lambda tmp: write_parquet(table, tmp))
    preview = table.slice(0, PREVIEW_ROWS)
    atomic_write(folder / PREVIEW_FILE, lambda tmp: write_preview(preview, tmp))
    profile = {
        "rows": table.num_rows,
        "missing_tokens": list(tokens),
        "recognised": parsed.missing,
        "columns": profile_records(table, parsed.missing),
    }
    atomic_write(folder / PROFILE_FILE, json.dumps(profile).encode())
    meta = {
        "file_name": file_name,
        "missing_tokens": list(tokens),
        "date_formats": date_formats(table.schema),
        "missing_numbers": sentinel_values(parsed.missing, table.schema),
        "missing_words": missing_words(parsed.missing, table.schema),
        "decimal_comma": decimal_comma_columns(table.schema),
        "sheet": sheet or None,
    }
    atomic_write(folder / META_FILE, json.dumps(meta).encode())


def _meta(folder: Path) -> dict:
    """What a stored version recorded about its reading (empty for versions before it)."""
    path = folder / META_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def missing_numbers_in(folder: Path) -> dict[str, list[float]]:
    """Number column -> the values a stored version's upload read as missing (none before
    versions recorded them)."""
    found = _meta(folder).get("missing_numbers") or {}
    return {str(k): [float(v) for v in vs] for k, vs in found.items()}


class LocalDatasets:
    """DatasetService over the local Store."""

    def __init__(
        self,
        store: Store,
        max_upload_bytes: int | None = None,
        *,
        limits: UploadLimits | None = None,
    ) -> None:
        self.store = store
        if limits is None:
            limits = (
                UploadLimits(max_upload_bytes=max_upload_bytes)
                if max_upload_bytes is not None
                else UploadLimits()
            )
        self.limits = limits
        self.root = store.artifacts("datasets")
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._cache_lock = Lock()
        self.recover()

    @property
    def max_upload_bytes(self) -> int:
        return self.limits.max_upload_bytes

    # --- writing ------------------------------------------------------------------------

    def upload(
        self,
        name: str,
        data: bytes,
        file_name: str,
        description: str = "",
        missing_tokens: Iterable[str] | None = None,
        sheet: str | None = None,
    ) -> DatasetVersion:
        tokens = normalize_tokens(missing_tokens)
        name, parsed = check_upload(name, file_name, data, self.limits, tokens, sheet)
        rows, columns, file_format = parsed.rows, parsed.columns, parsed.file_format
        # Files go to a staging folder outside the name's folder (a delete never touches it);
        # the version number is allocated inside the write transaction.
        staging = self.root / STAGING_DIR / f"{os.getpid()}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            _write_version_files(staging, parsed, data, file_name, tokens, sheet)
            del parsed  # the typed table is on disk now; free it before committing
            version = self._commit(
                name, description, file_name, file_format, staging, data, rows, columns
            )
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return self.get(name, version)

    def _commit(
        self,
        name: str,
        description: str,
        file_name: str,
        file_format: str,
        staging: Path,
        data: bytes,
        rows: int,
        columns: list[str],
    ) -> int:
        sha = hashlib.sha256(data).hexdigest()
        with self.store.transaction() as tx:
            created = _now()
            tx.execute(
                "INSERT OR IGNORE INTO datasets(name, description, created) VALUES (?, ?, ?)",
                (name, description, created),
            )
            if description:
                tx.execute("UPDATE datasets SET description=? WHERE name=?", (description, name))
            row = tx.execute(
                """SELECT MAX(COALESCE((SELECT version FROM dataset_high_water WHERE name=?), 0),
                              COALESCE((SELECT MAX(version) FROM dataset_versions WHERE name=?), 0))
                   + 1""",
                (name, name),
            ).fetchone()
            version = int(row[0])
            tx.execute(
                """INSERT INTO dataset_high_water(name, version) VALUES (?, ?)
                   ON CONFLICT(name) DO UPDATE SET version=excluded.version""",
                (name, version),
            )
            folder = self.root / name
            folder.mkdir(exist_ok=True)
            final = folder / f"v{version}"
            if final.exists():  # left over from a crash between rename and commit
                self._to_trash(final)
            staging.rename(final)
            fsync_dir(folder)
            try:
                tx.execute(
                    """INSERT INTO dataset_versions(name, version, description, file_name,
                       file_format, rows, columns, column_names, size_bytes, sha256, path, created)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        name,
                        version,
                        description,
                        file_name,
                        file_format,
                        rows,
                        len(columns),
                        json.dumps(columns),
                        len(data),
                        sha,
                        str(final.relative_to(self.store.home)),
                        created,
                    ),
                )
            except BaseException:
                # The row never committed: the version folder must not outlive it.
                shutil.rmtree(final, ignore_errors=True)
                raise
        return version

    def delete(self, name: str) -> None:
        """Delete every version of `name`; its numbers are not reused by later uploads."""
        moved: list[Path] = []
        with self.store.transaction() as tx:
            found = tx.execute("SELECT 1 FROM datasets WHERE name=?", (name,)).fetchone()
            if not found:
                raise WorkspaceError(f"Dataset {name} does not exist.")
            paths = [
                self.store.home / r["path"]
                for r in tx.execute("SELECT path FROM dataset_versions WHERE name=?", (name,))
            ]
            tx.execute("DELETE FROM dataset_versions WHERE name=?", (name,))
            tx.execute("DELETE FROM datasets WHERE name=?", (name,))
            # Only the folders of the rows deleted here, moved while the write lock is held:
            # an upload committing right after this transaction keeps its new folder.
            for path in paths:
                if path.exists():
                    moved.append(self._to_trash(path))
            try:
                (self.root / name).rmdir()
            except OSError:
                pass
        for path in moved:
            shutil.rmtree(path, ignore_errors=True)
        with self._cache_lock:
            for key in [k for k in self._cache if k[0] == name]:
                self._cache.pop(key, None)

    def _to_trash(self, path: Path) -> Path:
        trash = self.root / TRASH_DIR
        trash.mkdir(exist_ok=True)
        target = trash / uuid.uuid4().hex
        path.rename(target)
        fsync_dir(path.parent)
        return target

    def recover(self) -> None:
        """Remove what a crash left behind: staging folders, trash, folders without a row."""
        staging_root = self.root / STAGING_DIR
        if staging_root.is_dir():
            for folder in staging_root.iterdir():
                pid = folder.name.split("-", 1)[0]
                if not pid.isdigit() or not _pid_alive(int(pid)):
                    shutil.rmtree(folder, ignore_errors=True)
        for legacy in self.root.glob("*/.staging-*"):
            shutil.rmtree(legacy, ignore_errors=True)
        trash = self.root / TRASH_DIR
        if trash.is_dir():
            for folder in trash.iterdir():
                shutil.rmtree(folder, ignore_errors=True)
        folders = [p for p in self.root.glob("*/v*") if p.is_dir() and p.name[1:].isdigit()]
        if not folders:
            return
        moved = []
        with self.store.transaction() as tx:
            known = {r["path"] for r in tx.execute("SELECT path FROM dataset_versions")}
            for folder in folders:
                if folder.exists() and str(folder.relative_to(self.store.home)) not in known:
                    moved.append(self._to_trash(folder))
        for path in moved:
            shutil.rmtree(path, ignore_errors=True)

    # --- reading ------------------------------------------------------------------------

    def _row_to_version(self, row) -> DatasetVersion:
        return DatasetVersion(
            name=row["name"],
            version=row["version"],
            description=row["description"],
            file_name=row["file_name"],
            file_format=row["file_format"],
            rows=row["rows"],
            columns=row["columns"],
            size_bytes=row["size_bytes"],
            sha256=row["sha256"],
            created=datetime.fromisoformat(row["created"]),
            column_names=json.loads(row["column_names"]),
            uri=str(self.store.home / row["path"]),
        )

    def list(self) -> list[Dataset]:
        rows = (
            self.store.connect()
            .execute(
                """SELECT d.name, d.description AS ddesc, d.created AS dcreated, v.*,
                      (SELECT COUNT(*) FROM dataset_versions WHERE name = d.name) AS n_versions
               FROM datasets d JOIN dataset_versions v ON v.name = d.name
               WHERE v.version = (SELECT MAX(version) FROM dataset_versions WHERE name = d.name)
               ORDER BY v.created DESC, d.name"""
            )
            .fetchall()
        )
        return [
            Dataset(
                name=r["name"],
                latest_version=r["version"],
                versions=r["n_versions"],
                description=r["ddesc"],
                rows=r["rows"],
                columns=r["columns"],
                size_bytes=r["size_bytes"],
                created=datetime.fromisoformat(r["dcreated"]),
                updated=datetime.fromisoformat(r["created"]),
            )
            for r in rows
        ]

    def versions(self, name: str) -> list[DatasetVersion]:
        rows = (
            self.store.connect()
            .execute("SELECT * FROM dataset_versions WHERE name=? ORDER BY version DESC", (name,))
            .fetchall()
        )
        return [self._row_to_version(r) for r in rows]

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        conn = self.store.connect()
        if version is None:
            row = conn.execute(
                "SELECT * FROM dataset_versions WHERE name=? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT * FROM dataset_versions WHERE name=? AND version=?", (name, int(version))
            ).fetchone()
        if row is None:
            label = name if version is None else f"{name} v{version}"
            raise WorkspaceError(f"Dataset {label} does not exist.")
        return self._row_to_version(row)

    def load(self, name: str, version: int | None = None) -> pd.DataFrame:
        return pd.read_parquet(Path(self.get(name, version).uri) / DATA_FILE)

    def date_formats(self, name: str, version: int | None = None) -> dict[str, str]:
        """Column -> the strptime format its dates were written in (non-ISO datetime columns)."""
        return dict(_meta(Path(self.get(name, version).uri)).get("date_formats") or {})

    def number_reading(
        self, name: str, version: int | None = None
    ) -> tuple[list[str], dict[str, list[str]]]:
        """How the upload read text as numbers and dates, for endpoints to read clients' text
        so: the columns read with a decimal comma, and column -> words read as missing."""
        meta = _meta(Path(self.get(name, version).uri))
        words = {str(k): [str(w) for w in v] for k, v in (meta.get("missing_words") or {}).items()}
        return [str(c) for c in meta.get("decimal_comma") or []], words

    def missing_numbers(self, name: str, version: int | None = None) -> dict[str, list[float]]:
        """Number column -> the values its upload read as missing (the operator's -999)."""
        return missing_numbers_in(Path(self.get(name, version).uri))

    def _cached(self, key: tuple[str, str], compute):
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return value

    def _stored_preview(self, folder: Path) -> pd.DataFrame:
        path = folder / PREVIEW_FILE
        if not path.exists():  # a version registered before previews were stored
            parquet = pq.ParquetFile(folder / DATA_FILE)
            head = next(parquet.iter_batches(batch_size=PREVIEW_ROWS), None)
            table = (
                pa.Table.from_batches([head])
                if head is not None
                else parquet.schema_arrow.empty_table()
            )
            atomic_write(path, lambda tmp: write_preview(table, tmp))
        return read_preview(path)

    def _stored_profile(self, folder: Path) -> dict:
        path = folder / PROFILE_FILE
        if not path.exists():  # a version registered before profiles were stored
            table = pq.read_table(folder / DATA_FILE)
            profile = {
                "rows": table.num_rows,
                "missing_tokens": None,
                "recognised": {},
                "columns": profile_records(table),
            }
            atomic_write(path, json.dumps(profile).encode())
            return profile
        return json.loads(path.read_text())

    def preview(self, name: str, version: int | None = None, rows: int = 100) -> pd.DataFrame:
        dv = self.get(name, version)
        if rows > PREVIEW_ROWS:
            return self.load(name, dv.version).head(rows)
        key = (dv.name, f"preview-v{dv.version}-{dv.sha256}")
        frame = self._cached(key, lambda: self._stored_preview(Path(dv.uri)))
        return frame.head(rows).copy()

    def profile(self, name: str, version: int | None = None) -> pd.DataFrame:
        """The column profile stored at registration (computed once for older versions)."""
        dv = self.get(name, version)
        key = (dv.name, f"profile-v{dv.version}-{dv.sha256}")
        stored = self._cached(key, lambda: self._stored_profile(Path(dv.uri)))
        return profile_from_records(stored["columns"])

    def download(self, name: str, version: int | None = None) -> tuple[str, bytes]:
        dv = self.get(name, version)
        original = next(Path(dv.uri).glob("original.*"))
        return dv.file_name, original.read_bytes()
