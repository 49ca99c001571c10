"""The seam between pages and backends: domain types, service protocols, get_workspace().

Pages import only this module (plus `lib.charts` and `lib.scoring`). Everything crossing the
seam is a plain dataclass or a pandas DataFrame, never an SDK object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from lib.settings import Settings, load_settings
from lib.tabular import ParsedTable, TableError, parse_table


class WorkspaceError(Exception):
    """A user-facing error: the message is shown as is."""


# --- domain types -------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    description: str
    file_name: str
    file_format: str  # "csv" or "parquet"
    rows: int
    columns: int
    size_bytes: int
    sha256: str
    created: datetime
    column_names: list[str] = field(default_factory=list)
    uri: str = ""


@dataclass(frozen=True)
class Dataset:
    name: str
    latest_version: int
    versions: int
    description: str
    rows: int
    columns: int
    size_bytes: int
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class ComputeTarget:
    name: str
    kind: str  # "local", "AmlCompute", "ComputeInstance"
    state: str
    vm_size: str = ""
    min_nodes: int = 0
    max_nodes: int = 0
    current_nodes: int = 0
    busy_slots: int = 0
    idle_slots: int = 0
    queued_jobs: int = 0
    cpu_percent: float | None = None
    memory_percent: float | None = None
    idle_seconds_before_scale_down: int | None = None


@dataclass(frozen=True)
class Job:
    id: str
    kind: str  # "automl", "pipeline", ...
    display_name: str
    state: str  # Queued, Running, Completed, Failed, Canceled
    created: datetime
    started: datetime | None = None
    ended: datetime | None = None
    compute: str = "local"
    error: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


TERMINAL_STATES = frozenset({"Completed", "Failed", "Canceled"})


@dataclass(frozen=True)
class Trial:
    job_id: str
    trial: int
    estimator: str
    primary_metric: float | None
    metrics: dict[str, float]
    config: dict[str, Any]
    duration_s: float
    status: str
    run_id: str = ""


@dataclass(frozen=True)
class Model:
    name: str
    version: int
    source_job: str | None
    run_id: str
    uri: str
    created: datetime
    metrics: dict[str, float] = field(default_factory=dict)
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    name: str
    state: str  # Creating, Succeeded, Failed, Unhealthy, Stopped, Deleting
    scoring_uri: str
    swagger_uri: str
    model_name: str
    model_version: int
    created: datetime
    updated: datetime
    error: str | None = None


@dataclass(frozen=True)
class BenchmarkRun:
    id: str
    endpoint: str
    state: str
    created: datetime
    config: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineRun:
    id: str
    pipeline: str
    state: str
    created: datetime
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Schedule:
    name: str
    pipeline: str
    trigger: str  # cron expression or recurrence description
    enabled: bool
    next_run: datetime | None = None


CLASSIFICATION_METRICS = (
    "AUC_weighted",
    "accuracy",
    "f1_score_weighted",
    "precision_score_weighted",
    "recall_score_weighted",
    "average_precision_score_weighted",
    "log_loss",
)
REGRESSION_METRICS = ("r2_score", "rmse", "mae")
# Algorithm names as the local engine (FLAML) knows them.
ESTIMATORS = ("lgbm", "xgboost", "rf", "extra_tree", "lrl1")
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


@dataclass(frozen=True)
class AutoMLRequest:
    """What the AutoML form submits (same fields for both backends)."""

    dataset: str
    dataset_version: int
    target: str
    task: str = "classification"
    primary_metric: str = "AUC_weighted"
    time_budget_s: int = 60
    max_trials: int | None = None
    estimators: list[str] | None = None
    validation: str = "holdout"  # "holdout" or "cv"
    holdout_fraction: float = 0.2
    n_folds: int = 5
    ensemble: bool = True
    experiment_name: str = "automl"
    compute: str = "local"


@dataclass(frozen=True)
class BenchmarkRequest:
    """What the Benchmarks page submits."""

    url: str
    endpoint: str = ""
    concurrency: int = 8
    requests: int | None = 5000
    duration_s: float | None = None
    warmup: int = 50
    timeout_s: float = 10.0
    rows_per_request: int = 1
    dataset: str = ""
    dataset_version: int | None = None
    columns: list[str] = field(default_factory=list)  # the model's input columns
    body_order: str = "cycle"
    keep_alive: bool = True
    tool: str = "opsdeck"  # or "ab"
    slo_p95_ms: float | None = None
    slo_max_error_rate: float | None = None
    label: str = ""


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def validate_dataset_name(name: str) -> str:
    """Names are like Azure data asset names: letters, digits, '-', '_', '.'."""
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise WorkspaceError(
            "Dataset name must start with a letter or digit and use only letters, digits, "
            "'-', '_' or '.' (at most 100 characters)."
        )
    return name


def check_upload(name: str, file_name: str, data: bytes, max_bytes: int) -> tuple[str, ParsedTable]:
    """Validate a dataset upload the same way on every backend: (clean name, parsed table)."""
    name = validate_dataset_name(name)
    try:
        return name, parse_table(file_name, data, max_bytes=max_bytes)
    except TableError as exc:
        raise WorkspaceError(str(exc)) from exc


# --- service protocols -------------------------------------------------------------------


@runtime_checkable
class DatasetService(Protocol):
    def upload(
        self, name: str, data: bytes, file_name: str, description: str = ""
    ) -> DatasetVersion:
        """Register bytes as a new immutable version of `name`."""
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
    def deploy(self, model_name: str, model_version: int, endpoint_name: str) -> Endpoint:
        """Create the endpoint or move it to another model version (URI and keys unchanged)."""
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
    """Request and trace tables with App Insights column names."""

    def requests(
        self,
        endpoint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame: ...

    def traces(
        self,
        endpoint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame: ...

    def query_text(
        self,
        kind: str,
        endpoint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> str:
        """The SQL or KQL behind a table, for display."""
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


def endpoint_name_for(model_name: str) -> str:
    """A valid endpoint name derived from a model name (3-32 chars, letter first)."""
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", model_name).strip("-").lower()
    if not name or not name[0].isalpha():
        name = f"ep-{name}"
    name = name[:32].rstrip("-")
    return name if len(name) >= 3 else f"{name}-ep"


def get_workspace(settings: Settings | None = None) -> Workspace:
    """Azure when a workspace is configured, else the embedded local workspace."""
    settings = settings or load_settings()
    if settings.backend == "azure":
        from lib.azure.workspace import open_azure_workspace

        return open_azure_workspace(settings)
    from lib.local.workspace import open_local_workspace

    return open_local_workspace(settings)
