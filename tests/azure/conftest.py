"""Fakes of MLClient's operations objects (`ml_client.data`, `compute`, `jobs`, `models`,
`online_endpoints`, `online_deployments`) and of the workspace's MLflow tracking client.

They take and return real SDK entities. What they receive is checked the way the SDK and the
service would check it (the entity's own REST serialization and schema, the SDK's local-path
check, the service's naming and scale rules), and what they return is rebuilt from REST objects
with the SDK's own `_from_rest_object`, so the code under test sees what a workspace answers.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml._restclient.arm_ml_service.models import (
    DataContainer,
    DataContainerProperties,
    DefaultScaleSettings,
    FlavorData,
    ModelContainer,
    ModelContainerProperties,
    SystemData,
)
from azure.ai.ml._utils._data_utils import read_local_mltable_metadata_contents
from azure.ai.ml.constants import AssetTypes, ListViewType
from azure.ai.ml.entities import (
    AmlCompute,
    AmlComputeNodeInfo,
    Compute,
    ComputeInstance,
    Data,
    EndpointAuthKeys,
    Job,
    Model,
    OnlineDeployment,
    OnlineEndpoint,
)
from azure.ai.ml.entities._data.mltable_metadata import MLTableMetadata
from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name
from azure.ai.ml.exceptions import ValidationException
from azure.ai.ml.operations._data_operations import _assert_local_path_matches_asset_type
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.polling import LROPoller, PollingMethod
from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-opsdeck"
WORKSPACE = "ws-opsdeck"
ARM_WORKSPACE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}"
)
DATASTORE_PREFIX = (
    f"azureml://subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}"
    f"/workspaces/{WORKSPACE}/datastores/workspaceblobstore/paths"
)
LOCATION = "westeurope"
# The service's own rule for compute cluster names.
SERVICE_CLUSTER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,14}[A-Za-z0-9]$")


def http_error(message: str, status: int) -> HttpResponseError:
    error = HttpResponseError(message=message)
    error.status_code = status
    return error


class Clock:
    """Strictly increasing creation times, one minute apart."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


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
            self.datastore.files[f"{uri}/MLTable"] = content
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
            if uri not in self.datastore.files:
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


class ScriptedPolling(PollingMethod):
    """A polling method that finishes when `gate` is set (at once without one)."""

    def __init__(
        self,
        finish: Any,
        gate: threading.Event | None = None,
        error: Exception | None = None,
    ) -> None:
        self._finish = finish
        self._gate = gate
        self._error = error
        self._status = "InProgress"
        self._resource: Any = None

    def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
        # Without a gate a success completes at once; a failure still runs on the poller's thread.
        if self._gate is None and self._error is None:
            self.run()

    def run(self) -> None:
        if self._gate is not None and not self._gate.wait(timeout=10):
            raise TimeoutError("test gate never opened")
        if self._error is not None:
            self._status = "Failed"
            raise self._error
        self._resource = self._finish()
        self._status = "Succeeded"

    def status(self) -> str:
        return self._status

    def finished(self) -> bool:
        return self._status in ("Succeeded", "Failed")

    def resource(self) -> Any:
        return self._resource


class FakeComputeOperations:
    """Stands in for `ml_client.compute` (ComputeOperations)."""

    def __init__(self) -> None:
        self.entities: dict[str, Compute] = {}
        self.nodes: dict[str, list[str]] = {}
        self.received: list[Compute] = []
        self.calls: list[tuple[Any, ...]] = []
        self.gate: threading.Event | None = None
        self.fail_with: Exception | None = None
        self.list_nodes_error: Exception | None = None

    @staticmethod
    def _as_service(compute: Compute, provisioning: str, state: str | None = None) -> Compute:
        # The SDK's own schema must accept the entity, and it must serialize to REST.
        Compute._load(data=compute._to_dict())
        rest = compute._to_rest_object()
        rest.name = compute.name
        rest.id = f"{ARM_WORKSPACE}/computes/{compute.name}"
        rest.properties.provisioning_state = provisioning
        if state is not None:
            rest.properties.properties["state"] = state
        return Compute._from_rest_object(rest)

    def add(
        self,
        compute: Compute,
        provisioning: str = "Succeeded",
        state: str | None = None,
        nodes: list[str] | None = None,
    ) -> None:
        """Put an existing compute in the workspace (test setup, not a recorded call)."""
        self.entities[compute.name] = self._as_service(compute, provisioning, state)
        self.nodes[compute.name] = list(nodes or [])

    def _poller(self, finish: Any) -> LROPoller:
        polling = ScriptedPolling(finish, gate=self.gate, error=self.fail_with)
        return LROPoller(None, None, lambda x: x, polling)

    def _require(self, name: str) -> Compute:
        if name not in self.entities:
            raise ResourceNotFoundError(f"Compute {name} was not found in workspace {WORKSPACE}.")
        return self.entities[name]

    def _check_service_rules(self, compute: Compute) -> None:
        if isinstance(compute, AmlCompute):
            if not SERVICE_CLUSTER_NAME.match(compute.name):
                raise http_error(f"Compute name {compute.name!r} is invalid.", 400)
            if compute.min_instances > compute.max_instances:
                raise http_error("minNodeCount must not exceed maxNodeCount.", 400)

    def list(self, *, compute_type: str | None = None) -> list[Compute]:
        self.calls.append(("list",))
        return list(self.entities.values())

    def get(self, name: str) -> Compute:
        self.calls.append(("get", name))
        return self._require(name)

    def list_nodes(self, name: str) -> list[AmlComputeNodeInfo]:
        self.calls.append(("list_nodes", name))
        if self.list_nodes_error is not None:
            raise self.list_nodes_error
        self._require(name)
        infos = []
        for i, node_state in enumerate(self.nodes.get(name, [])):
            info = AmlComputeNodeInfo()
            info.node_id = f"tvm-{i}"
            info.node_state = node_state
            infos.append(info)
        return infos

    def begin_create_or_update(self, compute: Compute) -> LROPoller:
        self.calls.append(("begin_create_or_update", compute.name))
        self.received.append(compute)
        self._check_service_rules(compute)
        self.entities[compute.name] = self._as_service(compute, "Creating")
        self.nodes.setdefault(compute.name, [])

        def finish() -> Compute:
            self.entities[compute.name] = self._as_service(compute, "Succeeded")
            return self.entities[compute.name]

        return self._poller(finish)

    def begin_update(self, compute: Compute) -> LROPoller:
        self.calls.append(("begin_update", compute.name))
        self.received.append(compute)
        self._require(compute.name)
        self._check_service_rules(compute)

        def finish() -> Compute:
            self.entities[compute.name] = self._as_service(compute, "Succeeded")
            return self.entities[compute.name]

        return self._poller(finish)

    def begin_delete(self, name: str, *, action: str = "Delete") -> LROPoller:
        self.calls.append(("begin_delete", name, action))
        self._require(name)
        return self._poller(lambda: self.entities.pop(name) and None)

    def _set_instance_state(self, name: str, state: str) -> None:
        entity = self.entities[name]
        assert isinstance(entity, ComputeInstance), f"{name} is not a compute instance"
        self.entities[name] = self._as_service(entity, "Succeeded", state)

    def begin_start(self, name: str) -> LROPoller:
        self.calls.append(("begin_start", name))
        self._require(name)
        return self._poller(lambda: self._set_instance_state(name, "Running"))

    def begin_stop(self, name: str) -> LROPoller:
        self.calls.append(("begin_stop", name))
        self._require(name)
        return self._poller(lambda: self._set_instance_state(name, "Stopped"))


class FakeJobOperations:
    """Stands in for `ml_client.jobs` (JobOperations)."""

    def __init__(self, clock: Clock, data: FakeDataOperations | None = None) -> None:
        self.clock = clock
        self.data = data
        self.entities: list[Job] = []
        self.received: list[Job] = []
        self.calls: list[tuple[Any, ...]] = []
        self._names = (f"frosty_owl_{n:04d}" for n in range(1, 10_000))

    def add(self, job: Job, name: str, status: str, properties: dict | None = None) -> None:
        """Put a submitted job in the workspace, as the service would return it."""
        rest = job._to_rest_object()
        rest.name = name
        rest.id = f"{ARM_WORKSPACE}/jobs/{name}"
        rest.system_data = SystemData(created_at=self.clock())
        rest.properties.status = status
        rest.properties.properties = dict(properties or {})
        rest.properties.services = {
            "Studio": {"endpoint": f"https://ml.azure.com/runs/{name}?wsid={ARM_WORKSPACE}"}
        }
        self.entities = [j for j in self.entities if j.name != name]
        self.entities.append(Job._from_rest_object(rest))

    def _check_inputs(self, job: Job) -> None:
        """The service resolves `azureml:name:version` inputs; a missing asset is a 404."""
        if self.data is None:
            return
        for value in (getattr(job, "training_data", None),):
            path = str(getattr(value, "path", "") or "")
            match = re.match(r"^azureml:([^:]+):(\d+)$", path)
            if match:
                self.data.get(match.group(1), match.group(2))

    def create_or_update(self, job: Job) -> Job:
        self.calls.append(("create_or_update", job.display_name))
        self.received.append(job)
        # The SDK's schema must load what the entity dumps, and it must serialize to REST.
        Job._load(data=job._to_dict())
        job._to_rest_object()
        self._check_inputs(job)
        name = next(self._names)
        self.add(job, name, "NotStarted")
        return self.get(name, record=False)

    def get(self, name: str, *, record: bool = True) -> Job:
        if record:
            self.calls.append(("get", name))
        for job in self.entities:
            if job.name == name:
                return job
        raise ResourceNotFoundError(f"Job {name} was not found.")

    def set_status(self, name: str, status: str) -> None:
        """The service moving a job on (test setup)."""
        job = self.get(name, record=False)
        self.add(job, name, status)

    def begin_cancel(self, name: str) -> LROPoller:
        self.calls.append(("begin_cancel", name))
        self.set_status(name, "CancelRequested")
        polling = ScriptedPolling(lambda: self.set_status(name, "Canceled"))
        return LROPoller(None, None, lambda x: x, polling)

    def list(self, *, parent_job_name: str | None = None, list_view_type: Any = None) -> list[Job]:
        self.calls.append(("list", parent_job_name))
        return list(reversed(self.entities))  # the service answers newest first


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


class _Gated:
    """Pollers that finish at once, or when `gate` is set, or fail with `fail_with`."""

    gate: threading.Event | None = None
    fail_with: Exception | None = None

    def _poller(self, finish: Any, *, fail: bool = True) -> LROPoller:
        error = self.fail_with if fail else None
        polling = ScriptedPolling(finish, gate=self.gate, error=error)
        return LROPoller(None, None, lambda x: x, polling)


def _text_state(value: Any) -> str:
    return str(getattr(value, "value", value))


def _check_name(name: str) -> None:
    try:
        validate_endpoint_or_deployment_name(name)
    except ValidationException as exc:
        raise http_error(str(exc), 400) from exc


class FakeOnlineEndpointOperations(_Gated):
    """Stands in for `ml_client.online_endpoints` (OnlineEndpointOperations)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.entities: dict[str, OnlineEndpoint] = {}
        self.keys: dict[str, list[str]] = {}
        self.received: list[OnlineEndpoint] = []
        self.calls: list[tuple[Any, ...]] = []
        self.deployments: FakeOnlineDeploymentOperations | None = None
        self._key_counter = 0

    def _new_key(self) -> str:
        self._key_counter += 1
        return f"key-{self._key_counter:04d}"

    def _store(self, endpoint: OnlineEndpoint, state: str, created: datetime) -> OnlineEndpoint:
        rest = endpoint._to_rest_online_endpoint(LOCATION)
        rest.name = endpoint.name
        rest.id = f"{ARM_WORKSPACE}/onlineEndpoints/{endpoint.name}"
        rest.properties.provisioning_state = state
        base = f"https://{endpoint.name}.{LOCATION}.inference.ml.azure.com"
        rest.properties.scoring_uri = f"{base}/score"
        rest.properties.swagger_uri = f"{base}/swagger.json"
        rest.system_data = SystemData(
            created_at=created, created_by="operator", last_modified_at=self.clock()
        )
        stored = OnlineEndpoint._from_rest_object(rest)
        self.entities[str(endpoint.name)] = stored
        return stored

    @staticmethod
    def _created(entity: OnlineEndpoint) -> datetime:
        return datetime.strptime(entity.properties["createdAt"], "%Y-%m-%dT%H:%M:%S.%f%z")

    def drop_traffic(self, name: str, deployment: str) -> None:
        """What the service does to an endpoint's traffic when one of its deployments goes."""
        entity = self._require(name)
        entity.traffic = {k: v for k, v in (entity.traffic or {}).items() if k != deployment}
        self._store(entity, _text_state(entity.provisioning_state), self._created(entity))

    def _require(self, name: str) -> OnlineEndpoint:
        if name not in self.entities:
            raise ResourceNotFoundError(f"Online endpoint {name} was not found.")
        return self.entities[name]

    def get(self, name: str, **_: Any) -> OnlineEndpoint:
        self.calls.append(("get", name))
        return self._require(name)

    def list(self, **_: Any) -> list[OnlineEndpoint]:
        self.calls.append(("list",))
        return list(self.entities.values())

    def begin_create_or_update(self, endpoint: OnlineEndpoint, **_: Any) -> LROPoller:
        self.calls.append(("begin_create_or_update", endpoint.name, dict(endpoint.traffic or {})))
        self.received.append(endpoint)
        _check_name(str(endpoint.name))
        OnlineEndpoint._load(data=endpoint._to_dict())
        traffic = {k: int(v) for k, v in (endpoint.traffic or {}).items()}
        existing = self.deployments.names(str(endpoint.name)) if self.deployments else set()
        unknown = set(traffic) - existing
        if unknown:
            raise http_error(f"Traffic refers to unknown deployment(s) {sorted(unknown)}.", 400)
        if traffic and sum(traffic.values()) not in (0, 100):
            raise http_error("Traffic must add up to 0 or 100.", 400)
        previous = self.entities.get(str(endpoint.name))
        created = self._created(previous) if previous is not None else self.clock()
        self._store(endpoint, "Creating" if previous is None else "Updating", created)
        self.keys.setdefault(str(endpoint.name), [self._new_key(), self._new_key()])
        return self._poller(lambda: self._store(endpoint, "Succeeded", created))

    def begin_delete(self, name: str | None = None, **_: Any) -> LROPoller:
        self.calls.append(("begin_delete", name))
        entity = self._require(str(name))
        self._store(entity, "Deleting", self._created(entity))

        def finish() -> None:
            self.entities.pop(str(name), None)
            if self.deployments is not None:
                self.deployments.entities.pop(str(name), None)

        return self._poller(finish, fail=False)

    def get_keys(self, name: str) -> EndpointAuthKeys:
        self.calls.append(("get_keys", name))
        self._require(name)
        primary, secondary = self.keys[name]
        return EndpointAuthKeys(primary_key=primary, secondary_key=secondary)

    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary") -> LROPoller:
        self.calls.append(("begin_regenerate_keys", name, key_type))
        self._require(name)
        if key_type not in ("primary", "secondary"):
            raise ValidationException(
                message=f"Unknown key type {key_type}.",
                no_personal_data_message="Unknown key type.",
            )

        def finish() -> None:
            self.keys[name][0 if key_type == "primary" else 1] = self._new_key()

        return self._poller(finish, fail=False)


class FakeOnlineDeploymentOperations(_Gated):
    """Stands in for `ml_client.online_deployments` (OnlineDeploymentOperations)."""

    def __init__(
        self, endpoints: FakeOnlineEndpointOperations, models: FakeModelOperations
    ) -> None:
        self.endpoints = endpoints
        self.models = models
        self.entities: dict[str, dict[str, OnlineDeployment]] = {}
        self.received: list[OnlineDeployment] = []
        self.calls: list[tuple[Any, ...]] = []
        self.logs: dict[tuple[str, str], str] = {}
        endpoints.deployments = self

    def names(self, endpoint: str) -> set[str]:
        return set(self.entities.get(endpoint, {}))

    def _store(self, deployment: OnlineDeployment, state: str) -> OnlineDeployment:
        rest = deployment._to_rest_object(LOCATION)
        rest.name = deployment.name
        rest.id = (
            f"{ARM_WORKSPACE}/onlineEndpoints/{deployment.endpoint_name}"
            f"/deployments/{deployment.name}"
        )
        rest.properties.provisioning_state = state
        rest.properties.scale_settings = rest.properties.scale_settings or DefaultScaleSettings()
        stored = OnlineDeployment._from_rest_object(rest)
        stored.endpoint_name = deployment.endpoint_name
        self.entities.setdefault(str(deployment.endpoint_name), {})[str(deployment.name)] = stored
        return stored

    def begin_create_or_update(self, deployment: OnlineDeployment, **_: Any) -> LROPoller:
        self.calls.append(("begin_create_or_update", deployment.endpoint_name, deployment.name))
        self.received.append(deployment)
        _check_name(str(deployment.name))
        OnlineDeployment._load(data=deployment._to_dict())
        self.endpoints._require(str(deployment.endpoint_name))
        model = str(deployment.model)
        match = re.match(r"^azureml:([^:]+):(\d+)$", model)
        if not match:
            raise http_error(f"Model reference {model!r} is not a registered model version.", 400)
        self.models.get(match.group(1), match.group(2))
        self._store(deployment, "Creating")

        def finish() -> OnlineDeployment:
            return self._store(deployment, "Succeeded")

        poller = self._poller(finish)
        if self.fail_with is not None:
            self.logs[(str(deployment.endpoint_name), str(deployment.name))] = (
                "Liveness probe failed: the model could not be loaded."
            )
        return poller

    def get(self, name: str, endpoint_name: str, **_: Any) -> OnlineDeployment:
        self.calls.append(("get", endpoint_name, name))
        try:
            return self.entities[endpoint_name][name]
        except KeyError:
            raise ResourceNotFoundError(f"Deployment {name} was not found.") from None

    def list(self, endpoint_name: str, **_: Any) -> list[OnlineDeployment]:
        self.calls.append(("list", endpoint_name))
        self.endpoints._require(endpoint_name)
        return list(self.entities.get(endpoint_name, {}).values())

    def begin_delete(self, name: str, endpoint_name: str, **_: Any) -> LROPoller:
        self.calls.append(("begin_delete", endpoint_name, name))
        traffic = self.endpoints._require(endpoint_name).traffic or {}
        if int(traffic.get(name, 0)) > 0:
            raise http_error(f"Deployment {name} still takes traffic.", 400)
        self.get(name, endpoint_name)

        def finish() -> None:
            self.entities[endpoint_name].pop(name)
            self.endpoints.drop_traffic(endpoint_name, name)

        return self._poller(finish, fail=False)

    def get_logs(self, name: str, endpoint_name: str, lines: int, **_: Any) -> str:
        self.calls.append(("get_logs", endpoint_name, name, lines))
        self.get(name, endpoint_name)
        text = self.logs.get((endpoint_name, name), "Listening on 0.0.0.0:5001\nModel loaded.")
        return "\n".join(text.splitlines()[-lines:])


def mlflow_run(
    run_id: str,
    *,
    parent: str | None = None,
    experiment_id: str = "7",
    status: str = "FINISHED",
    start: int = 1_700_000_000_000,
    end: int | None = None,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> Run:
    """A run as the workspace's MLflow tracking returns it (real mlflow entities)."""
    all_tags = dict(tags or {})
    if parent is not None:
        all_tags["mlflow.parentRunId"] = parent
    info = RunInfo(
        run_id=run_id,
        experiment_id=experiment_id,
        user_id="operator",
        status=status,
        start_time=start,
        end_time=end,
        lifecycle_stage="active",
        run_name=run_id,
    )
    data = RunData(
        metrics=[Metric(k, float(v), start, 0) for k, v in (metrics or {}).items()],
        params=[Param(k, str(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in all_tags.items()],
    )
    return Run(run_info=info, run_data=data)


class FakeMlflowClient:
    """Stands in for the workspace's `MlflowClient`: get_run, search_runs, download_artifacts."""

    PARENT_FILTER = re.compile(r"^tags\.mlflow\.parentRunId = '([^']+)'$")

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.artifacts: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[Any, ...]] = []

    def add(self, run: Run) -> Run:
        self.runs[run.info.run_id] = run
        return run

    def get_run(self, run_id: str) -> Run:
        self.calls.append(("get_run", run_id))
        if run_id not in self.runs:
            raise MlflowException(f"Run '{run_id}' not found", RESOURCE_DOES_NOT_EXIST)
        return self.runs[run_id]

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        max_results: int = 1000,
        **_: Any,
    ) -> list[Run]:
        self.calls.append(("search_runs", tuple(experiment_ids), filter_string))
        match = self.PARENT_FILTER.match(filter_string)
        if match is None:
            raise MlflowException(f"Unsupported filter {filter_string!r}", INVALID_PARAMETER_VALUE)
        return [
            r
            for r in self.runs.values()
            if r.info.experiment_id in experiment_ids
            and r.data.tags.get("mlflow.parentRunId") == match.group(1)
        ][:max_results]

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        self.calls.append(("download_artifacts", run_id, path))
        if (run_id, path) not in self.artifacts:
            raise MlflowException(f"No artifact {path} in run {run_id}", RESOURCE_DOES_NOT_EXIST)
        target = Path(dst_path or ".", path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.artifacts[(run_id, path)]))
        return str(target)


@dataclass
class FakeMLClient:
    """The parts of MLClient the Azure backend touches, each a fake operations object."""

    data: FakeDataOperations
    compute: FakeComputeOperations
    jobs: FakeJobOperations
    datastore: FakeDatastore
    datastores: Any = None
    models: FakeModelOperations = field(default_factory=lambda: FakeModelOperations(Clock()))
    online_endpoints: FakeOnlineEndpointOperations = field(
        default_factory=lambda: FakeOnlineEndpointOperations(Clock())
    )
    online_deployments: FakeOnlineDeploymentOperations | None = None
    workspace_name: str = WORKSPACE

    def __post_init__(self) -> None:
        if self.online_deployments is None:
            self.online_deployments = FakeOnlineDeploymentOperations(
                self.online_endpoints, self.models
            )

    def __call__(self) -> FakeMLClient:
        # The services take a zero-argument source of the client (LazyMLClient in production).
        return self


@pytest.fixture
def fake_client() -> FakeMLClient:
    datastore = FakeDatastore()
    data = FakeDataOperations(datastore, Clock())
    return FakeMLClient(
        data=data,
        compute=FakeComputeOperations(),
        jobs=FakeJobOperations(Clock(), data=data),
        datastore=datastore,
    )


@pytest.fixture
def fake_mlflow() -> FakeMlflowClient:
    return FakeMlflowClient()


def foreign_asset(name: str, version: str, path: Path, type: str = AssetTypes.URI_FILE) -> Data:
    """A data asset made outside opsdeck (no opsdeck tags)."""
    return Data(name=name, version=version, type=type, path=str(path))
