"""Fixtures of the Azure backend tests: an empty fake workspace and its MLflow tracking."""

from __future__ import annotations

import pytest

from tests.support.azure_fakes import FakeMLClient, FakeMlflowClient, new_fake_client


@pytest.fixture
def fake_client() -> FakeMLClient:
    return new_fake_client()


@pytest.fixture
def fake_mlflow() -> FakeMlflowClient:
    return FakeMlflowClient()
