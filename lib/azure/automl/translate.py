"""Our metric and algorithm names (the `lib.metrics` catalog, FLAML's estimators) ↔ Azure AutoML's."""

from __future__ import annotations

import re

from lib.errors import WorkspaceError
from lib.metrics import CLASSIFICATION, REGRESSION, canonical

# Our primary metrics → the primary metric names Azure AutoML accepts (a subset of the catalog:
# Azure cannot optimise f1, recall or log loss).
PRIMARY_METRICS = {
    CLASSIFICATION: {
        "AUC_weighted": "AUC_weighted",
        "accuracy": "accuracy",
        "precision_score_weighted": "precision_score_weighted",
        "average_precision_score_weighted": "average_precision_score_weighted",
    },
    REGRESSION: {
        "r2_score": "r2_score",
        "rmse": "normalized_root_mean_squared_error",
        "mae": "normalized_mean_absolute_error",
    },
}
# Our (FLAML) estimator names → Azure AutoML algorithm names.
ALGORITHMS = {
    CLASSIFICATION: {
        "lgbm": "LightGBM",
        "xgboost": "XGBoostClassifier",
        "rf": "RandomForest",
        "extra_tree": "ExtremeRandomTrees",
        "lrl1": "LogisticRegression",
    },
    REGRESSION: {
        "lgbm": "LightGBM",
        "xgboost": "XGBoostRegressor",
        "rf": "RandomForest",
        "extra_tree": "ExtremeRandomTrees",
        # FLAML's lrl1 is L1-regularised linear; LassoLars is Azure's L1 linear regressor.
        "lrl1": "LassoLars",
    },
}


def azure_primary_metric(task: str, metric: str) -> str:
    """The Azure name of one of our primary metrics (WorkspaceError if Azure has no such metric)."""
    try:
        return PRIMARY_METRICS[task][metric]
    except KeyError:
        allowed = ", ".join(PRIMARY_METRICS.get(task, {}))
        raise WorkspaceError(
            f"{metric} cannot be the primary metric of an Azure AutoML {task} job "
            f"(choose from {allowed})."
        ) from None


def _squashed(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def our_primary_metric(task: str, azure_metric: str) -> str:
    """Our name for an Azure primary metric, however the SDK spells it ('' when we have none)."""
    reverse = {_squashed(azure): ours for ours, azure in PRIMARY_METRICS.get(task, {}).items()}
    return reverse.get(_squashed(azure_metric), "")


def azure_algorithms(task: str, estimators: list[str] | None) -> list[str] | None:
    """Azure algorithm names for our estimator names; None lets Azure try all of them."""
    if not estimators:
        return None
    table = ALGORITHMS.get(task, {})
    unknown = [e for e in estimators if e not in table]
    if unknown:
        raise WorkspaceError(
            f"Unknown algorithm(s) {', '.join(unknown)} (choose from {', '.join(table)})."
        )
    return list(dict.fromkeys(table[e] for e in estimators))


def with_metric_aliases(metrics: dict[str, float]) -> dict[str, float]:
    """Child-run metrics plus the catalog's names for those Azure logs under another name.

    Azure logs `root_mean_squared_error`, the catalog calls it `rmse` (see `lib.metrics.ALIASES`).
    """
    out = {k: float(v) for k, v in metrics.items()}
    for name, value in list(out.items()):
        out.setdefault(canonical(name), value)
    return out
