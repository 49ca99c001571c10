"""Domain types that cross the seam: datasets, compute, jobs, models, endpoints, requests.

Plain frozen dataclasses, never SDK objects; both backends build them and pages read them.
`lib.workspace` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    description: str
    file_name: str
    file_format: str  # csv, parquet, excel, arff, json, spss, stata, xport, sas7bdat
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
    validation: str = "auto"  # "auto", "holdout" or "cv" (`lib.automl_rules.VALIDATIONS`)
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
