"""Best-model details from the artifacts AutoML logs on a trial: confusion matrix, ROC and PR curves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ReadArtifact = Callable[[str, str], dict[str, Any] | None]


def confusion(artifact: dict[str, Any]) -> dict[str, Any]:
    """Labels and matrix from Azure's `confusion_matrix` artifact ({} when incomplete)."""
    data = artifact.get("data", artifact)
    labels, matrix = data.get("class_labels"), data.get("matrix")
    if not labels or not matrix:
        return {}
    return {"labels": [str(label) for label in labels], "matrix": matrix}


def curves(artifact: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """ROC and PR points from Azure's `accuracy_table` ([tp, fp, tn, fn] per class and threshold)."""
    data = artifact.get("data", artifact)
    labels = data.get("class_labels") or []
    thresholds = data.get("probability_thresholds") or []
    tables = data.get("probability_tables") or []
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    for label, table in zip(labels, tables, strict=False):
        for threshold, counts in zip(thresholds, table, strict=False):
            tp, fp, tn, fn = (float(c) for c in counts[:4])
            tpr = tp / (tp + fn) if tp + fn else 0.0
            fpr = fp / (fp + tn) if fp + tn else 0.0
            point = {"class": str(label), "threshold": float(threshold)}
            roc.append({**point, "fpr": fpr, "tpr": tpr})
            if tp + fp:
                pr.append({**point, "recall": tpr, "precision": tp / (tp + fp)})
    return roc, pr


def best_model_details(best: dict[str, Any], read_artifact: ReadArtifact) -> dict[str, Any]:
    """The details of the best trial (`describe_best`), with the curves Azure logged on it."""
    details: dict[str, Any] = {
        "best_estimator": best["estimator"],
        "run_id": best["run_id"],
        "metrics": best["metrics"],
        "roc": [],
        "pr": [],
        "confusion": {},
        "calibration": [],
        "feature_importance": [],
    }
    if (matrix := read_artifact(best["run_id"], "confusion_matrix")) is not None:
        details["confusion"] = confusion(matrix)
    if (table := read_artifact(best["run_id"], "accuracy_table")) is not None:
        details["roc"], details["pr"] = curves(table)
    return details
