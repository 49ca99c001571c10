"""The seam between pages and backends: domain types, service protocols, `Workspace`.

Both backends implement these protocols; `lib.backend.open_workspace` picks one. Rules both
backends share live beside this module in the seam layer (`lib.names`, `lib.metrics`,
`lib.automl_rules`, `lib.appinsights`). Everything crossing the seam is a plain dataclass or a
pandas DataFrame, never an SDK object.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from lib.appinsights import RequestKpis, TelemetryQuery
from lib.drift import DriftReport
from lib.errors import WorkspaceError  # defined apart so lib.names can raise it without a cycle
from lib.names import endpoint_name_for, validate_dataset_name
from lib.settings import Settings, UploadLimits
from lib.tabular import ParsedTable, TableError, parse_table

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
    # What the scoring URI accepts (a `lib.scoring.SHAPES` request shape) and whether it can
    # answer with class probabilities (Azure's MLflow no-code deployments call predict only).
    request_shape: str = "inputs"
    probabilities: bool = True


@dataclass(frozen=True)
class Deployment:
    """A model version behind an endpoint, with its share of live and mirrored traffic (%)."""

    endpoint: str
    name: str
    model_name: str
    model_version: int
    traffic: int = 0
    mirror: int = 0
    state: str = "Succeeded"  # Creating, Succeeded, Failed
    created: datetime | None = None
    updated: datetime | None = None
    note: str = ""  # how it is served (e.g. the fast path's agreement check)


@dataclass(frozen=True)
class DeploymentEvent:
    """One change to an endpoint's deployments and the split it left (`lib.traffic`)."""

    endpoint: str
    time: datetime
    who: str
    action: str  # deploy, traffic, rollback, restart, delete-deployment
    detail: str
    traffic: dict[str, int] = field(default_factory=dict)
    mirror: dict[str, int] = field(default_factory=dict)
    # deployment -> (model name, model version) at the time of the event
    models: dict[str, tuple[str, int]] = field(default_factory=dict)
    outcome: str = "Succeeded"  # or Failed (the split was left as it was)


@dataclass(frozen=True)
class BenchmarkRun:
    id: str
    endpoint: str
    state: str
    created: datetime
    config: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineStep:
    """One step of a pipeline run; `outputs` hold what it produced (job id, model version, ...)."""

    name: str  # one of PIPELINE_STEPS
    state: str  # one of STEP_STATES
    started: datetime | None = None
    ended: datetime | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    job_id: str | None = None  # the AutoML job of the automl step

    @property
    def duration_s(self) -> float | None:
        if self.started is None:
            return None
        return ((self.ended or datetime.now(self.started.tzinfo)) - self.started).total_seconds()


@dataclass(frozen=True)
class PipelineRun:
    id: str
    pipeline: str
    state: str  # NotStarted, Queued, Running, Completed, Failed, Canceled
    created: datetime
    steps: list[PipelineStep] = field(default_factory=list)
    pipeline_version: int = 0
    trigger: str = "manual"  # manual, rest, schedule:<name>, data:<dataset>
    experiment: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)  # the overrides of this run
    started: datetime | None = None
    ended: datetime | None = None
    error: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)  # dataset_version, automl_job, gate...

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class Schedule:
    """A time schedule (cron or recurrence) or a data trigger that starts runs of a pipeline."""

    name: str
    pipeline: str
    trigger: str  # human description, e.g. "every 5 minutes" or "new version of bank"
    enabled: bool
    next_run: datetime | None = None
    kind: str = "recurrence"  # "cron", "recurrence" or "data"
    cron: str = ""  # five fields, for kind "cron"
    frequency: str = "day"  # minute, hour, day, week (kind "recurrence")
    interval: int = 1
    at_time: str = ""  # "HH:MM" for hour/day/week recurrences ("" = from the start time)
    time_zone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    dataset: str = ""  # kind "data": the dataset whose new versions start runs
    parameters: dict[str, Any] = field(default_factory=dict)
    last_fired: datetime | None = None
    last_run_id: str = ""
    last_error: str = ""  # why the last fire could not start a run
    created: datetime | None = None


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
    # The feature columns to train on; None = every column but the target, minus the
    # constant, ID-like and free-text ones (`lib.guardrails`).
    features: list[str] | None = None


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


def check_upload(
    name: str,
    file_name: str,
    data: bytes,
    limits: UploadLimits | int,
    missing_tokens: Sequence[str] | None = None,
) -> tuple[str, ParsedTable]:
    """Validate a dataset upload the same way on every backend: (clean name, parsed table)."""
    name = validate_dataset_name(name)
    if isinstance(limits, int):
        limits = UploadLimits(max_upload_bytes=limits)
    try:
        return name, parse_table(file_name, data, limits=limits, missing_tokens=missing_tokens)
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
    ) -> DatasetVersion:
        """Register bytes as a new immutable version of `name`.

        `missing_tokens` (default `lib.tabular.MISSING_TOKENS`) are read as missing values in
        columns that are otherwise numeric or datetime.
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
        self, endpoint: str, since: datetime, until: datetime | None = None, bin_s: int = 3600
    ) -> DriftReport:
        """Per-feature drift over [since, until), ranked by drift; predictions per `bin_s` bin."""
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


# --- pipelines -------------------------------------------------------------------------------

# A retrain pipeline's steps, in order.
PIPELINE_STEPS = ("dataset", "automl", "register", "gate", "deploy")
STEP_STATES = ("NotStarted", "Queued", "Running", "Completed", "Failed", "Skipped", "Canceled")
SCHEDULE_FREQUENCIES = ("minute", "hour", "day", "week")


@dataclass(frozen=True)
class PipelineSpec:
    """What a retrain pipeline does. Every field is also a run parameter that can be overridden."""

    dataset: str
    target: str
    dataset_version: int | None = None  # None: the latest version, resolved when a run starts
    task: str = "classification"
    primary_metric: str = "AUC_weighted"
    time_budget_s: int = 60
    max_trials: int | None = None
    estimators: list[str] | None = None
    validation: str = "holdout"
    holdout_fraction: float = 0.2
    n_folds: int = 5
    ensemble: bool = True
    experiment_name: str = "retrain"
    compute: str = "local"
    model_name: str = ""  # "" = <dataset>-<target>
    deploy_endpoint: str = ""  # "" = register only, no deploy step
    gated: bool = True  # deploy only if the new model beats the endpoint's live model
    gate_margin: float = 0.0

    def automl_request(self, dataset_version: int) -> AutoMLRequest:
        """The AutoML job this spec submits for a resolved dataset version."""
        return AutoMLRequest(
            dataset=self.dataset,
            dataset_version=int(dataset_version),
            target=self.target,
            task=self.task,
            primary_metric=self.primary_metric,
            time_budget_s=int(self.time_budget_s),
            max_trials=self.max_trials,
            estimators=list(self.estimators) if self.estimators else None,
            validation=self.validation,
            holdout_fraction=float(self.holdout_fraction),
            n_folds=int(self.n_folds),
            ensemble=bool(self.ensemble),
            experiment_name=self.experiment_name,
            compute=self.compute,
        )


@dataclass(frozen=True)
class Pipeline:
    """One version of a named pipeline definition (editing makes a new version)."""

    name: str
    version: int
    spec: PipelineSpec
    created: datetime
    description: str = ""
    latest_version: int = 0
    published_version: int | None = None  # the version the REST endpoint runs
    rest_endpoint: str = ""  # POST URL once published


@dataclass(frozen=True)
class PipelineAgent:
    """The process that serves published pipelines and fires schedules (state shown on the page)."""

    state: str  # Running, Starting, Stopped, Failed, NotNeeded, Managed (Azure)
    url: str = ""
    pid: int | None = None
    started: datetime | None = None
    error: str | None = None


@runtime_checkable
class PipelineService(Protocol):
    """Retrain pipelines: definitions, runs with steps, publishing, schedules and data triggers."""

    def save(self, name: str, spec: PipelineSpec, description: str = "") -> Pipeline:
        """Create the pipeline or add a new version of it (runs keep the version they used)."""
        ...

    def list(self) -> list[Pipeline]:
        """The latest version of every pipeline."""
        ...

    def get(self, name: str, version: int | None = None) -> Pipeline: ...

    def versions(self, name: str) -> list[Pipeline]: ...

    def delete(self, name: str) -> None: ...

    def run(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        trigger: str = "manual",
        experiment: str = "",
    ) -> PipelineRun:
        """Start a run of the latest version with parameter overrides; returns at once."""
        ...

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[PipelineRun]: ...

    def get_run(self, run_id: str) -> PipelineRun: ...

    def cancel_run(self, run_id: str) -> PipelineRun: ...

    def step_log(self, run_id: str, step: str, lines: int = 80) -> str: ...

    def publish(self, name: str) -> Pipeline:
        """Serve the latest version over REST (keys are created on the first publish)."""
        ...

    def unpublish(self, name: str) -> None: ...

    def keys(self, name: str) -> tuple[str, str]: ...

    def regenerate_key(self, name: str, which: str = "primary") -> tuple[str, str]: ...

    def set_schedule(self, schedule: Schedule) -> Schedule:
        """Create or replace a schedule or data trigger (validated; next fire time filled in)."""
        ...

    def schedules(self, pipeline: str | None = None) -> list[Schedule]: ...

    def enable_schedule(self, name: str, enabled: bool) -> Schedule: ...

    def delete_schedule(self, name: str) -> None: ...

    def agent(self) -> PipelineAgent:
        """The state of whatever serves REST calls and fires schedules (restarted if it died)."""
        ...
