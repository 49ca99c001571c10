"""One FLAML config fitted natively: the unit the ensemble scores and the served model holds."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from flaml import AutoML

from lib.local.tabular_model import Member

BOOSTERS = ("lgbm", "xgboost", "xgb_limitdepth")


def plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """A FLAML config as plain Python values, without FLAML's own sample-size key."""
    return {
        str(k): (v.item() if isinstance(v, np.generic) else v)
        for k, v in config.items()
        if k != "FLAML_sample_size"
    }


def learner_class(automl: AutoML, name: str) -> type:
    """FLAML's estimator class for an estimator name, as the search used it."""
    return automl._state.learner_classes[name]


def fit_member(
    learner_cls: type,
    name: str,
    config: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    cat_idx: list[int],
    n_jobs: int,
) -> Member:
    """Fit one FLAML config on an encoded matrix and keep only the native estimator."""
    est = learner_cls(task=task, n_jobs=n_jobs, **plain_config(config))
    kwargs = {"categorical_feature": cat_idx} if name == "lgbm" and cat_idx else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, **kwargs)
    return member_of(name, est, config)


def member_of(name: str, fitted: Any, config: dict[str, Any]) -> Member:
    """The native estimator inside a fitted FLAML estimator, as a model member."""
    native = fitted.estimator
    if name == "lgbm":
        return Member("lgbm", native.booster_, name=name, config=plain_config(config))
    if name in ("xgboost", "xgb_limitdepth"):
        return Member("xgboost", native.get_booster(), name=name, config=plain_config(config))
    return Member("sklearn", native, name=name, config=plain_config(config))


def search_fit_of_best(automl: AutoML, train_rows: int) -> Any | None:
    """FLAML's own fit of the best config, if it was fitted on all ``train_rows`` rows."""
    fitted = getattr(automl, "_trained_estimator", None)
    state = automl._search_states.get(automl.best_estimator)
    if fitted is None or getattr(fitted, "estimator", None) is None or state is None:
        return None
    return fitted if state.best_config_sample_size == train_rows else None
