"""The Azure ML client: built lazily from `AzureConfig`, with SDK errors mapped to WorkspaceError.

Neither `DefaultAzureCredential()` nor `MLClient(...)` talks to Azure when constructed; the first
operation does. That is where sign-in and network failures surface, so every call into the SDK
goes through `azure_call`, which turns them into messages an operator can act on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from azure.ai.ml import MLClient
from azure.ai.ml.exceptions import MlException
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import HttpTransport

from lib.errors import WorkspaceError
from lib.settings import AzureConfig

CONFIGURE_HINT = (
    "Configure the workspace in the [azure] section of .streamlit/secrets.toml "
    "(subscription_id, resource_group, workspace_name), with AZURE_SUBSCRIPTION_ID, "
    "AZURE_RESOURCE_GROUP and AZURE_ML_WORKSPACE, or with an Azure ML config.json; "
    "then sign in with `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
    "AZURE_CLIENT_SECRET for a service principal). Set OPSDECK_BACKEND=local to use the "
    "embedded workspace instead."
)
SIGN_IN_HINT = (
    "Sign in with `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET "
    "for a service principal, or run where a managed identity is available)."
)

MLClientSource = Callable[[], MLClient]


def default_credential(config: AzureConfig) -> TokenCredential:
    """DefaultAzureCredential, pinned to the configured tenant when there is one."""
    from azure.identity import DefaultAzureCredential

    if not config.tenant_id:
        return DefaultAzureCredential()
    tenant = config.tenant_id
    # DefaultAzureCredential refuses a plain tenant_id; each chained credential takes its own.
    return DefaultAzureCredential(
        shared_cache_tenant_id=tenant,
        visual_studio_code_tenant_id=tenant,
        interactive_browser_tenant_id=tenant,
        workload_identity_tenant_id=tenant,
        additionally_allowed_tenants=[tenant],
    )


def build_ml_client(
    config: AzureConfig | None,
    *,
    credential_factory: Callable[[AzureConfig], TokenCredential] = default_credential,
    client_factory: Callable[..., MLClient] = MLClient,
    transport: HttpTransport | None = None,
) -> MLClient:
    """An MLClient for the configured workspace; WorkspaceError says how to fix a bad setup.

    `transport` (azure-core) carries every request of every operation (default: requests).
    """
    if config is None:
        raise WorkspaceError(f"No Azure ML workspace is configured. {CONFIGURE_HINT}")
    try:
        credential = credential_factory(config)
        extra: dict[str, object] = {"transport": transport} if transport is not None else {}
        return client_factory(
            credential=credential,
            subscription_id=config.subscription_id,
            resource_group_name=config.resource_group,
            workspace_name=config.workspace_name,
            # Upload progress bars go to the dashboard server's stderr, not to the page.
            show_progress=False,
            **extra,
        )
    except WorkspaceError:
        raise
    except Exception as exc:  # the SDK raises assorted types for bad ids and missing packages
        raise WorkspaceError(
            f"Could not set up the Azure ML client for workspace {config.workspace_name!r} "
            f"({config.source or 'unknown source'}): {_first_line(exc)}. {CONFIGURE_HINT}"
        ) from exc


class LazyMLClient:
    """Calling it returns the MLClient, built on first use and then reused (thread-safe).

    It also hands out the one credential and transport that the workspace's other Azure clients
    (MLflow tracking, Log Analytics) use, so the whole backend signs in once.
    """

    def __init__(
        self,
        config: AzureConfig | None,
        builder: Callable[[AzureConfig | None], MLClient] | None = None,
        *,
        credential_factory: Callable[[AzureConfig], TokenCredential] = default_credential,
        transport: HttpTransport | None = None,
    ) -> None:
        self.config = config
        self.transport = transport
        self._credential_factory = credential_factory
        self._credential: TokenCredential | None = None
        self._builder = builder or (
            lambda cfg: build_ml_client(
                cfg, credential_factory=lambda _cfg: self.credential(), transport=transport
            )
        )
        self._client: MLClient | None = None
        self._lock = threading.RLock()

    @property
    def built(self) -> bool:
        return self._client is not None

    def credential(self) -> TokenCredential:
        """The credential of this workspace, built on first use (no sign-in happens yet)."""
        if self.config is None:
            raise WorkspaceError(f"No Azure ML workspace is configured. {CONFIGURE_HINT}")
        if self._credential is None:
            with self._lock:
                if self._credential is None:
                    try:
                        self._credential = self._credential_factory(self.config)
                    except Exception as exc:  # azure.identity raises assorted types here
                        raise WorkspaceError(
                            f"Could not set up the Azure credential: {_first_line(exc)}. "
                            f"{CONFIGURE_HINT}"
                        ) from exc
        return self._credential

    def __call__(self) -> MLClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._builder(self.config)
        return self._client


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc or type(exc).__name__).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _http_detail(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    detail = getattr(error, "message", None) if error is not None else None
    return (detail or _first_line(exc)).strip()


def is_sign_in_failure(exc: BaseException) -> bool:
    """A failed sign-in, however the client wrapped it.

    Some clients (LogsQueryClient) re-raise every error, the credential's own included, as a
    plain HttpResponseError: the original is its `__context__`, a rejected token is HTTP 401.
    """
    if isinstance(exc, ClientAuthenticationError):
        return True
    if isinstance(exc.__context__, ClientAuthenticationError):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code == 401


def describe_azure_error(exc: BaseException, action: str, not_found: str | None = None) -> str:
    """A one-paragraph, user-facing message for an exception raised by the Azure SDK."""
    # Order matters: the authentication and not-found errors are HttpResponseError subclasses.
    if is_sign_in_failure(exc):
        return f"Could not sign in to Azure to {action}. {SIGN_IN_HINT}"
    if isinstance(exc, ResourceNotFoundError):
        return not_found or f"Could not {action}: not found ({_http_detail(exc)})."
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return (
            f"Could not reach Azure to {action}: {_first_line(exc)}. Check the network "
            "connection and proxy settings."
        )
    if isinstance(exc, ResourceExistsError):
        return f"Could not {action}: it already exists ({_http_detail(exc)})."
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        if status == 403:
            return (
                f"Azure refused to {action} (HTTP 403): the signed-in identity lacks permission "
                "on the workspace (a role such as AzureML Data Scientist is needed)."
            )
        code = f"HTTP {status}" if status else "error"
        return f"Azure could not {action} ({code}): {_http_detail(exc)}"
    if isinstance(exc, MlException):
        return f"Could not {action}: {_first_line(exc)}"
    return f"Could not {action}: {_first_line(exc)}"


@contextmanager
def azure_call(action: str, not_found: str | None = None) -> Iterator[None]:
    """Run SDK calls, re-raising Azure and SDK errors as WorkspaceError."""
    try:
        yield
    except WorkspaceError:
        raise
    except (AzureError, MlException) as exc:
        raise WorkspaceError(describe_azure_error(exc, action, not_found)) from exc
