"""Workspace composition: register-and-deploy, deploy to the default endpoint, backend choice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lib.backend import open_workspace
from lib.settings import load_settings
from lib.workspace import Endpoint, Model, Workspace, WorkspaceError

NOW = datetime(2026, 1, 31, tzinfo=UTC)


class FakeModels:
    def __init__(self) -> None:
        self.registered: list[tuple[str, str, str]] = []

    def register(self, job_id: str, name: str, description: str = "") -> Model:
        if not name:
            raise WorkspaceError("Model name must not be empty.")
        self.registered.append((job_id, name, description))
        return Model(name, len(self.registered), job_id, "run", f"models:/{name}/1", NOW)


class FakeEndpoints:
    def __init__(self) -> None:
        self.deployed: list[tuple[str, int, str]] = []

    def deploy(self, model_name: str, model_version: int, endpoint_name: str) -> Endpoint:
        self.deployed.append((model_name, model_version, endpoint_name))
        uri = f"http://127.0.0.1:1/{endpoint_name}"
        return Endpoint(endpoint_name, "Creating", uri, uri, model_name, model_version, NOW, NOW)


def workspace(models=None, endpoints=None) -> Workspace:
    return Workspace(
        kind="local",
        description="test",
        reason="test",
        settings=load_settings(),
        datasets=None,  # type: ignore[arg-type]
        models=models,
        endpoints=endpoints,
    )


def test_register_and_deploy_uses_the_endpoint_named_after_the_model() -> None:
    models, endpoints = FakeModels(), FakeEndpoints()
    model, endpoint = workspace(models, endpoints).register_and_deploy("job-1", "Bank Model", "d")
    assert models.registered == [("job-1", "Bank Model", "d")]
    assert endpoints.deployed == [("Bank Model", 1, "bank-model")]
    assert (model.version, endpoint.name) == (1, "bank-model")


def test_a_failed_registration_deploys_nothing() -> None:
    endpoints = FakeEndpoints()
    with pytest.raises(WorkspaceError, match="must not be empty"):
        workspace(FakeModels(), endpoints).register_and_deploy("job-1", "")
    assert endpoints.deployed == []


def test_deploy_model_to_a_chosen_or_default_endpoint() -> None:
    endpoints = FakeEndpoints()
    ws = workspace(FakeModels(), endpoints)
    ws.deploy_model("churn", 3)
    ws.deploy_model("churn", 4, "churn-blue")
    assert endpoints.deployed == [("churn", 3, "churn"), ("churn", 4, "churn-blue")]


def test_without_endpoint_service_the_error_says_so() -> None:
    with pytest.raises(WorkspaceError, match="cannot register and deploy"):
        workspace(FakeModels(), None).register_and_deploy("job-1", "m")
    with pytest.raises(WorkspaceError, match="no endpoint service"):
        workspace(FakeModels(), None).deploy_model("m", 1)


def test_open_workspace_is_local_without_azure_settings(hermetic_env) -> None:
    ws = open_workspace(load_settings())
    assert ws.kind == "local" and ws.telemetry is not None
