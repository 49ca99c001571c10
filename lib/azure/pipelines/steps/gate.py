"""Gate step: the new model (challenger) against the endpoint's live model (champion).

Both are scored on the holdout rows of the split step; the new model never trained on them.
Deploy only if the challenger beats the champion's primary metric by more than the margin; no
live model means deploy. The decision and both numbers are written out and set as job tags.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LOWER_IS_BETTER = {"log_loss", "rmse", "mae", "normalized_root_mean_squared_error"}


def decide(
    metric: str, challenger: float | None, champion: float | None, margin: float
) -> tuple[str, str]:
    """("deploy" | "keep", why); the same rule as opsdeck's `lib.pipeline_gate.decide`."""
    if champion is None:
        return "deploy", "no live model on the endpoint: the new model is deployed"
    if challenger is None or not math.isfinite(challenger):
        return "keep", f"the new model has no {metric} value"
    gain = champion - challenger if metric in LOWER_IS_BETTER else challenger - champion
    compared = f"new {challenger:.4f} vs live {champion:.4f} ({metric}, gain {gain:+.4f})"
    if gain > margin:
        return "deploy", f"{compared} beats the margin {margin:g}"
    return "keep", f"{compared} does not beat the margin {margin:g}: the live model stays"


def metric_value(metric: str, y: pd.Series, model: Any, X: pd.DataFrame, task: str) -> float:
    """One of opsdeck's metrics of a fitted scikit-learn style model on these rows."""
    from sklearn import metrics as skm
    from sklearn.preprocessing import label_binarize

    if task != "classification":
        pred = np.asarray(model.predict(X), dtype=float)
        truth = y.to_numpy(dtype=float)
        return float(
            {
                "r2_score": lambda: skm.r2_score(truth, pred),
                "rmse": lambda: math.sqrt(skm.mean_squared_error(truth, pred)),
                "mae": lambda: skm.mean_absolute_error(truth, pred),
            }[metric]()
        )
    classes = list(model.classes_)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    labels = [classes[i] for i in proba.argmax(axis=1)]
    if metric == "accuracy":
        return float(skm.accuracy_score(y, labels))
    if metric in ("precision_score_weighted", "recall_score_weighted", "f1_score_weighted"):
        scorer = {
            "precision_score_weighted": skm.precision_score,
            "recall_score_weighted": skm.recall_score,
            "f1_score_weighted": skm.f1_score,
        }[metric]
        return float(scorer(y, labels, average="weighted", zero_division=0))
    if metric == "log_loss":
        return float(skm.log_loss(y, proba, labels=classes))
    onehot = label_binarize(y, classes=classes)
    if len(classes) == 2:
        onehot = np.column_stack([1 - onehot[:, 0], onehot[:, 0]])
    if metric == "AUC_weighted":
        return float(skm.roc_auc_score(onehot, proba, average="weighted"))
    if metric == "average_precision_score_weighted":
        return float(skm.average_precision_score(onehot, proba, average="weighted"))
    raise ValueError(f"unknown metric {metric}")


def live_model(ml: Any, endpoint: str) -> tuple[str, int] | None:
    """(name, version) of the deployment taking most of the endpoint's traffic, or None."""
    try:
        entity = ml.online_endpoints.get(endpoint)
    except Exception:  # noqa: BLE001 - no endpoint yet: nothing is live
        return None
    traffic = dict(entity.traffic or {})
    if not traffic or max(traffic.values()) <= 0:
        return None
    deployment = ml.online_deployments.get(max(traffic, key=traffic.get), endpoint)
    _, name, version = str(deployment.model).rsplit(":", 2)
    return name.split("/")[-1], int(version)


def main(argv: list[str] | None = None) -> None:
    import mlflow
    import mltable
    from register import ml_client

    parser = argparse.ArgumentParser()
    parser.add_argument("--challenger", type=Path, required=True)
    parser.add_argument("--valid", type=Path, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", default="classification")
    parser.add_argument("--metric", required=True)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--decision", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = mltable.load(str(args.valid)).to_pandas_dataframe()
    X, y = rows.drop(columns=[args.target]), rows[args.target]
    challenger = metric_value(
        args.metric, y, mlflow.sklearn.load_model(str(args.challenger)), X, args.task
    )
    champion_model = live_model(ml_client(), args.endpoint)
    champion = None
    if champion_model is not None:
        name, version = champion_model
        model = mlflow.sklearn.load_model(f"models:/{name}/{version}")
        champion = metric_value(args.metric, y, model, X, args.task)
    decision, reason = decide(args.metric, challenger, champion, args.margin)
    record = {
        "decision": decision,
        "reason": reason,
        "metric": args.metric,
        "challenger": challenger,
        "champion": champion,
        "margin": args.margin,
        "champion_model": f"{champion_model[0]} v{champion_model[1]}" if champion_model else "",
        "rows": len(rows),
        "rows_kind": "holdout",
    }
    args.decision.mkdir(parents=True, exist_ok=True)
    (args.decision / "decision.json").write_text(json.dumps(record))
    mlflow.set_tags({"opsdeck.gate": json.dumps(record)})
    logging.info("gate: %s - %s", decision, reason)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
