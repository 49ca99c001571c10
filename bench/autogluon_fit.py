"""Fit AutoGluon on one train/test split and print one JSON line with the holdout score.

Run by the AutoGluon venv's python (AutoGluon pins pandas < 3, so it cannot live in the product
venv); ``bench/automl_suite.py`` writes the split as Parquet and calls this script per preset:

    AG_PYTHON bench/autogluon_fit.py --train train.parquet --test test.parquet --target species \
        --task classification --preset medium_quality --time-limit 60 --seed 42

Only numpy, pandas and scikit-learn are imported at module level, so the suite imports
``holdout_score`` from here: the suite and this script score every system with one definition.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score


def holdout_score(task: str, y: pd.Series, pred: np.ndarray, classes: list) -> float:
    """AUC (binary), weighted one-vs-rest AUC (multiclass) or R²."""
    if task == "regression":
        return float(r2_score(y.to_numpy(dtype=float), np.asarray(pred, dtype=float)))
    labels = [str(c) for c in classes]
    truth = y.astype(str).to_numpy()
    proba = np.asarray(pred, dtype=float)
    if len(labels) == 2:
        return float(roc_auc_score(truth == labels[1], proba[:, 1]))
    return float(roc_auc_score(truth, proba, multi_class="ovr", average="weighted", labels=labels))


def problem(task: str, y: pd.Series) -> tuple[str, str]:
    """AutoGluon's problem type and the eval metric matching the suite's score."""
    if task == "regression":
        return "regression", "r2"
    if y.nunique() == 2:
        return "binary", "roc_auc"
    return "multiclass", "roc_auc_ovr_weighted"


def fit_and_score(
    train: pd.DataFrame,
    test: pd.DataFrame,
    target: str,
    task: str,
    preset: str,
    time_limit: float,
    seed: int,
    path: Path,
    num_cpus: int | str = 2,
) -> dict:
    """Fit one preset on ``train``, score it on ``test``: score, wall seconds, models trained."""
    from autogluon.tabular import TabularPredictor
    from autogluon.tabular.configs.presets_configs import tabular_presets_dict

    if task == "classification":
        # the suite scores string labels; AutoGluon keeps the label dtype it is given
        train = train.assign(**{target: train[target].astype(str)})
    problem_type, metric = problem(task, train[target])
    extra = {}
    uses_dystack = bool(tabular_presets_dict.get(preset, {}).get("dynamic_stacking"))
    if uses_dystack and importlib.util.find_spec("ray") is None:
        # Without ray, best_quality's DyStack sub-fit runs in this process, and when it trains no
        # model in its quarter of a short budget, AutoGluon 1.6.3 leaves the predictor marked as fit
        # and the main fit raises "Learner is already fit": stack without the DyStack check instead.
        extra["dynamic_stacking"] = False
    t = time.time()
    predictor = TabularPredictor(
        label=target,
        problem_type=problem_type,
        eval_metric=metric,
        path=str(path),
        verbosity=0,
        learner_kwargs={"random_state": seed},
    ).fit(train, time_limit=time_limit, presets=preset, num_cpus=num_cpus, **extra)
    X = test.drop(columns=[target])
    if task == "regression":
        pred, classes = predictor.predict(X).to_numpy(), []
    else:
        proba = predictor.predict_proba(X)
        pred, classes = proba.to_numpy(), [str(c) for c in proba.columns]
    wall = time.time() - t
    return {
        "score": holdout_score(task, test[target], pred, classes),
        "wall_s": round(wall, 3),
        "models": len(predictor.model_names()),
        "preset": preset,
        "eval_metric": metric,
        "dynamic_stacking": extra.get("dynamic_stacking", "preset"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--task", choices=["classification", "regression"], required=True)
    ap.add_argument("--preset", default="medium_quality")
    ap.add_argument("--time-limit", type=float, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-cpus", type=int, default=2)
    args = ap.parse_args()
    train, test = pd.read_parquet(args.train), pd.read_parquet(args.test)
    with tempfile.TemporaryDirectory(prefix="ag_fit_") as tmp:
        result = fit_and_score(
            train,
            test,
            args.target,
            args.task,
            args.preset,
            args.time_limit,
            args.seed,
            Path(tmp),
            args.num_cpus,
        )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
