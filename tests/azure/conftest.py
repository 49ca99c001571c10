"""Fixtures of the Azure backend tests: a fake workspace, its MLflow tracking, the AutoML service."""

from __future__ import annotations

import pytest
from azure.ai.ml.entities import AmlCompute, ComputeInstance

from lib.azure.automl import AzureAutoML
from lib.azure.datasets import AzureDatasets
from tests.support.azure_fakes import FakeMLClient, FakeMlflowClient, new_fake_client
from tests.support.azure_fakes_automl import bank_csv


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
