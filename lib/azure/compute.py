"""Azure compute: AmlCompute clusters and compute instances, with long changes as `Operation`s."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.ai.ml.entities import AmlCompute, Compute, ComputeInstance
from azure.ai.ml.entities import Job as AzureJob
from azure.core.exceptions import AzureError, ResourceNotFoundError

from lib import names
from lib.azure.client import MLClientSource, azure_call
from lib.azure.values import created_at, parse_time, wire_text
from lib.errors import WorkspaceError
from lib.workspace import ComputeTarget, Job

BUSY_NODE_STATES = frozenset({"running"})
STARTING_NODE_STATES = frozenset({"preparing"})
INSTANCE_UP_STATES = frozenset({"Running", "JobRunning"})
MAX_JOBS = 200
# Azure ML job statuses folded onto the five states pages know.
JOB_STATES = {
    "NotStarted": "Queued",
    "Starting": "Queued",
    "Provisioning": "Queued",
    "Preparing": "Queued",
    "Queued": "Queued",
    "Paused": "Queued",
    "Running": "Running",
    "Finalizing": "Running",
    "CancelRequested": "Running",
    "Completed": "Completed",
    "Failed": "Failed",
    "NotResponding": "Failed",
    "Canceled": "Canceled",
}


def to_job(job: AzureJob) -> Job:
    """Map an Azure ML job entity to the domain Job."""
    status = wire_text(job.status)
    props = job.properties or {}
    return Job(
        id=str(job.name),
        kind=wire_text(job.type) or "job",
        display_name=job.display_name or str(job.name),
        state=JOB_STATES.get(status, status or "Unknown"),
        created=created_at(job),
        started=parse_time(props.get("StartTimeUtc")),
        ended=parse_time(props.get("EndTimeUtc")),
        compute=wire_text(getattr(job, "compute", None)) or "serverless",
        spec={"experiment": job.experiment_name or "", "azure_status": status},
        progress={"studio_url": url} if (url := getattr(job, "studio_url", None)) else {},
    )


def list_jobs(ml_client: MLClientSource, limit: int = MAX_JOBS) -> list[AzureJob]:
    """The newest `limit` jobs the SDK could read.

    `jobs.list()` yields None for a job whose definition the SDK cannot parse (a newer job type,
    a malformed spec); one such job must not hide the others.
    """
    with azure_call("list jobs"):
        listed = itertools.islice(ml_client().jobs.list(), limit)
        return [job for job in listed if job is not None]


def validate_cluster(
    name: str, vm_size: str, min_nodes: int, max_nodes: int, idle_seconds: int
) -> None:
    """Raise WorkspaceError naming the first problem of a cluster definition."""
    # Matched as given, not stripped: the name is sent to Azure exactly as typed.
    if not names.COMPUTE_NAME.match(name or ""):
        raise WorkspaceError(names.COMPUTE.message)
    if not (vm_size or "").strip():
        raise WorkspaceError("Choose a VM size (for example STANDARD_DS3_V2).")
    _validate_scale(min_nodes, max_nodes)
    if int(idle_seconds) < 1:
        raise WorkspaceError("Idle time before scale-down must be at least 1 second.")


def _validate_scale(min_nodes: int, max_nodes: int) -> None:
    if int(min_nodes) < 0:
        raise WorkspaceError("Minimum nodes cannot be negative.")
    if int(max_nodes) < 1:
        raise WorkspaceError("Maximum nodes must be at least 1.")
    if int(min_nodes) > int(max_nodes):
        raise WorkspaceError(
            f"Minimum nodes ({min_nodes}) cannot exceed maximum nodes ({max_nodes})."
        )


@dataclass
class Operation:
    """A long Azure call in flight; pages poll `status()`/`done()` and read `result()` when done."""

    action: str
    target: str
    poller: Any  # azure.core.polling.LROPoller
    convert: Callable[[Any], Any] | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def status(self) -> str:
        """The poller's state: InProgress, Succeeded, Failed, Canceled, ..."""
        return wire_text(self.poller.status())

    def done(self) -> bool:
        return bool(self.poller.done())

    @property
    def elapsed_s(self) -> float:
        return (datetime.now(UTC) - self.started).total_seconds()

    def result(self, timeout: float | None = None) -> Any:
        """Wait up to `timeout` seconds; the converted result, or WorkspaceError on failure."""
        with azure_call(self.action):
            value = self.poller.result(timeout=timeout)
        if not self.poller.done():
            raise WorkspaceError(
                f"{self.action} is still in progress ({self.status()}) after {timeout or 0:g} s."
            )
        if self.convert is not None and value is not None:
            return self.convert(value)
        return value


class AzureCompute:
    """ComputeService over `ml_client.compute`: clusters and compute instances."""

    def __init__(self, ml_client: MLClientSource) -> None:
        self.ml_client = ml_client

    def list(self) -> list[ComputeTarget]:
        """Clusters and compute instances (attached and other kinds are left out)."""
        with azure_call("list compute"):
            computes = list(self.ml_client().compute.list())
        targets = [
            self.to_target(c) for c in computes if isinstance(c, (AmlCompute, ComputeInstance))
        ]
        return sorted(targets, key=lambda t: (t.kind, t.name))

    def get(self, name: str) -> ComputeTarget:
        return self.to_target(self._get_entity(name))

    def jobs(self) -> list[Job]:
        """The workspace's most recent top-level jobs, newest first."""
        entities = list_jobs(self.ml_client)
        return sorted((to_job(j) for j in entities), key=lambda j: j.created, reverse=True)

    def _get_entity(self, name: str) -> Compute:
        with azure_call(f"get compute {name}", not_found=f"Compute {name} does not exist."):
            return self.ml_client().compute.get(name)

    def to_target(self, compute: Compute) -> ComputeTarget:
        if isinstance(compute, ComputeInstance):
            return self._instance_target(compute)
        if isinstance(compute, AmlCompute):
            return self._cluster_target(compute)
        raise WorkspaceError(
            f"Compute {compute.name} is a {compute.type}, not a cluster or instance."
        )

    def _node_states(self, name: str) -> list[str] | None:
        # Node counts are only on the nodes listing; a failure there must not hide the cluster.
        try:
            nodes = list(self.ml_client().compute.list_nodes(name))
        except AzureError:
            return None
        return [wire_text(n.node_state).lower() for n in nodes]

    def _cluster_target(self, cluster: AmlCompute) -> ComputeTarget:
        provisioning = wire_text(cluster.provisioning_state) or "Unknown"
        listed = self._node_states(cluster.name) if provisioning == "Succeeded" else None
        nodes = listed or []
        busy = sum(1 for s in nodes if s in BUSY_NODE_STATES)
        if listed is None:  # still provisioning, or the node listing failed: no guess
            state = provisioning
        elif busy:
            state = "Running"
        elif any(s in STARTING_NODE_STATES for s in nodes):
            state = "Preparing"
        else:
            state = "Idle"
        idle = cluster.idle_time_before_scale_down
        return ComputeTarget(
            name=cluster.name,
            kind="AmlCompute",
            state=state,
            vm_size=cluster.size or "",
            min_nodes=int(cluster.min_instances or 0),
            max_nodes=int(cluster.max_instances or 0),
            current_nodes=len(nodes),
            busy_slots=busy,
            idle_slots=sum(1 for s in nodes if s == "idle"),
            idle_seconds_before_scale_down=int(idle) if idle is not None else None,
        )

    def _instance_target(self, instance: ComputeInstance) -> ComputeTarget:
        state = wire_text(instance.state) or wire_text(instance.provisioning_state) or "Unknown"
        up = 1 if state in INSTANCE_UP_STATES else 0
        minutes = instance.idle_time_before_shutdown_minutes
        return ComputeTarget(
            name=instance.name,
            kind="ComputeInstance",
            state=state,
            vm_size=instance.size or "",
            min_nodes=0,
            max_nodes=1,
            current_nodes=up,
            busy_slots=1 if state == "JobRunning" else 0,
            idle_slots=1 if state == "Running" else 0,
            idle_seconds_before_scale_down=int(minutes) * 60 if minutes else None,
        )

    def create_cluster(
        self,
        name: str,
        vm_size: str,
        min_nodes: int = 0,
        max_nodes: int = 4,
        idle_seconds: int = 120,
    ) -> Operation:
        """Start creating an AmlCompute cluster; refuses a name already in use."""
        validate_cluster(name, vm_size, min_nodes, max_nodes, idle_seconds)
        try:
            self._get_entity(name)
        except WorkspaceError as exc:
            if not isinstance(exc.__cause__, ResourceNotFoundError):
                raise
        else:
            raise WorkspaceError(
                f"Compute {name} already exists; resize it or choose another name."
            )
        cluster = AmlCompute(
            name=name,
            size=vm_size.strip(),
            min_instances=int(min_nodes),
            max_instances=int(max_nodes),
            idle_time_before_scale_down=int(idle_seconds),
        )
        action = f"create cluster {name}"
        with azure_call(action):
            poller = self.ml_client().compute.begin_create_or_update(cluster)
        return Operation(action=action, target=name, poller=poller, convert=self.to_target)

    def resize(self, name: str, min_nodes: int, max_nodes: int) -> Operation:
        """Start changing a cluster's node range."""
        _validate_scale(min_nodes, max_nodes)
        cluster = self._get_entity(name)
        if not isinstance(cluster, AmlCompute):
            raise WorkspaceError(f"Compute {name} is not a cluster; only clusters can be resized.")
        cluster.min_instances = int(min_nodes)
        cluster.max_instances = int(max_nodes)
        action = f"resize cluster {name}"
        with azure_call(action, not_found=f"Compute {name} does not exist."):
            poller = self.ml_client().compute.begin_update(cluster)
        return Operation(action=action, target=name, poller=poller, convert=self.to_target)

    def _begin(self, verb: str, name: str, method: str) -> Operation:
        action = f"{verb} compute {name}"
        with azure_call(action, not_found=f"Compute {name} does not exist."):
            poller = getattr(self.ml_client().compute, method)(name)
        return Operation(action=action, target=name, poller=poller)

    def delete(self, name: str) -> Operation:
        return self._begin("delete", name, "begin_delete")

    def start_instance(self, name: str) -> Operation:
        return self._begin("start", name, "begin_start")

    def stop_instance(self, name: str) -> Operation:
        return self._begin("stop", name, "begin_stop")
