"""Local AutoML: FLAML search tracked in MLflow, then ensemble, threshold and a served model.

Phases, one module each, in the order a run meets them (``run.run_automl`` reads as this list):
``data`` (guardrails, encode with the model's own ``Encoder``: numerics as floats,
categoricals as integer codes LightGBM treats as native categoricals; validation split) ->
``search`` (FLAML on the encoded matrix, every trial an MLflow child run via ``tracking``) ->
``ensemble`` (validation scores of the strongest configs, holdout or out-of-fold; greedy
weighted ensemble of boosters and bagged trees; decision threshold) -> ``packaging`` (refit
on every row, ``TabularModel`` logged as an MLflow pyfunc under the parent run) ->
``evaluation`` (metrics and the best-model charts).
"""

import os

# NB: OpenMP worker threads of LightGBM/XGBoost/sklearn spin while waiting by default; on a
# shared 2-core machine that turned a 0.1 s fit into 5-50 s. Must be set before the OpenMP
# runtime loads (first import of lightgbm/xgboost/sklearn in the process).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from lib.local.automl_engine.budget import BUDGET_GUARDRAIL, promised_seconds  # noqa: E402
from lib.local.automl_engine.data import SUPPORTED_ESTIMATORS  # noqa: E402
from lib.local.automl_engine.evaluation import (  # noqa: E402
    best_accuracy_threshold,
    classification_details,
    classification_metrics,
    compute_metrics,
    feature_importance,
    greater_is_better,
    normalize_metric,
    regression_metrics,
)
from lib.local.automl_engine.members import fit_member  # noqa: E402
from lib.local.automl_engine.packaging import BAG_SUBSAMPLE, bagged_config  # noqa: E402
from lib.local.automl_engine.run import run_automl  # noqa: E402
from lib.local.automl_engine.spec import (  # noqa: E402
    AutoMLCanceled,
    AutoMLResult,
    AutoMLSpec,
    TrialEvent,
)

__all__ = [
    "BAG_SUBSAMPLE",
    "BUDGET_GUARDRAIL",
    "SUPPORTED_ESTIMATORS",
    "AutoMLCanceled",
    "AutoMLResult",
    "AutoMLSpec",
    "TrialEvent",
    "bagged_config",
    "best_accuracy_threshold",
    "classification_details",
    "classification_metrics",
    "compute_metrics",
    "feature_importance",
    "fit_member",
    "greater_is_better",
    "normalize_metric",
    "promised_seconds",
    "regression_metrics",
    "run_automl",
]
