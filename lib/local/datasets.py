"""Local datasets: immutable numbered versions, original bytes plus a typed Parquet copy."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from lib.files import atomic_write
from lib.local.store import Store
from lib.tabular import profile_frame, to_parquet_bytes
from lib.workspace import Dataset, DatasetVersion, WorkspaceError, check_upload


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class LocalDatasets:
    """DatasetService over the local Store."""

    def __init__(self, store: Store, max_upload_bytes: int) -> None:
        self.store = store
        self.max_upload_bytes = max_upload_bytes
        self.root = store.artifacts("datasets")

    def upload(
        self, name: str, data: bytes, file_name: str, description: str = ""
    ) -> DatasetVersion:
        name, parsed = check_upload(name, file_name, data, self.max_upload_bytes)
        frame = parsed.frame
        sha = hashlib.sha256(data).hexdigest()
        # Files go to a unique staging folder first; the version number is allocated inside
        # the write transaction so concurrent uploads of one name get distinct versions.
        staging = self.root / name / f".staging-{sha[:12]}-{datetime.now(UTC).timestamp():.6f}"
        staging.mkdir(parents=True, exist_ok=True)
        suffix = ".parquet" if parsed.file_format == "parquet" else ".csv"
        try:
            atomic_write(staging / f"original{suffix}", data)
            atomic_write(staging / "data.parquet", to_parquet_bytes(frame))
            atomic_write(staging / "meta.json", json.dumps({"file_name": file_name}).encode())
            with self.store.transaction() as tx:
                created = _now()
                tx.execute(
                    "INSERT OR IGNORE INTO datasets(name, description, created) VALUES (?, ?, ?)",
                    (name, description, created),
                )
                if description:
                    tx.execute(
                        "UPDATE datasets SET description=? WHERE name=?", (description, name)
                    )
                row = tx.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE name=?",
                    (name,),
                ).fetchone()
                version = int(row[0])
                final = self.root / name / f"v{version}"
                if final.exists():  # left over from a crash before commit
                    shutil.rmtree(final)
                staging.rename(final)
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
                            parsed.file_format,
                            len(frame),
                            frame.shape[1],
                            json.dumps([str(c) for c in frame.columns]),
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
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return self.get(name, version)

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
        return pd.read_parquet(Path(self.get(name, version).uri) / "data.parquet")

    def preview(self, name: str, version: int | None = None, rows: int = 100) -> pd.DataFrame:
        return self.load(name, version).head(rows)

    def profile(self, name: str, version: int | None = None) -> pd.DataFrame:
        return profile_frame(self.load(name, version))

    def download(self, name: str, version: int | None = None) -> tuple[str, bytes]:
        dv = self.get(name, version)
        original = next(Path(dv.uri).glob("original.*"))
        return dv.file_name, original.read_bytes()

    def delete(self, name: str) -> None:
        with self.store.transaction() as tx:
            found = tx.execute("SELECT 1 FROM datasets WHERE name=?", (name,)).fetchone()
            if not found:
                raise WorkspaceError(f"Dataset {name} does not exist.")
            tx.execute("DELETE FROM dataset_versions WHERE name=?", (name,))
            tx.execute("DELETE FROM datasets WHERE name=?", (name,))
        shutil.rmtree(self.root / name, ignore_errors=True)
