import socket
from pathlib import Path

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.exceptions import ValidationException
from azure.core.exceptions import (
    ClientAuthenticationError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.identity import CredentialUnavailableError

from lib.azure.client import LazyMLClient, azure_call, build_ml_client
from lib.azure.compute import AzureCompute
from lib.azure.datasets import AzureDatasets
from lib.azure.workspace import open_azure_workspace
from lib.backend import open_workspace
from lib.settings import AzureConfig, Settings
from lib.workspace import ComputeService, DatasetService, WorkspaceError
from tests.support.azure_fakes import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, http_error

CONFIG = AzureConfig(
    subscription_id=SUBSCRIPTION,
    resource_group=RESOURCE_GROUP,
    workspace_name=WORKSPACE,
    source="AZURE_* environment variables",
)


@pytest.fixture
def azure_settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        backend="azure",
        backend_reason="configured for a test",
        azure=CONFIG,
    )


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Record, and refuse, every attempt to resolve a host or open a connection."""
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


class NoSignIn:
    """A credential with nobody signed in (what DefaultAzureCredential gives on a bare machine)."""

    def get_token(self, *scopes, **kwargs):
        raise CredentialUnavailableError(message="No credential in this environment.")

    def get_token_info(self, *scopes, **kwargs):
        raise CredentialUnavailableError(message="No credential in this environment.")


def test_open_azure_workspace_contacts_nothing(
    azure_settings: Settings, no_network: list[tuple]
) -> None:
    ws = open_workspace(azure_settings)
    assert ws.kind == "azure"
    assert WORKSPACE in ws.description and RESOURCE_GROUP in ws.description
    assert isinstance(ws.datasets, DatasetService) and isinstance(ws.datasets, AzureDatasets)
    assert isinstance(ws.compute, ComputeService) and isinstance(ws.compute, AzureCompute)
    client = ws.extras["ml_client"]
    assert isinstance(client, LazyMLClient) and not client.built
    assert no_network == []


def test_open_without_azure_config_says_how_to_configure(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, backend="azure", backend_reason="forced", azure=None)
    with pytest.raises(WorkspaceError, match=r"secrets\.toml"):
        open_azure_workspace(settings)


def test_real_client_is_built_offline_once(no_network: list[tuple]) -> None:
    built = []

    def builder(config):
        built.append(config)
        return build_ml_client(config)

    lazy = LazyMLClient(CONFIG, builder=builder)
    assert built == []
    client = lazy()
    assert isinstance(client, MLClient)
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == (
        SUBSCRIPTION,
        RESOURCE_GROUP,
        WORKSPACE,
    )
    assert lazy() is client and len(built) == 1
    assert no_network == []


def test_build_error_mentions_how_to_configure() -> None:
    def broken_client(**kwargs):
        raise ValueError("subscription_id must be a GUID")

    with pytest.raises(WorkspaceError) as raised:
        build_ml_client(CONFIG, client_factory=broken_client)
    message = str(raised.value)
    assert "subscription_id must be a GUID" in message
    assert "AZURE_* environment variables" in message  # where the bad value came from
    assert "secrets.toml" in message and "az login" in message

    with pytest.raises(WorkspaceError, match=r"No Azure ML workspace is configured.*secrets\.toml"):
        build_ml_client(None)


def test_missing_sign_in_surfaces_on_first_call_as_a_workspace_error(
    azure_settings: Settings, no_network: list[tuple]
) -> None:
    lazy = LazyMLClient(
        CONFIG, builder=lambda c: build_ml_client(c, credential_factory=lambda _: NoSignIn())
    )
    ws = open_azure_workspace(azure_settings, ml_client=lazy)
    # The real MLClient and DataOperations run; the token request fails before any connection.
    with pytest.raises(
        WorkspaceError, match="Could not sign in to Azure to list datasets.*az login"
    ):
        ws.datasets.list()
    with pytest.raises(WorkspaceError, match="Could not sign in to Azure to list compute"):
        ws.compute.list()
    assert no_network == []


@pytest.mark.parametrize(
    "error, expected",
    [
        (ClientAuthenticationError("token expired"), "Could not sign in to Azure to list things"),
        (ResourceNotFoundError("gone"), "Thing x does not exist."),
        (ServiceRequestError("Name or service not known"), "Could not reach Azure to list things"),
        (http_error("AuthorizationFailed", 403), "lacks permission"),
        (http_error("Bad scale settings", 400), r"Azure could not list things \(HTTP 400\)"),
        (
            ValidationException(
                message="Cannot specify both version and label.",
                no_personal_data_message="Cannot specify both version and label.",
            ),
            "both version",
        ),
    ],
)
def test_azure_errors_become_workspace_errors(error: Exception, expected: str) -> None:
    with pytest.raises(WorkspaceError, match=expected) as raised:
        with azure_call("list things", not_found="Thing x does not exist."):
            raise error
    assert raised.value.__cause__ is error


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError):
        with azure_call("list things"):
            raise KeyError("a bug, not an Azure failure")
