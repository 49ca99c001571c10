"""Fixtures of the Azure backend tests.

Two levels of fake: the MLClient operations objects (`fake_client`, quick, for the services'
own logic) and the HTTP transport under every Azure SDK client (`azure_http`, for what the SDKs
send and parse).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.ai.ml.entities import AmlCompute, ComputeInstance

from lib.azure.automl import AzureAutoML
from lib.azure.datasets import AzureDatasets
from lib.azure.workspace import open_azure_workspace
from lib.settings import AzureConfig, Settings
from lib.workspace import Workspace
from tests.support.azure_fakes import FakeMLClient, FakeMlflowClient, new_fake_client
from tests.support.azure_fakes_automl import bank_csv
from tests.support.azure_service import (
    LA_WORKSPACE,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    FakeAzureML,
)
from tests.support.azure_transport import FakeCredential, FakeTransport, route_storage_through


@pytest.fixture
def fake_client() -> FakeMLClient:
    return new_fake_client()


@pytest.fixture
def fake_mlflow() -> FakeMlflowClient:
    return FakeMlflowClient()


@pytest.fixture
def datasets(fake_client: FakeMLClient) -> AzureDatasets:
    ds = AzureDatasets(
        fake_client, max_upload_bytes=1024 * 1024, fetch_bytes=fake_client.datastore.fetch
    )
    ds.upload("bank", bank_csv(), "bank.csv", "Bank marketing sample")
    return ds


@pytest.fixture
def automl(
    fake_client: FakeMLClient, datasets: AzureDatasets, fake_mlflow: FakeMlflowClient
) -> AzureAutoML:
    fake_client.compute.add(
        AmlCompute(name="cpu-cluster", size="STANDARD_DS3_V2", max_instances=4), nodes=[]
    )
    fake_client.compute.add(ComputeInstance(name="ci-alice", size="STANDARD_DS11_V2"))
    return AzureAutoML(fake_client, datasets, mlflow_client=lambda: fake_mlflow)


@dataclass
class HttpWorkspace:
    """An Azure workspace whose every client talks to `service` through `transport`."""

    service: FakeAzureML
    transport: FakeTransport
    credential: FakeCredential
    ws: Workspace


@pytest.fixture
def azure_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HttpWorkspace:
    """The Azure backend with MLClient, MLflow tracking, storage and Log Analytics on one fake
    HTTP transport: the SDKs build and parse every request themselves."""
    service = FakeAzureML()
    transport = FakeTransport(service)
    credential = FakeCredential()
    route_storage_through(transport, monkeypatch)
    settings = Settings(
        home=tmp_path,
        backend="azure",
        backend_reason="test",
        azure=AzureConfig(
            subscription_id=SUBSCRIPTION,
            resource_group=RESOURCE_GROUP,
            workspace_name=WORKSPACE,
            log_analytics_workspace_id=LA_WORKSPACE,
            source="test",
        ),
    )
    ws = open_azure_workspace(
        settings, credential_factory=lambda _config: credential, transport=transport
    )
    return HttpWorkspace(service, transport, credential, ws)
