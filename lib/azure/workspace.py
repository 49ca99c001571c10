"""Open the Azure ML workspace named in the settings, without contacting Azure yet."""

from __future__ import annotations

from collections.abc import Callable

from azure.core.credentials import TokenCredential
from azure.core.pipeline.transport import HttpTransport

from lib.azure.automl import AzureAutoML, MlflowClientSource, default_tracking
from lib.azure.client import CONFIGURE_HINT, LazyMLClient, MLClientSource, default_credential
from lib.azure.compute import AzureCompute
from lib.azure.datasets import AzureDatasets, FetchBytes
from lib.azure.endpoints import AzureEndpoints
from lib.azure.models import AzureModels, FetchMLmodel
from lib.azure.pipelines import AzurePipelines
from lib.azure.telemetry import AzureTelemetry, LogsClientFactory, build_logs_client
from lib.errors import WorkspaceError
from lib.local.benchmarks import LocalBenchmarks
from lib.local.jobs import JobManager
from lib.local.store import Store
from lib.settings import AzureConfig, Settings
from lib.workspace import Workspace


def open_azure_workspace(
    settings: Settings,
    ml_client: MLClientSource | None = None,
    fetch_bytes: FetchBytes | None = None,
    mlflow_client: MlflowClientSource | None = None,
    fetch_mlmodel: FetchMLmodel | None = None,
    logs_client: LogsClientFactory | None = None,
    *,
    credential_factory: Callable[[AzureConfig], TokenCredential] = default_credential,
    transport: HttpTransport | None = None,
) -> Workspace:
    """Services over one MLClient that is built, and signs in, on the first call a page makes.

    The MLClient, the MLflow tracking client and the Log Analytics client share one credential
    and one azure-core `transport` (default: requests); any of them can be replaced whole.
    """
    config = settings.azure
    if config is None:
        raise WorkspaceError(f"No Azure ML workspace is configured. {CONFIGURE_HINT}")
    lazy = LazyMLClient(config, credential_factory=credential_factory, transport=transport)
    client = ml_client or lazy
    datasets = AzureDatasets(client, fetch_bytes=fetch_bytes, limits=settings.limits)
    tracking = mlflow_client or (lambda: default_tracking(client, lazy.credential, transport))
    automl = AzureAutoML(client, datasets, mlflow_client=tracking)
    logs = logs_client or (lambda cfg: build_logs_client(cfg, lazy.credential(), transport))
    return Workspace(
        kind="azure",
        description=(
            f"Azure ML workspace {config.workspace_name} "
            f"(resource group {config.resource_group}, subscription {config.subscription_id})"
        ),
        reason=settings.backend_reason,
        settings=settings,
        datasets=datasets,
        compute=AzureCompute(client),
        automl=automl,
        models=AzureModels(client, automl, datasets, fetch_mlmodel=fetch_mlmodel),
        endpoints=AzureEndpoints(client),
        pipelines=AzurePipelines(client, datasets),
        telemetry=AzureTelemetry(config, client_factory=logs),
        # Load tests run from this machine whatever the backend; runs are kept locally.
        benchmarks=LocalBenchmarks(
            JobManager(Store(settings.home), settings.worker_slots), datasets
        ),
        extras={"ml_client": client, "azure_config": config},
    )
