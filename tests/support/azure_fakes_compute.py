"""Fakes of `ml_client.compute` (clusters, instances, nodes) and `ml_client.jobs`."""

from __future__ import annotations

import re
import threading
from typing import Any

from azure.ai.ml._restclient.arm_ml_service.models import SystemData
from azure.ai.ml.entities import AmlCompute, AmlComputeNodeInfo, Compute, ComputeInstance, Job
from azure.core.exceptions import ResourceNotFoundError
from azure.core.polling import LROPoller

from tests.support.azure_fakes_assets import FakeDataOperations
from tests.support.azure_fakes_core import (
    ARM_WORKSPACE,
    SERVICE_CLUSTER_NAME,
    WORKSPACE,
    Clock,
    ScriptedPolling,
    http_error,
)


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
