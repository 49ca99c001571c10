"""The seam between pages and backends: service protocols, `Workspace`, the upload check.

Both backends implement these protocols; `lib.backend.open_workspace` picks one. The types
crossing the seam live in `lib.domain` and `lib.pipeline_types` and are re-exported here, so
`from lib.workspace import Model` keeps working. Rules both backends share live beside this
module in the seam layer (`lib.names`, `lib.metrics`, `lib.automl_rules`, `lib.appinsights`).
Everything crossing the seam is a plain dataclass or a pandas DataFrame, never an SDK object.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from lib.appinsights import RequestKpis, TelemetryQuery
from lib.domain import (
    TERMINAL_STATES,
    AutoMLRequest,
    BenchmarkRequest,
    BenchmarkRun,
    ComputeTarget,
    Dataset,
    DatasetVersion,
    Deployment,
    DeploymentEvent,
    Endpoint,
    Job,
    Model,
    Trial,
)
from lib.drift import DriftReport
from lib.errors import WorkspaceError  # defined apart so lib.names can raise it without a cycle
from lib.names import endpoint_name_for, validate_dataset_name
from lib.pipeline_types import (
    PIPELINE_STEPS,
    SCHEDULE_FREQUENCIES,
    STEP_STATES,
    Pipeline,
    PipelineAgent,
    PipelineRun,
    PipelineService,
    PipelineSpec,
    PipelineStep,
    Schedule,
)
from lib.settings import Settings, UploadLimits
from lib.tabular import ParsedTable, TableError, parse_table

__all__ = [
    "PIPELINE_STEPS",
    "SCHEDULE_FREQUENCIES",
    "STEP_STATES",
    "TERMINAL_STATES",
    "AutoMLRequest",
    "AutoMLService",
    "BenchmarkRequest",
    "BenchmarkRun",
    "BenchmarkService",
    "ClusterService",
    "ComputeService",
    "ComputeTarget",
    "Dataset",
    "DatasetService",
    "DatasetVersion",
    "Deployment",
    "DeploymentEvent",
    "Endpoint",
    "EndpointService",
    "Job",
    "Model",
    "ModelService",
    "MonitoringService",
    "Operation",
    "Pipeline",
    "PipelineAgent",
    "PipelineRun",
    "PipelineService",
    "PipelineSpec",
    "PipelineStep",
    "Schedule",
    "TelemetryService",
    "Trial",
    "Workspace",
    "WorkspaceError",
    "check_upload",
]


def check_upload(
    name: str,
    file_name: str,
    data: bytes,
    limits: UploadLimits | int,
    missing_tokens: Sequence[str] | None = None,
    sheet: str | None = None,
) -> tuple[str, ParsedTable]:
    """Validate a dataset upload the same way on every backend: (clean name, parsed table)."""
    name = validate_dataset_name(name)
    if isinstance(limits, int):
        limits = UploadLimits(max_upload_bytes=limits)
    try:
        parsed = parse_table(
            file_name, data, limits=limits, missing_tokens=missing_tokens, sheet=sheet or None
        )
        return name, parsed
    except TableError as exc:
        raise WorkspaceError(str(exc)) from exc


# --- service protocols -------------------------------------------------------------------


@runtime_checkable
class DatasetService(Protocol):
    def upload(
        self,
        name: str,
        data: bytes,
        file_name: str,
        description: str = "",
        missing_tokens: Sequence[str] | None = None,
        sheet: str | None = None,
    ) -> DatasetVersion:
        """Register bytes as a new immutable version of `name`.

        `missing_tokens` (default `lib.tabular.MISSING_TOKENS`) are read as missing values in
        columns that are otherwise numeric or datetime, by value in number columns when a token
        is a number (`lib.tabular.sentinels`), and in text columns as
        `lib.tabular.text_missing.missing_in_text` says. `sheet` names the sheet of a workbook
        to read (default: the one holding the biggest table).
        """
        ...

    def list(self) -> list[Dataset]: ...

    def versions(self, name: str) -> list[DatasetVersion]: ...

    def get(self, name: str, version: int | None = None) -> DatasetVersion: ...

    def load(self, name: str, version: int | None = None) -> pd.DataFrame: ...

    def preview(self, name: str, version: int | None = None, rows: int = 100) -> pd.DataFrame: ...

    def profile(self, name: str, version: int | None = None) -> pd.DataFrame: ...

    def download(self, name: str, version: int | None = None) -> tuple[str, bytes]:
        """The original file name and bytes of a version."""
        ...

    def delete(self, name: str) -> None: ...


@runtime_checkable
class ComputeService(Protocol):
    def list(self) -> list[ComputeTarget]: ...

    def jobs(self) -> list[Job]:
        """Jobs on this workspace's compute, newest first."""
        ...


@runtime_checkable
class Operation(Protocol):
    """A long-running backend call in flight (e.g. an Azure `begin_*` poller)."""

    action: str
    target: str

    def status(self) -> str: ...

    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> Any: ...


@runtime_checkable
class ClusterService(ComputeService, Protocol):
    """Compute that can be created and scaled (Azure clusters and instances)."""

    def create_cluster(
        self,
        name: str,
        vm_size: str,
        min_nodes: int = 0,
        max_nodes: int = 4,
        idle_seconds: int = 120,
    ) -> Operation: ...

    def resize(self, name: str, min_nodes: int, max_nodes: int) -> Operation: ...

    def delete(self, name: str) -> Operation: ...

    def start_instance(self, name: str) -> Operation: ...

    def stop_instance(self, name: str) -> Operation: ...


@runtime_checkable
class AutoMLService(Protocol):
    def validate(self, request: AutoMLRequest) -> list[str]:
        """Problems that block submission (empty when the request is good)."""
        ...

    def submit(self, request: AutoMLRequest) -> Job: ...

    def jobs(self) -> list[Job]: ...

    def get(self, job_id: str) -> Job: ...

    def cancel(self, job_id: str) -> Job: ...

    def trials(self, job_id: str) -> pd.DataFrame:
        """One row per trial: trial, estimator, primary_metric, best_so_far, wall_time_s, ..."""
        ...

    def leaderboard(self, job_id: str, per_estimator: bool = False) -> pd.DataFrame: ...

    def details(self, job_id: str) -> dict[str, Any]:
        """Best-model details: metrics, roc, pr, confusion, calibration, importance."""
        ...

    def guardrails(self, job_id: str) -> list[dict[str, Any]]: ...

    def log_tail(self, job_id: str, lines: int = 60) -> str: ...


@runtime_checkable
class ModelService(Protocol):
    def register(self, job_id: str, name: str, description: str = "") -> Model: ...

    def list(self) -> list[Model]: ...

    def get(self, name: str, version: int | None = None) -> Model: ...

    def feature_spec(self, name: str, version: int) -> list[dict[str, Any]]:
        """Input columns of a model: name, kind, dtype, categories, min, max, example."""
        ...


@runtime_checkable
class EndpointService(Protocol):
    def deploy(
        self,
        model_name: str,
        model_version: int,
        endpoint_name: str,
        deployment: str | None = None,
        traffic: int = 100,
    ) -> Endpoint:
        """Create the endpoint, or add a deployment of a model version to it (URI and keys unchanged).

        The new deployment (default: the next free colour, `lib.traffic.free_name`) is started and
        verified before it takes `traffic` percent of the live traffic; the other deployments share
        the rest (`lib.traffic.shift`). No request fails during the switch.
        """
        ...

    def deployments(self, name: str) -> list[Deployment]:
        """The endpoint's deployments with their live and mirrored traffic."""
        ...

    def set_traffic(
        self, name: str, traffic: dict[str, int], mirror: dict[str, int] | None = None
    ) -> Endpoint:
        """Change the split (`lib.traffic.check_split`); None `mirror` keeps the current one."""
        ...

    def rollback(self, name: str) -> Endpoint:
        """All live traffic back to the deployment and model version that served before."""
        ...

    def history(self, name: str, limit: int = 50) -> list[DeploymentEvent]:
        """Changes to the endpoint's deployments, newest first."""
        ...

    def delete_deployment(self, name: str, deployment: str) -> None:
        """Remove a deployment that takes no live or mirrored traffic."""
        ...

    def list(self) -> list[Endpoint]: ...

    def get(self, name: str) -> Endpoint: ...

    def keys(self, name: str) -> tuple[str, str]: ...

    def regenerate_key(self, name: str, which: str = "primary") -> tuple[str, str]: ...

    def logs(self, name: str, lines: int = 80) -> str: ...

    def health(self, name: str, timeout: float = 1.0) -> bool: ...

    def stop(self, name: str) -> Endpoint: ...

    def restart(self, name: str) -> Endpoint: ...

    def delete(self, name: str) -> None: ...

    def requests(self, name: str | None = None, limit: int = 20) -> pd.DataFrame:
        """Recent requests with App Insights column names."""
        ...


@runtime_checkable
class BenchmarkService(Protocol):
    """Load tests against any endpoint; runs out of process, results kept as history."""

    def start(self, request: Any, key: str | None) -> Job: ...

    def jobs(self) -> list[Job]: ...

    def get(self, job_id: str) -> Job: ...

    def cancel(self, job_id: str) -> Job: ...

    def run_id(self, job_id: str) -> str | None: ...

    def list(self) -> pd.DataFrame:
        """History: one row per finished run."""
        ...

    def result(self, run_id: str) -> tuple[Any, Any]:
        """(BenchmarkResult, raw samples) of one run."""
        ...

    def delete(self, run_id: str) -> None: ...

    def log_tail(self, job_id: str, lines: int = 40) -> str: ...


@runtime_checkable
class TelemetryService(Protocol):
    """Request and trace tables with `lib.appinsights` column names, oldest row first."""

    def requests(self, query: TelemetryQuery | None = None) -> pd.DataFrame: ...

    def traces(self, query: TelemetryQuery | None = None) -> pd.DataFrame: ...

    def query_text(self, kind: str, query: TelemetryQuery | None = None) -> str:
        """The SQL or KQL behind the `kind` ("requests" or "traces") table, for display."""
        ...

    # Aggregates are computed where the data lives (local roll-ups, KQL `summarize` on Azure):
    # their size depends on the window and bin, never on the number of requests. They ignore
    # `query.limit`. A backend may put a partial-result or throttling message in
    # `frame.attrs["warning"]` (and `RequestKpis.warning`).

    def summary(
        self,
        query: TelemetryQuery,
        bin_s: int,
        by: Sequence[str] = ("Endpoint", "Deployment"),
    ) -> pd.DataFrame:
        """Per time bin (`bin_s` seconds, UTC-aligned) and `by` columns: `SUMMARY_COLUMNS`.

        `by` is any of "Endpoint", "Deployment" (`()`: one row per bin; columns not split by
        hold ""). Only bins with requests have rows; p50/p95/p99 are over every request of the
        row (never an average of percentiles).
        """
        ...

    def result_codes(self, query: TelemetryQuery, bin_s: int) -> pd.DataFrame:
        """Requests per time bin and result code: `CODE_COLUMNS`."""
        ...

    def kpis(self, query: TelemetryQuery) -> RequestKpis:
        """Requests, failures, p50/p95/p99 and mean duration over the whole window."""
        ...

    def status_codes(self, query: TelemetryQuery) -> pd.DataFrame:
        """Requests per result code over the window: `STATUS_COLUMNS`, most frequent first."""
        ...

    # Raw rows (`REQUEST_COLUMNS` / `TRACE_COLUMNS`), always limited; newest first unless stated.

    def slowest(self, query: TelemetryQuery, limit: int = 50) -> pd.DataFrame:
        """The `limit` slowest requests of the window, slowest first."""
        ...

    def failed(self, query: TelemetryQuery, limit: int = 50, offset: int = 0) -> pd.DataFrame:
        """Failed requests (`Success` false) of the window, a page of `limit` after `offset`."""
        ...

    def recent(self, query: TelemetryQuery, limit: int = 100, offset: int = 0) -> pd.DataFrame:
        """Requests of the window, a page of `limit` after `offset`."""
        ...

    def recent_traces(
        self, query: TelemetryQuery, text: str = "", limit: int = 100, offset: int = 0
    ) -> pd.DataFrame:
        """Traces of the window whose message contains `text` (case-insensitive), paginated."""
        ...

    def export_csv(self, query: TelemetryQuery) -> Iterator[bytes]:
        """The window's requests as CSV (header first, oldest row first), streamed in chunks."""
        ...


@runtime_checkable
class MonitoringService(Protocol):
    """Model drift: an endpoint's sampled live inputs and predictions against its training profile."""

    def report(
        self,
        endpoint: str,
        since: datetime,
        until: datetime | None = None,
        bin_s: int = 3600,
        baseline: str | None = None,
    ) -> DriftReport:
        """Per-feature drift over [since, until), ranked by drift; predictions per `bin_s` bin;
        of the model `baseline` (one of the report's `served`), else the newest one's."""
        ...

    def states(self, since: datetime | None = None) -> dict[str, str]:
        """Drift state ("OK", "watch", "drift" or "no data") per endpoint (default: last 24 h)."""
        ...

    def prediction_shares(self, query: TelemetryQuery) -> pd.DataFrame:
        """Sampled predictions per deployment: Endpoint, Deployment, Prediction, Rows, Share."""
        ...


@dataclass
class Workspace:
    """One backend's services, obtained once per dashboard process."""

    kind: str  # "local" or "azure"
    description: str
    reason: str
    settings: Settings
    datasets: DatasetService
    compute: ComputeService | None = None
    automl: AutoMLService | None = None
    models: ModelService | None = None
    endpoints: EndpointService | None = None
    benchmarks: BenchmarkService | None = None
    telemetry: TelemetryService | None = None
    pipelines: PipelineService | None = None
    monitoring: MonitoringService | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        """Counts shown on the Home page."""
        counts = {"datasets": len(self.datasets.list())}
        if self.automl is not None:
            counts["jobs"] = len(self.automl.jobs())
        if self.models is not None:
            counts["models"] = len(self.models.list())
        if self.endpoints is not None:
            counts["endpoints"] = len(self.endpoints.list())
        return counts

    def register_and_deploy(
        self, job_id: str, model_name: str, description: str = ""
    ) -> tuple[Model, Endpoint]:
        """Register a job's best model and deploy it to the endpoint named after the model."""
        if self.models is None or self.endpoints is None:
            raise WorkspaceError("This workspace cannot register and deploy models.")
        model = self.models.register(job_id, model_name, description)
        return model, self.deploy_model(model.name, model.version)

    def deploy_model(
        self, model_name: str, model_version: int, endpoint_name: str | None = None
    ) -> Endpoint:
        """Deploy a model version; the endpoint defaults to the one named after the model."""
        if self.endpoints is None:
            raise WorkspaceError("This workspace has no endpoint service.")
        name = endpoint_name or endpoint_name_for(model_name)
        return self.endpoints.deploy(model_name, model_version, name)
