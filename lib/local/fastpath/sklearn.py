"""scikit-learn members: trees and forests as flat trees, logistic regression as coefficients.

Conventions reproduced: float32 features against float64 thresholds, ``missing_go_to_left``,
per-tree class fractions summed in tree order and divided by the number of trees; the
logistic link in double.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lib.local.fastpath.trees import NAN_LEFT, NAN_RIGHT, NotCompilable, TreeBuilder, tree_sum

_TREES = {
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "ExtraTreeClassifier",
    "ExtraTreeRegressor",
}


def _check_classes(est: Any, n_classes: int, what: str) -> None:
    classes = getattr(est, "classes_", None)
    if classes is None or list(np.asarray(classes).tolist()) != list(range(n_classes)):
        raise NotCompilable(f"{what} classes {classes!r} are not 0..{n_classes - 1}")


def compile_sk_trees(est: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    """Meta and flat arrays of a sklearn tree or forest (class fractions as leaf rows)."""
    trees = list(getattr(est, "estimators_", None) or [est])
    is_forest = hasattr(est, "estimators_")
    if getattr(est, "n_outputs_", 1) != 1:
        raise NotCompilable(f"{type(est).__name__} with several outputs")
    width = n_classes if task == "classification" else 1
    if task == "classification":
        _check_classes(est, n_classes, type(est).__name__)
    builder = TreeBuilder(width)
    for t in trees:
        tree = t.tree_
        if tree.n_features != n_features:
            raise NotCompilable(f"{type(est).__name__} trained on {tree.n_features} features")
        lc, rc, feat, thr = tree.children_left, tree.children_right, tree.feature, tree.threshold
        miss = getattr(tree, "missing_go_to_left", np.zeros(lc.size, dtype=np.uint8))
        value = tree.value[:, 0, :width]

        def split(n: int, feat=feat, thr=thr, miss=miss) -> tuple[int, float]:
            variant = NAN_LEFT if int(miss[n]) else NAN_RIGHT
            return variant * n_features + int(feat[n]), float(thr[n])

        builder.add(
            0,
            lambda n, lc=lc, rc=rc: None if lc[n] == -1 else (int(lc[n]), int(rc[n])),
            split,
            lambda n, value=value: value[n] if width > 1 else float(value[n, 0]),
        )
    meta = {
        "kind": "sk_trees",
        "n_trees": len(trees),
        "forest": is_forest,
        "classes_out": width,
        "depth": builder.depth,
    }
    return meta, builder.arrays("")


def score_sk_trees(
    meta: dict, arr: Mapping[str, np.ndarray], leaves: list[np.ndarray]
) -> np.ndarray:
    width = meta["classes_out"]
    leaf = arr["leaf"]
    # Sequential sum in tree order from zero, as the forest accumulates its trees.
    out = np.stack([tree_sum(leaf[:, c], leaves[0]) for c in range(width)], axis=1)
    if meta["forest"]:
        out /= meta["n_trees"]
    return out if width > 1 else out[:, 0]


def compile_linear(est: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    """Coefficients and intercepts of a logistic regression classifier."""
    if task != "classification":
        raise NotCompilable(f"{type(est).__name__} for regression")
    _check_classes(est, n_classes, type(est).__name__)
    coef = np.ascontiguousarray(est.coef_, dtype=np.float64)
    if coef.shape[1] != n_features:
        raise NotCompilable(f"{type(est).__name__} trained on {coef.shape[1]} features")
    intercept = np.asarray(est.intercept_, dtype=np.float64).reshape(-1)
    meta = {"kind": "linear", "link": "sigmoid" if coef.shape[0] == 1 else "softmax"}
    return meta, {"coef": coef, "intercept": intercept}


def score_linear(meta: dict, arr: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    scores = x @ arr["coef"].T + arr["intercept"]
    if meta["link"] == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
        return np.stack([1 - p, p], axis=1)
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1).reshape(-1, 1)
    return scores


def compile_sklearn(est: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    """Compile a fitted sklearn estimator; trees, forests and logistic regression only."""
    cls = type(est)
    name = cls.__name__
    if not cls.__module__.startswith("sklearn."):
        raise NotCompilable(f"estimator {cls.__module__}.{name}")
    if name in _TREES:
        return compile_sk_trees(est, n_features, task, n_classes)
    if name == "LogisticRegression":
        return compile_linear(est, n_features, task, n_classes)
    raise NotCompilable(f"sklearn estimator {name}")
