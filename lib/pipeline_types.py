"""Retrain pipeline types: specs, versions, runs and their steps, schedules, `PipelineService`.

`lib.workspace` re-exports every name here; the rules for these types live in
`lib.pipeline_rules` and `lib.pipeline_schedules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from lib.domain import TERMINAL_STATES, AutoMLRequest

# A retrain pipeline's steps, in order.
PIPELINE_STEPS = ("dataset", "automl", "register", "gate", "deploy")
STEP_STATES = ("NotStarted", "Queued", "Running", "Completed", "Failed", "Skipped", "Canceled")
SCHEDULE_FREQUENCIES = ("minute", "hour", "day", "week")


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
