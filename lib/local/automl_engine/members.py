"""One FLAML config fitted natively: the unit the ensemble scores and the served model holds."""

from __future__ import annotations

import functools
import time
import warnings
from typing import Any

import numpy as np
from flaml import AutoML
from flaml.automl.model import LGBMEstimator, XGBoostLimitDepthEstimator, XGBoostSklearnEstimator

from lib.local.tabular_model import Member

BOOSTERS = ("lgbm", "xgboost", "xgb_limitdepth")
_BOOSTER_CLASSES = {
    "lgbm": LGBMEstimator,
    "xgboost": XGBoostSklearnEstimator,
    "xgb_limitdepth": XGBoostLimitDepthEstimator,
}
# Below this many matrix cells (rows x features) a booster fits faster on one thread. With
# OpenMP threads that sleep between parallel regions (the engine's passive wait policy, kept
# so a busy machine is not made busier by spinning), waking the second thread costs more than
# it saves on small data: on Bank Marketing (33k x 20) one LightGBM fit took 0.84 s on one
# thread and 3.5 s on two, on 2.3k x 73 0.15 s vs 2.7 s; at 200k x 30 two threads win by
# 10-20 % (bench/automl_threads.py).
MULTI_THREAD_MIN_CELLS = 4_000_000


def booster_threads(rows: int, features: int, cores: int) -> int:
    """Threads each booster fit uses for a matrix of this size on this many cores."""
    return max(1, cores) if rows * features >= MULTI_THREAD_MIN_CELLS else 1


@functools.cache
def pinned_booster(name: str, n_jobs: int) -> type:
    """FLAML's learner class for booster ``name`` fitting on ``n_jobs`` threads whatever the
    search's own ``n_jobs`` (which the bagged-tree learners keep)."""
    base = _BOOSTER_CLASSES[name]

    def __init__(self, task: Any = "binary", **config: Any) -> None:  # noqa: N807
        base.__init__(self, task, **{**config, "n_jobs": n_jobs})

    return type(base.__name__, (base,), {"__init__": __init__, "__module__": __name__})


# The least time a fit with a deadline is given: it always fits at least one tree.
MIN_FIT_S = 0.05


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
    deadline: float | None = None,
) -> Member:
    """Fit one FLAML config on an encoded matrix and keep only the native estimator.

    A booster stops adding trees at ``deadline`` (epoch seconds): see ``complete``; other
    learners fit whole.
    """
    est = learner_cls(task=task, n_jobs=n_jobs, **plain_config(config))
    kwargs: dict[str, Any] = {"categorical_feature": cat_idx} if name == "lgbm" and cat_idx else {}
    if deadline is not None and name in BOOSTERS:
        # FLAML's own per-iteration callback ends the boosting at start + budget. (Given a
        # budget, its bagged-tree learners fit 1 and 4 trees first to time them, then cap
        # their trees silently: they get none.)
        kwargs["budget"] = max(MIN_FIT_S, deadline - time.time())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, **kwargs)
    return member_of(name, est, config)


def complete(member: Member) -> bool:
    """Whether a booster member was fitted whole: not stopped at its deadline with fewer trees
    than its config asks for; other members are always complete.

    LightGBM also stops by itself once no split qualifies (a stroke table: 589 of 750 trees in
    0.1 s), which is the whole fit; only the deadline's callback stops it by exception, and
    that leaves the iteration it stopped at as ``best_iteration`` (0 otherwise).
    """
    wanted = member.config.get("n_estimators") if member.config else None
    if wanted is None or member.kind not in ("lgbm", "xgboost"):
        return True
    booster = member.estimator
    if member.kind == "lgbm":
        per_round = max(1, booster.num_model_per_iteration())
        stopped = int(getattr(booster, "best_iteration", 0) or 0) > 0
        return not stopped or booster.num_trees() // per_round >= int(wanted)
    return booster.num_boosted_rounds() >= int(wanted)


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
