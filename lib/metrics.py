"""The one metric catalog: every model metric's task, direction and label.

Names are Azure AutoML's (`AUC_weighted`, `r2_score`, ...); the local engine computes the same
set. `CLASSIFICATION_METRICS` / `REGRESSION_METRICS` are the primary-metric choices of the AutoML
form, in the order the form offers them.
"""

from __future__ import annotations

from dataclasses import dataclass

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)


@dataclass(frozen=True)
class Metric:
    name: str
    task: str  # "classification" or "regression"
    higher_is_better: bool
    label: str
    primary: bool = True  # offered as an AutoML primary metric


CATALOG: tuple[Metric, ...] = (
    Metric("AUC_weighted", CLASSIFICATION, True, "AUC (weighted)"),
    Metric("accuracy", CLASSIFICATION, True, "Accuracy"),
    Metric("f1_score_weighted", CLASSIFICATION, True, "F1 score (weighted)"),
    Metric("precision_score_weighted", CLASSIFICATION, True, "Precision (weighted)"),
    Metric("recall_score_weighted", CLASSIFICATION, True, "Recall (weighted)"),
    Metric(
        "average_precision_score_weighted", CLASSIFICATION, True, "Average precision (weighted)"
    ),
    Metric("log_loss", CLASSIFICATION, False, "Log loss"),
    Metric("r2_score", REGRESSION, True, "R²"),
    Metric("rmse", REGRESSION, False, "RMSE"),
    Metric("mae", REGRESSION, False, "MAE"),
    # Reported next to the others, but not offered as a primary metric: on Azure the primary
    # metric named "rmse" is already this one.
    Metric(
        "normalized_root_mean_squared_error", REGRESSION, False, "Normalized RMSE", primary=False
    ),
)
METRICS: dict[str, Metric] = {m.name: m for m in CATALOG}
CLASSIFICATION_METRICS: tuple[str, ...] = tuple(
    m.name for m in CATALOG if m.task == CLASSIFICATION and m.primary
)
REGRESSION_METRICS: tuple[str, ...] = tuple(
    m.name for m in CATALOG if m.task == REGRESSION and m.primary
)
LOWER_IS_BETTER: frozenset[str] = frozenset(m.name for m in CATALOG if not m.higher_is_better)
# Other spellings of catalog metrics (scikit-learn / FLAML names).
ALIASES: dict[str, str] = {
    "auc": "AUC_weighted",
    "roc_auc": "AUC_weighted",
    "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae",
    "r2": "r2_score",
    "f1": "f1_score_weighted",
}
# Fallback for names outside the catalog (e.g. metrics only Azure logs).
_LOWER_IS_BETTER_HINTS = ("loss", "error", "rmse", "mse", "mae", "mape")


def canonical(name: str) -> str:
    """The catalog name for `name` or one of its aliases (unknown names unchanged)."""
    return ALIASES.get(name, name)


def primary_metrics(task: str) -> tuple[str, ...]:
    """The primary-metric choices for a task."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    return CLASSIFICATION_METRICS if task == CLASSIFICATION else REGRESSION_METRICS


def task_metrics(task: str) -> tuple[str, ...]:
    """Every catalog metric of a task, primary or not."""
    return tuple(m.name for m in CATALOG if m.task == task)


def higher_is_better(name: str) -> bool:
    """The metric's direction; names outside the catalog are guessed (loss/error are lower)."""
    metric = METRICS.get(canonical(name))
    if metric is not None:
        return metric.higher_is_better
    lowered = name.lower()
    return not any(hint in lowered for hint in _LOWER_IS_BETTER_HINTS)


def label(name: str) -> str:
    """A human label for a metric (the name itself when it is not in the catalog)."""
    metric = METRICS.get(canonical(name))
    return metric.label if metric is not None else name


def task_of(metrics: dict[str, float]) -> str | None:
    """The task a model's recorded metrics belong to (None when they name neither)."""
    names = {canonical(name) for name in metrics}
    if names & set(task_metrics(REGRESSION)):
        return REGRESSION
    if names & set(task_metrics(CLASSIFICATION)):
        return CLASSIFICATION
    return None
