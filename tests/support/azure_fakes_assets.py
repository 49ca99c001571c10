"""Fakes of `ml_client.data` (with the blob datastore behind it) and `ml_client.models`.

They take real SDK entities, check them as the SDK and the service would (REST serialization,
the SDK's local-path check) and answer with entities rebuilt by the SDK's own `_from_rest_object`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.ai.ml._restclient.arm_ml_service.models import (
    DataContainer,
    DataContainerProperties,
    FlavorData,
    ModelContainer,
    ModelContainerProperties,
    SystemData,
)
from azure.ai.ml._utils._data_utils import read_local_mltable_metadata_contents
from azure.ai.ml.constants import AssetTypes, ListViewType
from azure.ai.ml.entities import Data, Model
from azure.ai.ml.entities._data.mltable_metadata import MLTableMetadata
from azure.ai.ml.exceptions import ValidationException
from azure.ai.ml.operations._data_operations import _assert_local_path_matches_asset_type
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from tests.support.azure_fakes_core import ARM_WORKSPACE, DATASTORE_PREFIX, Clock, http_error


@dataclass
class FakeDatastore:
    """The workspace blob store: files 'uploaded' by data.create_or_update, by azureml:// URI."""

    files: dict[str, bytes] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def fetch(self, uri: str) -> bytes:
        self.reads.append(uri)
        if uri not in self.files:
            raise ResourceNotFoundError(f"The specified blob does not exist: {uri}")
        return self.files[uri]


class FakeDataOperations:
    """Stands in for `ml_client.data` (DataOperations)."""

    def __init__(self, datastore: FakeDatastore, clock: Clock) -> None:
        self.datastore = datastore
        self.clock = clock
        self.assets: dict[str, dict[str, Data]] = {}
        self.archived: set[tuple[str, str | None]] = set()
        self.received: list[Data] = []
        self.staged_bytes: list[bytes] = []
        self.calls: list[tuple[Any, ...]] = []

    def create_or_update(self, data: Data) -> Data:
        self.calls.append(("create_or_update", data.name, data.version))
        self.received.append(data)
        if not data.path:
            raise ValidationException(
                message="Missing data path. Path is required for data.",
                no_personal_data_message="Missing data path. Path is required for data.",
            )
        # What DataOperations checks before uploading a local path.
        _assert_local_path_matches_asset_type(str(data.path), data.type)
        rest = data._to_rest_object()
        tags = rest.properties.tags or {}
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()), tags
        name, version = str(data.name), str(data.version)
        if version in self.assets.get(name, {}):
            raise ResourceExistsError(f"Data {name} version {version} already exists.")
        # The SDK uploads the file to LocalUpload/<hash>/<file name> and registers that URI.
        local = Path(str(data.path))
        if data.type == AssetTypes.MLTABLE:
            content = self._check_mltable(local)
        else:
            content = local.read_bytes() if local.is_file() else b""
        digest = hashlib.md5(content).hexdigest()  # noqa: S324 - a folder name, not security
        uri = f"{DATASTORE_PREFIX}/LocalUpload/{digest}/{local.name}"
        if data.type == AssetTypes.MLTABLE:
            for item in sorted(local.iterdir()):  # the SDK uploads the whole folder
                if item.is_file():
                    self.datastore.files[f"{uri}/{item.name}"] = item.read_bytes()
            uri += "/"
        elif local.is_file():
            self.staged_bytes.append(content)
            self.datastore.files[uri] = content
        rest.properties.data_uri = uri
        rest.id = f"{ARM_WORKSPACE}/data/{name}/versions/{version}"
        rest.system_data = SystemData(created_at=self.clock(), created_by="operator")
        stored = Data._from_rest_object(rest)
        self.assets.setdefault(name, {})[version] = stored
        return stored

    def _check_mltable(self, folder: Path) -> bytes:
        """What DataOperations checks of a local MLTable folder, plus that its files exist."""
        if not (folder / "MLTable").is_file():
            raise ValidationException(
                message=f"No MLTable file in {folder}.",
                no_personal_data_message="No MLTable file in the folder.",
            )
        contents = read_local_mltable_metadata_contents(path=str(folder))
        metadata = MLTableMetadata._load(contents, folder / "MLTable")
        for uri in metadata.referenced_uris():
            if "://" not in uri:  # relative to the MLTable file: uploaded with the folder
                if not (folder / uri).is_file():
                    raise http_error(f"MLTable refers to {uri}, which is not in its folder.", 400)
            elif uri not in self.datastore.files:
                raise http_error(f"MLTable refers to {uri}, which is not in the datastore.", 400)
        return (folder / "MLTable").read_bytes()

    def _visible(self, name: str, version: str | None, view: ListViewType) -> bool:
        archived = (name, version) in self.archived
        if view == ListViewType.ALL:
            return True
        return archived if view == ListViewType.ARCHIVED_ONLY else not archived

    def list(
        self, name: str | None = None, *, list_view_type: ListViewType = ListViewType.ACTIVE_ONLY
    ) -> list[Data]:
        self.calls.append(("list", name, list_view_type))
        if name is not None:
            return [
                d
                for v, d in self.assets.get(name, {}).items()
                if self._visible(name, v, list_view_type)
            ]
        containers = []
        for container_name, versions in self.assets.items():
            if not self._visible(container_name, None, list_view_type):
                continue
            latest = list(versions.values())[-1]
            rest = DataContainer(
                properties=DataContainerProperties(
                    data_type=latest.type, latest_version=str(latest.version)
                )
            )
            rest.name = container_name
            rest.id = f"{ARM_WORKSPACE}/data/{container_name}"
            rest.system_data = SystemData(created_at=latest.creation_context.created_at)
            containers.append(Data._from_container_rest_object(rest))
        return containers

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Data:
        self.calls.append(("get", name, version, label))
        if version and label:
            raise ValidationException(
                message="Cannot specify both version and label.",
                no_personal_data_message="Cannot specify both version and label.",
            )
        if not version and not label:
            raise ValidationException(
                message="Must provide either version or label.",
                no_personal_data_message="Must provide either version or label.",
            )
        versions = self.assets.get(name, {})
        if label == "latest" and versions:
            # Like the service: the most recently created version, archived or not.
            return list(versions.values())[-1]
        if version in versions:
            return versions[version]
        raise ResourceNotFoundError(f"Resource {name}:{version or label} was not found.")

    def archive(self, name: str, version: str | None = None, label: str | None = None) -> None:
        self.calls.append(("archive", name, version))
        if name not in self.assets or (version is not None and version not in self.assets[name]):
            raise ResourceNotFoundError(f"Resource {name}:{version} was not found.")
        self.archived.add((name, version))


class FakeModelOperations:
    """Stands in for `ml_client.models` (ModelOperations)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.versions: dict[str, dict[str, Model]] = {}
        self.received: list[Model] = []
        self.calls: list[tuple[Any, ...]] = []

    def create_or_update(self, model: Model) -> Model:
        self.calls.append(("create_or_update", model.name, model.version))
        self.received.append(model)
        Model._load(data=model._to_dict())
        name = str(model.name)
        if not model.version and model._auto_increment_version:
            numbers = [int(v) for v in self.versions.get(name, {}) if v.isdigit()]
            version = str(max(numbers, default=0) + 1)
        else:
            version = str(model.version)
        if version in self.versions.get(name, {}):
            raise ResourceExistsError(f"Model {name} version {version} already exists.")
        rest = model._to_rest_object()
        rest.id = f"{ARM_WORKSPACE}/models/{name}/versions/{version}"
        rest.system_data = SystemData(created_at=self.clock())
        if model.type == AssetTypes.MLFLOW_MODEL:
            # The service reads the flavors from the MLmodel file it finds at the path.
            rest.properties.flavors = {
                "python_function": FlavorData(data={"loader_module": "mlflow.sklearn"})
            }
        stored = Model._from_rest_object(rest)
        self.versions.setdefault(name, {})[version] = stored
        return stored

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        self.calls.append(("get", name, version))
        if version in self.versions.get(name, {}):
            return self.versions[name][version]
        raise ResourceNotFoundError(f"Model {name}:{version or label} was not found.")

    def list(self, name: str | None = None, **_: Any) -> list[Model]:
        self.calls.append(("list", name))
        if name is not None:
            if name not in self.versions:
                raise ResourceNotFoundError(f"Model container {name} was not found.")
            return list(self.versions[name].values())
        containers = []
        for container_name, versions in self.versions.items():
            rest = ModelContainer(
                properties=ModelContainerProperties(latest_version=list(versions)[-1])
            )
            rest.name = container_name
            rest.id = f"{ARM_WORKSPACE}/models/{container_name}"
            rest.system_data = SystemData(created_at=self.clock.now)
            containers.append(Model._from_container_rest_object(rest))
        return containers


def foreign_asset(name: str, version: str, path: Path, type: str = AssetTypes.URI_FILE) -> Data:
    """A data asset made outside opsdeck (no opsdeck tags)."""
    return Data(name=name, version=version, type=type, path=str(path))
