"""Azure datasets: each version is a `uri_file` data asset whose tags carry the table's summary.

Versions are the strings "1", "2", ... on Azure and integers across the seam. The tags (rows,
columns, column names, sha256, original file name, format, size) let `list`/`get` answer without
downloading; the file itself is read back through an injectable `fetch_bytes(uri)`.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import pandas as pd
from azure.ai.ml.constants import AssetTypes, ListViewType
from azure.ai.ml.entities import Data
from azure.ai.ml.exceptions import AssetPathException
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from lib.azure.client import MLClientSource, azure_call
from lib.azure.values import created_at
from lib.errors import WorkspaceError
from lib.settings import UploadLimits
from lib.tabular import (
    EXCEL_SUFFIXES,
    ORIGINAL_SUFFIXES,
    ParsedTable,
    TableError,
    detect_format,
    normalize_tokens,
    parse_table,
    profile_from_records,
    profile_records,
    table_to_frame,
)
from lib.workspace import Dataset, DatasetVersion, check_upload

FetchBytes = Callable[[str], bytes]

CACHE_MAX_FILES = 4
CACHE_MAX_BYTES = 256 * 1024 * 1024
UPLOAD_ATTEMPTS = 3
PREVIEW_ROWS = 100
MISSING_TOKENS_TAG = "missing_tokens"
SHEET_TAG = "sheet"  # the workbook sheet the operator named at upload
ASSET_PATH_MESSAGE = "Asset paths cannot be updated"
SAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def fetch_datastore_file(ml_client: MLClientSource, uri: str) -> bytes:
    """Download one file of a datastore (`azureml://...`) with the SDK's artifact utilities."""
    if not uri.startswith("azureml://"):
        if Path(uri).is_file():
            return Path(uri).read_bytes()
        raise WorkspaceError(f"Cannot read {uri}: only azureml:// datastore paths are supported.")
    from azure.ai.ml._artifacts._artifact_utilities import download_artifact_from_aml_uri
    from azure.ai.ml._utils._storage_utils import AzureMLDatastorePathUri

    file_name = PurePosixPath(AzureMLDatastorePathUri(uri).path).name
    with azure_call(f"download {uri}"), tempfile.TemporaryDirectory() as tmp:
        download_artifact_from_aml_uri(uri, tmp, ml_client().datastores)
        target = Path(tmp, file_name)
        if not target.is_file():
            raise WorkspaceError(f"The datastore has no file at {uri}.")
        return target.read_bytes()


def is_version_clash(exc: HttpResponseError) -> bool:
    """The service refused to change an existing version's files (a racing upload took it).

    The SDK turns this answer into AssetPathException only when the error text is exactly its
    own constant; with the service's structured error body it stays an HttpResponseError.
    """
    return exc.status_code in (400, 409) and ASSET_PATH_MESSAGE in str(exc)


def _int_version(value: object) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() else None


def _int_tag(tags: dict[str, str], key: str) -> int:
    try:
        return int(tags.get(key, 0))
    except (TypeError, ValueError):
        return 0


def _column_names(tags: dict[str, str]) -> list[str]:
    try:
        names = json.loads(tags.get("column_names", "[]"))
    except ValueError:
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def to_dataset_version(data: Data) -> DatasetVersion:
    """Map a data asset version to the domain type (assets made elsewhere get zeros for unknowns)."""
    tags = dict(data.tags or {})
    uri = str(data.path or "")
    file_name = tags.get("file_name") or PurePosixPath(uri).name
    file_format = tags.get("format") or detect_format(file_name, b"")
    return DatasetVersion(
        name=str(data.name),
        version=_int_version(data.version) or 0,
        description=data.description or "",
        file_name=file_name,
        file_format=file_format,
        rows=_int_tag(tags, "rows"),
        columns=_int_tag(tags, "columns"),
        size_bytes=_int_tag(tags, "size_bytes"),
        sha256=tags.get("sha256", ""),
        created=created_at(data),
        column_names=_column_names(tags),
        uri=uri,
    )


def _staged_file_name(file_name: str, file_format: str) -> str:
    stem = SAFE_FILE_CHARS.sub("_", PurePosixPath(file_name.replace("\\", "/")).name).strip("._")
    suffix = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz", "zip": ".zip"}.get(
        file_format
    ) or ORIGINAL_SUFFIXES.get(file_format, ".csv")
    if not stem:
        return f"data{suffix}"
    kept = (suffix, ".pq", *EXCEL_SUFFIXES) if file_format == "excel" else (suffix, ".pq")
    return stem if stem.lower().endswith(kept) else f"{stem}{suffix}"


class AzureDatasets:
    """DatasetService over Azure ML data assets (`ml_client.data`)."""

    def __init__(
        self,
        ml_client: MLClientSource,
        max_upload_bytes: int | None = None,
        fetch_bytes: FetchBytes | None = None,
        *,
        limits: UploadLimits | None = None,
    ) -> None:
        self.ml_client = ml_client
        if limits is None:
            limits = (
                UploadLimits(max_upload_bytes=max_upload_bytes)
                if max_upload_bytes is not None
                else UploadLimits()
            )
        self.limits = limits
        self.max_upload_bytes = limits.max_upload_bytes
        self.fetch_bytes = fetch_bytes or (lambda uri: fetch_datastore_file(ml_client, uri))
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Versions are immutable: what was learned reading one (tokens, preview, profile)
        # stays true, so it is computed once per process.
        self._learned: OrderedDict[tuple[str, int, str], dict] = OrderedDict()

    # --- writing ------------------------------------------------------------------------

    def upload(
        self,
        name: str,
        data: bytes,
        file_name: str,
        description: str = "",
        missing_tokens: Sequence[str] | None = None,
        sheet: str | None = None,
    ) -> DatasetVersion:
        tokens = normalize_tokens(missing_tokens)
        name, parsed = check_upload(name, file_name, data, self.limits, tokens, sheet)
        tags = {
            "rows": str(parsed.rows),
            "columns": str(len(parsed.columns)),
            "column_names": json.dumps(parsed.columns),
            "sha256": hashlib.sha256(data).hexdigest(),
            "file_name": file_name,
            "format": parsed.file_format,
            "size_bytes": str(len(data)),
            # Read back with the same tokens, the file loads with the same dtypes.
            MISSING_TOKENS_TAG: json.dumps(list(tokens)),
            **({SHEET_TAG: sheet.strip()} if sheet and sheet.strip() else {}),
        }
        # A compressed upload is stored as uploaded; its reader unpacks it by its bytes.
        file_format = parsed.archive or parsed.file_format
        del parsed  # only the summary goes to Azure; free the table before the upload
        with tempfile.TemporaryDirectory(prefix="opsdeck-upload-") as tmp:
            staged = Path(tmp) / _staged_file_name(file_name, file_format)
            staged.write_bytes(data)
            # Another upload of the same name may take our version number between the listing
            # and the create. Data versions are immutable: the service refuses the second
            # create (409 → ResourceExistsError, or "Asset paths cannot be updated" →
            # AssetPathException when the files differ) and we take the next number.
            for _ in range(UPLOAD_ATTEMPTS):
                version = self._next_version(name)
                asset = Data(
                    name=name,
                    version=str(version),
                    type=AssetTypes.URI_FILE,
                    path=str(staged),
                    description=description,
                    tags=tags,
                )
                with azure_call(f"register dataset {name} v{version}"):
                    try:
                        created = self.ml_client().data.create_or_update(asset)
                    except (ResourceExistsError, AssetPathException):
                        continue
                    except HttpResponseError as exc:
                        if not is_version_clash(exc):
                            raise
                        continue
                return to_dataset_version(created)
        raise WorkspaceError(
            f"Could not register dataset {name}: other uploads kept taking the next version "
            "number; try again."
        )

    def _next_version(self, name: str) -> int:
        """One past the highest integer version, archived ones included (numbers are never reused)."""
        with azure_call(f"list the versions of dataset {name}"):
            try:
                existing = list(
                    self.ml_client().data.list(name=name, list_view_type=ListViewType.ALL)
                )
            except ResourceNotFoundError:
                existing = []
        numbers = [n for n in (_int_version(d.version) for d in existing) if n is not None]
        return max(numbers, default=0) + 1

    def delete(self, name: str) -> None:
        """Archive every version of `name`.

        Azure ML cannot hard-delete data assets: archived versions disappear from lists but stay
        readable by explicit version, their files stay in the datastore, and their numbers are
        not reused by later uploads of the same name.
        """
        active = self._active_versions(name)
        if not active:
            raise WorkspaceError(f"Dataset {name} does not exist.")
        ml = self.ml_client()
        with azure_call(f"archive dataset {name}", not_found=f"Dataset {name} does not exist."):
            for asset in active:
                ml.data.archive(name=name, version=str(asset.version))
        with self._cache_lock:
            for asset in active:
                self._cache.pop(str(asset.path), None)

    # --- reading ------------------------------------------------------------------------

    def _active_versions(self, name: str) -> list[Data]:
        with azure_call(f"list the versions of dataset {name}"):
            try:
                return list(self.ml_client().data.list(name=name))
            except ResourceNotFoundError:
                return []

    def list(self) -> list[Dataset]:
        with azure_call("list datasets"):
            containers = [
                c
                for c in self.ml_client().data.list()
                if str(getattr(c, "type", AssetTypes.URI_FILE)) == AssetTypes.URI_FILE
            ]
        datasets = []
        for container in containers:
            versions = self.versions(str(container.name))
            if not versions:
                continue
            latest, first = versions[0], versions[-1]
            datasets.append(
                Dataset(
                    name=latest.name,
                    latest_version=latest.version,
                    versions=len(versions),
                    description=next((v.description for v in versions if v.description), ""),
                    rows=latest.rows,
                    columns=latest.columns,
                    size_bytes=latest.size_bytes,
                    created=first.created,
                    updated=latest.created,
                )
            )
        datasets.sort(key=lambda d: d.name)
        datasets.sort(key=lambda d: d.updated, reverse=True)
        return datasets

    def versions(self, name: str) -> list[DatasetVersion]:
        """Active `uri_file` versions with integer numbers, newest first."""
        assets = [
            a
            for a in self._active_versions(name)
            if _int_version(a.version) is not None and str(a.type) == AssetTypes.URI_FILE
        ]
        return sorted(
            (to_dataset_version(a) for a in assets), key=lambda v: v.version, reverse=True
        )

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        """One version; the newest active one when `version` is None."""
        if version is None:
            # label="latest" means the most recently created version, archived (deleted) or
            # not, and possibly one named by hand; the listing of active versions is exact.
            numbered = self.versions(name)
            if not numbered:
                raise WorkspaceError(f"Dataset {name} does not exist.")
            return numbered[0]
        label = f"{name} v{version}"
        with azure_call(f"get dataset {label}", not_found=f"Dataset {label} does not exist."):
            asset = self.ml_client().data.get(name=name, version=str(int(version)))
        return to_dataset_version(asset)

    def _read(self, dv: DatasetVersion) -> bytes:
        with self._cache_lock:
            cached = self._cache.get(dv.uri)
            if cached is not None:
                self._cache.move_to_end(dv.uri)
                return cached
        data = self.fetch_bytes(dv.uri)
        if dv.sha256 and hashlib.sha256(data).hexdigest() != dv.sha256:
            raise WorkspaceError(
                f"The file of dataset {dv.name} v{dv.version} does not match the checksum "
                "recorded at upload: it was changed in the datastore."
            )
        if len(data) <= CACHE_MAX_BYTES:
            with self._cache_lock:
                self._cache[dv.uri] = data
                while len(self._cache) > CACHE_MAX_FILES or (
                    sum(len(b) for b in self._cache.values()) > CACHE_MAX_BYTES
                ):
                    self._cache.popitem(last=False)
        return data

    def missing_tokens(self, name: str, version: int | None = None) -> list[str] | None:
        """The missing-value tokens a version was registered with (None: the defaults)."""
        return self._read_options(self.get(name, version))[0]

    def sheet(self, name: str, version: int | None = None) -> str | None:
        """The workbook sheet the operator named at upload (None: the one found)."""
        return self._read_options(self.get(name, version))[1]

    def _read_options(self, dv: DatasetVersion) -> tuple[list[str] | None, str | None]:
        """(missing-value tokens, sheet) a version was registered with, from its tags."""
        with azure_call(f"get dataset {dv.name} v{dv.version}"):
            asset = self.ml_client().data.get(name=dv.name, version=str(dv.version))
        tags = asset.tags or {}
        sheet = str(tags.get(SHEET_TAG) or "") or None
        try:
            tokens = json.loads(tags.get(MISSING_TOKENS_TAG, "null"))
        except ValueError:
            return None, sheet
        return ([str(t) for t in tokens] if isinstance(tokens, list) else None), sheet

    def parsed(self, name: str, version: int | None = None) -> tuple[DatasetVersion, ParsedTable]:
        """A version and its table, read as it was registered (the operator's missing-value
        tokens and sheet)."""
        dv = self.get(name, version)
        return dv, self._parse(dv)

    def _parse(self, dv: DatasetVersion) -> ParsedTable:
        tokens, sheet = self._read_options(dv)
        try:
            return parse_table(
                dv.file_name, self._read(dv), limits=self.limits, missing_tokens=tokens, sheet=sheet
            )
        except TableError as exc:
            raise WorkspaceError(f"Dataset {dv.name} v{dv.version} cannot be read: {exc}") from exc

    def _learn(self, dv: DatasetVersion) -> dict:
        key = (dv.name, dv.version, dv.sha256)
        with self._cache_lock:
            if key in self._learned:
                self._learned.move_to_end(key)
                return self._learned[key]
        parsed = self._parse(dv)
        learned = {
            "preview": table_to_frame(parsed.table.slice(0, PREVIEW_ROWS)),
            "profile": profile_records(parsed.table, parsed.missing),
        }
        with self._cache_lock:
            self._learned[key] = learned
            while len(self._learned) > CACHE_MAX_FILES * 4:
                self._learned.popitem(last=False)
        return learned

    def load(self, name: str, version: int | None = None) -> pd.DataFrame:
        return self._parse(self.get(name, version)).frame

    def preview(self, name: str, version: int | None = None, rows: int = 100) -> pd.DataFrame:
        dv = self.get(name, version)
        if rows > PREVIEW_ROWS:
            return self.load(name, dv.version).head(rows)
        return self._learn(dv)["preview"].head(rows).copy()

    def profile(self, name: str, version: int | None = None) -> pd.DataFrame:
        """The column profile, with the missing-value tokens read at registration."""
        return profile_from_records(self._learn(self.get(name, version))["profile"])

    def download(self, name: str, version: int | None = None) -> tuple[str, bytes]:
        dv = self.get(name, version)
        return dv.file_name, self._read(dv)
