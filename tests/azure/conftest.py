"""Fakes of MLClient's operations objects (`ml_client.data`, `ml_client.compute`).

They take and return real SDK entities. What they receive is checked the way the SDK and the
service would check it (the entity's own REST serialization and schema, the SDK's local-path
check, the service's naming and scale rules), and what they return is rebuilt from REST objects
with the SDK's own `_from_rest_object`, so the code under test sees what a workspace answers.
"""

from __future__ import annotations

import hashlib
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
    SystemData,
)
from azure.ai.ml.constants import AssetTypes, ListViewType
from azure.ai.ml.entities import (
    AmlCompute,
    AmlComputeNodeInfo,
    Compute,
    ComputeInstance,
    Data,
    Job,
)
from azure.ai.ml.exceptions import ValidationException
from azure.ai.ml.operations._data_operations import _assert_local_path_matches_asset_type
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.polling import LROPoller, PollingMethod

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
        content = local.read_bytes() if local.is_file() else b""
        digest = hashlib.md5(content).hexdigest()  # noqa: S324 - a folder name, not security
        uri = f"{DATASTORE_PREFIX}/LocalUpload/{digest}/{local.name}"
        if local.is_file():
            self.staged_bytes.append(content)
            self.datastore.files[uri] = content
        rest.properties.data_uri = uri
        rest.id = f"{ARM_WORKSPACE}/data/{name}/versions/{version}"
        rest.system_data = SystemData(created_at=self.clock(), created_by="operator")
        stored = Data._from_rest_object(rest)
        self.assets.setdefault(name, {})[version] = stored
        return stored

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
    """Stands in for `ml_client.jobs` (JobOperations): only `list`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.entities: list[Job] = []
        self.calls: list[tuple[Any, ...]] = []

    def add(self, job: Job, name: str, status: str, properties: dict | None = None) -> None:
        """Put a submitted job in the workspace, as the service would return it."""
        rest = job._to_rest_object()
        rest.name = name
        rest.id = f"{ARM_WORKSPACE}/jobs/{name}"
        rest.system_data = SystemData(created_at=self.clock())
        rest.properties.status = status
        rest.properties.properties = dict(properties or {})
        self.entities.append(Job._from_rest_object(rest))

    def list(self, *, parent_job_name: str | None = None, list_view_type: Any = None) -> list[Job]:
        self.calls.append(("list", parent_job_name))
        return list(reversed(self.entities))  # the service answers newest first


@dataclass
class FakeMLClient:
    """The parts of MLClient the Azure backend touches, each a fake operations object."""

    data: FakeDataOperations
    compute: FakeComputeOperations
    jobs: FakeJobOperations
    datastore: FakeDatastore
    datastores: Any = None

    def __call__(self) -> FakeMLClient:
        # The services take a zero-argument source of the client (LazyMLClient in production).
        return self


@pytest.fixture
def fake_client() -> FakeMLClient:
    datastore = FakeDatastore()
    return FakeMLClient(
        data=FakeDataOperations(datastore, Clock()),
        compute=FakeComputeOperations(),
        jobs=FakeJobOperations(Clock()),
        datastore=datastore,
    )


def foreign_asset(name: str, version: str, path: Path, type: str = AssetTypes.URI_FILE) -> Data:
    """A data asset made outside opsdeck (no opsdeck tags)."""
    return Data(name=name, version=version, type=type, path=str(path))
