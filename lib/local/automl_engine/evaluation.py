"""Holdout evaluation: the metric set, the accuracy threshold, and the charts' ROC, PR,
calibration, confusion matrix and feature importance."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.preprocessing import label_binarize

from lib.local.tabular_model import Member, TabularModel
from lib.metrics import CLASSIFICATION, METRICS, canonical, higher_is_better, task_metrics

# Threshold-dependent metrics are too coarse to weigh ensemble members with.
THRESHOLD_METRICS = {
    "accuracy",
    "precision_score_weighted",
    "recall_score_weighted",
    "f1_score_weighted",
}
# Half-width of the moving average over the accuracy-vs-threshold curve: the raw argmax on
# out-of-fold rows chases noise of a few rows.
THRESHOLD_SMOOTHING = 0.04
CURVE_POINTS = 200
# Curves of this many classes at most (the most frequent): 100 classes' curves were 2.3 MB of
# run details, written after the engine's clock stopped, and no chart shows them apart.
CURVE_CLASSES = 10


def metric_names(task: str) -> list[str]:
    """Every metric the engine reports for a task (the catalog's, in its order)."""
    return list(task_metrics(task))


def is_metric(name: str) -> bool:
    return name in METRICS


def normalize_metric(name: str, task: str) -> str:
    """Map a user/Azure metric name to the engine's canonical name, or raise."""
    canon = canonical(name)
    table = metric_names(task)
    if canon not in table:
        raise ValueError(f"unknown {task} metric {name!r}; choose one of {sorted(table)}")
    return canon


def greater_is_better(metric: str) -> bool:
    return higher_is_better(metric)


def loss(metric: str, value: float | None) -> float:
    """What the search minimises: ``1 - value`` for scores, the value itself for errors."""
    if value is None or math.isnan(value):
        return math.inf
    return 1.0 - value if greater_is_better(metric) else value


def value_from_loss(metric: str, loss_value: float) -> float:
    return 1.0 - loss_value if greater_is_better(metric) else loss_value


def labels_from_proba(proba: np.ndarray, threshold: float | None) -> np.ndarray:
    if proba.shape[1] == 2 and threshold is not None:
        return (proba[:, 1] >= threshold).astype(int)
    return proba.argmax(axis=1)


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    clipped = np.clip(proba, 1e-15, 1 - 1e-15)
    return skm.log_loss(
        y, clipped / clipped.sum(axis=1, keepdims=True), labels=range(proba.shape[1])
    )


def _ranking_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Weighted one-vs-rest AUC and average precision over every class, as Azure computes them."""
    k = proba.shape[1]
    onehot = label_binarize(y, classes=list(range(k)))
    if k == 2:
        onehot = np.column_stack([1 - onehot[:, 0], onehot[:, 0]])
    present = onehot.sum(axis=0) > 0
    nan = {"AUC_weighted": math.nan, "average_precision_score_weighted": math.nan}
    if present.sum() < 2:
        return nan
    try:
        return {
            "AUC_weighted": skm.roc_auc_score(
                onehot[:, present], proba[:, present], average="weighted"
            ),
            "average_precision_score_weighted": skm.average_precision_score(
                onehot[:, present], proba[:, present], average="weighted"
            ),
        }
    except ValueError:
        return nan


def classification_metrics(
    y: np.ndarray, proba: np.ndarray, threshold: float | None = None
) -> dict[str, float]:
    """Azure's classification metric set; ``y`` holds class indices, ``proba`` n x k."""
    pred = labels_from_proba(proba, threshold)
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision_score_weighted": skm.precision_score(
            y, pred, average="weighted", zero_division=0
        ),
        "recall_score_weighted": skm.recall_score(y, pred, average="weighted", zero_division=0),
        "f1_score_weighted": skm.f1_score(y, pred, average="weighted", zero_division=0),
        "log_loss": _log_loss(y, proba),
        **_ranking_metrics(y, proba),
    }
    return {m: float(v) for m, v in out.items()}


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    rmse = float(np.sqrt(skm.mean_squared_error(y, pred)))
    span = float(np.max(y) - np.min(y)) if len(y) else 0.0
    return {
        "r2_score": float(skm.r2_score(y, pred)),
        "rmse": rmse,
        "normalized_root_mean_squared_error": rmse / span if span > 0 else math.nan,
        "mae": float(skm.mean_absolute_error(y, pred)),
    }


def compute_metrics(
    task: str, y: np.ndarray, scores: np.ndarray, threshold: float | None = None
) -> dict[str, float]:
    """Full metric set from validation targets and scores (probabilities or predictions)."""
    if task == CLASSIFICATION:
        return classification_metrics(y, scores, threshold)
    return regression_metrics(y, scores)


def metric_value(task: str, y: np.ndarray, scores: np.ndarray, metric: str) -> float:
    """One metric of ``compute_metrics`` (same value), computing only what it needs."""
    if task == CLASSIFICATION:
        if metric == "log_loss":
            return float(_log_loss(y, scores))
        if metric in ("AUC_weighted", "average_precision_score_weighted"):
            return float(_ranking_metrics(y, scores)[metric])
    return compute_metrics(task, y, scores)[metric]


def best_accuracy_threshold(
    y: np.ndarray, p1: np.ndarray, smooth: float = THRESHOLD_SMOOTHING
) -> float:
    """Threshold on the positive-class probability that maximises smoothed accuracy.

    Ties go to the threshold nearest 0.5.
    """
    step = 0.005
    grid = np.round(np.arange(0.05, 0.95 + step / 2, step), 3)
    order = np.argsort(p1)
    sorted_p = p1[order]
    # Accuracy at every grid threshold in one pass: positives predicted for p1 >= t.
    below = np.searchsorted(sorted_p, grid, side="left")
    neg_cum = np.concatenate([[0], np.cumsum(y[order] == 0)])
    pos_total = int((y == 1).sum())
    pos_cum = np.concatenate([[0], np.cumsum(y[order] == 1)])
    acc = (neg_cum[below] + (pos_total - pos_cum[below])) / max(1, len(y))
    k = int(round(smooth / step))
    if k > 0:
        padded = np.pad(acc, k, mode="edge")
        acc = np.convolve(padded, np.ones(2 * k + 1) / (2 * k + 1), mode="valid")
    tied = grid[np.isclose(acc, acc.max())]
    return float(tied[np.argmin(np.abs(tied - 0.5))])


def _thin(df: pd.DataFrame, n: int = CURVE_POINTS) -> pd.DataFrame:
    if len(df) <= n:
        return df.reset_index(drop=True)
    idx = np.unique(np.linspace(0, len(df) - 1, n).round().astype(int))
    return df.iloc[idx].reset_index(drop=True)


def classification_details(
    y: np.ndarray, proba: np.ndarray, classes: list[Any], threshold: float | None
) -> dict[str, Any]:
    """ROC, precision-recall, calibration points and confusion matrix for charting."""
    k = len(classes)
    if k == 2:
        shown = [1]
    else:
        counts = np.bincount(np.asarray(y, dtype=int), minlength=k)
        shown = sorted(np.argsort(-counts, kind="stable")[:CURVE_CLASSES].tolist())
    roc, pr, cal = [], [], []
    for c in shown:
        truth = (y == c).astype(int)
        if truth.min() == truth.max():
            continue
        fpr, tpr, thr = skm.roc_curve(truth, proba[:, c])
        thr = np.minimum(thr, 1.0)  # the first point's threshold is +inf
        roc.append(
            _thin(
                pd.DataFrame({"class": str(classes[c]), "fpr": fpr, "tpr": tpr, "threshold": thr})
            )
        )
        prec, rec, _ = skm.precision_recall_curve(truth, proba[:, c])
        pr.append(_thin(pd.DataFrame({"class": str(classes[c]), "recall": rec, "precision": prec})))
        frac, mean_pred = calibration_curve(truth, proba[:, c], n_bins=10, strategy="quantile")
        cal.append(
            pd.DataFrame(
                {"class": str(classes[c]), "mean_predicted": mean_pred, "fraction_positive": frac}
            )
        )
    pred = labels_from_proba(proba, threshold)
    matrix = skm.confusion_matrix(y, pred, labels=list(range(k)))

    def cat(parts: list[pd.DataFrame], cols: list[str]) -> list[dict[str, Any]]:
        if not parts:
            return []
        frame = pd.concat(parts, ignore_index=True)[cols]
        return frame.to_dict("records")

    return {
        "roc": cat(roc, ["class", "fpr", "tpr", "threshold"]),
        "pr": cat(pr, ["class", "recall", "precision"]),
        "calibration": cat(cal, ["class", "mean_predicted", "fraction_positive"]),
        "confusion": {"labels": [str(c) for c in classes], "matrix": matrix.tolist()},
        "threshold": threshold,
    }


def _member_importance(member: Member, n_features: int) -> np.ndarray:
    est = member.estimator
    if member.kind == "lgbm":
        imp = np.asarray(est.feature_importance(importance_type="gain"), dtype=float)
    elif member.kind == "xgboost":
        score = est.get_score(importance_type="gain")
        imp = np.zeros(n_features)
        for key, v in score.items():
            imp[int(key.lstrip("f"))] = v
    elif hasattr(est, "feature_importances_"):
        imp = np.asarray(est.feature_importances_, dtype=float)
    elif hasattr(est, "coef_"):
        imp = np.abs(np.asarray(est.coef_, dtype=float)).reshape(-1, n_features).sum(axis=0)
    else:
        imp = np.zeros(n_features)
    total = imp.sum()
    return imp / total if total > 0 else imp


def feature_importance(model: TabularModel) -> pd.DataFrame:
    """Weight-averaged normalised importance (gain for boosters) per input feature."""
    n = len(model.feature_names)
    total = np.zeros(n)
    weights = sum(m.weight for m in model.members)
    for m in model.members:
        total += _member_importance(m, n) * m.weight / weights
    out = pd.DataFrame({"feature": model.feature_names, "importance": total})
    return out.sort_values("importance", ascending=False, ignore_index=True)


def model_details(
    model: TabularModel,
    task: str,
    y_val: np.ndarray,
    val_scores: np.ndarray,
    classes: list[Any],
    threshold: float | None,
    validation: str,
    seed: int,
) -> dict[str, Any]:
    """Everything the best-model charts need, from the validation rows' scores."""
    details: dict[str, Any] = {"feature_importance": feature_importance(model).to_dict("records")}
    if task == CLASSIFICATION:
        details.update(classification_details(y_val, val_scores, classes, threshold))
    else:
        sample = np.random.default_rng(seed).permutation(len(y_val))[:2000]
        details["predicted_vs_true"] = [
            {"true": float(t), "predicted": float(v)}
            for t, v in zip(y_val[sample], val_scores[sample], strict=True)
        ]
    details["validation"] = validation
    return details
