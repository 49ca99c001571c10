"""What a run is asked to do and what it hands back: the spec, trial events, the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AutoMLSpec:
    target: str
    task: str = "classification"  # or "regression"
    primary_metric: str = "AUC_weighted"
    time_budget_s: float = 60
    max_trials: int | None = None
    estimators: list[str] | None = None  # None = every supported estimator
    validation: str = "auto"  # "auto" (by size), "holdout" or "cv": lib.automl_rules
    holdout_fraction: float = 0.2
    n_folds: int = 5
    ensemble: bool = True
    seed: int = 42
    experiment_name: str = "automl"
    tune_threshold: bool | None = None  # None: only when the primary metric is accuracy
    features: list[str] | None = None  # None: all but constant, ID-like and free-text columns
    # Column -> strptime format its dates were uploaded in: clients may send that text too.
    date_formats: dict[str, str] | None = None
    # Column -> numbers the upload read as missing (-999): clients sending them send no value.
    missing_numbers: dict[str, list[float]] | None = None
    # Columns uploaded with a decimal comma (`2.937,46`), and column -> words the upload read as
    # missing ("Refused"): clients' text is read so too.
    decimal_comma: list[str] | None = None
    missing_words: dict[str, list[str]] | None = None


@dataclass
class TrialEvent:
    trial: int
    estimator: str
    config: dict[str, Any]
    primary_metric: float | None  # this trial's value of the primary metric
    best_so_far: float | None  # best primary metric up to and including this trial
    wall_time_s: float  # seconds since the search started
    duration_s: float
    sample_size: int
    metrics: dict[str, float] = field(default_factory=dict)
    status: str = "Completed"


@dataclass
class AutoMLResult:
    parent_run_id: str
    primary_metric: str
    trials: list[dict[str, Any]]  # trial, estimator, config, <primary>, metrics, duration_s, status
    per_estimator: list[dict[str, Any]]  # one row per estimator (+ ensemble), full metric set
    best_estimator: str
    best_metrics: dict[str, float]
    model_uri: str
    details: dict[str, Any]  # roc, pr, calibration, feature_importance: lists of records
    guardrails: list[dict[str, Any]]
    classes: list[Any] = field(default_factory=list)
    threshold: float | None = None
    ensemble_members: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    budget: dict[str, Any] = field(default_factory=dict)  # promise, elapsed, what was trimmed
    feature_spec: list[dict[str, Any]] = field(default_factory=list)  # the model's inputs
    fastpath: dict[str, Any] | None = None  # compile + verification report, when asked for
    left_out: list[str] = field(default_factory=list)  # columns not trained on (choice, rails)


class AutoMLCanceled(Exception):
    """The caller's ``should_stop`` ended the run; its finished trials stay logged."""

    def __init__(self, message: str, parent_run_id: str = "", trials: int = 0):
        super().__init__(message)
        self.parent_run_id = parent_run_id
        self.trials = trials
