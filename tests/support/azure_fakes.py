"""Fakes of MLClient's operations objects (`ml_client.data`, `compute`, `jobs`, `models`,
`online_endpoints`, `online_deployments`) and of the workspace's MLflow tracking client.

They take and return real SDK entities. What they receive is checked the way the SDK and the
service would check it (the entity's own REST serialization and schema, the SDK's local-path
check, the service's naming and scale rules), and what they return is rebuilt from REST objects
with the SDK's own `_from_rest_object`, so the code under test sees what a workspace answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.azure_fakes_assets import (
    FakeDataOperations,
    FakeDatastore,
    FakeModelOperations,
    foreign_asset,
)
from tests.support.azure_fakes_compute import FakeComputeOperations, FakeJobOperations
from tests.support.azure_fakes_core import (
    ARM_WORKSPACE,
    DATASTORE_PREFIX,
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    Clock,
    ScriptedPolling,
    http_error,
)
from tests.support.azure_fakes_endpoints import (
    FakeOnlineDeploymentOperations,
    FakeOnlineEndpointOperations,
)
from tests.support.azure_fakes_mlflow import FakeMlflowClient, mlflow_run

__all__ = [
    "ARM_WORKSPACE",
    "DATASTORE_PREFIX",
    "LOCATION",
    "RESOURCE_GROUP",
    "SUBSCRIPTION",
    "WORKSPACE",
    "Clock",
    "FakeComputeOperations",
    "FakeDataOperations",
    "FakeDatastore",
    "FakeJobOperations",
    "FakeMLClient",
    "FakeMlflowClient",
    "FakeModelOperations",
    "FakeOnlineDeploymentOperations",
    "FakeOnlineEndpointOperations",
    "ScriptedPolling",
    "foreign_asset",
    "http_error",
    "mlflow_run",
    "new_fake_client",
]


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


def new_fake_client() -> FakeMLClient:
    """An empty fake workspace: no data, compute, jobs, models or endpoints."""
    datastore = FakeDatastore()
    data = FakeDataOperations(datastore, Clock())
    return FakeMLClient(
        data=data,
        compute=FakeComputeOperations(),
        jobs=FakeJobOperations(Clock(), data=data),
        datastore=datastore,
    )
