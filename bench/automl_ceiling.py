"""How far Bank Marketing's holdout scores go with strong boosters, blends and hindsight.

The reference for ``bench/automl_quality.py``'s goal (mean holdout AUC >= 0.951 and accuracy
>= 0.920 on seeds 42, 7, 2026): the same splits, a set of well-tuned fixed boosters (LightGBM
default, slow, deep and DART, XGBoost, and CatBoost when installed), each fitted with 5-fold
out-of-fold scores on the train part and once on all of it, then every equal-weight blend of
up to three. For each model or blend: holdout AUC, accuracy at 0.5, at the threshold that is
best out of fold (what a model can honestly claim), and at the holdout's own best threshold
(hindsight: an upper bound no model can claim, as the holdout chose it).

    .venv/bin/python -m bench.automl_ceiling [--no-catboost] [--top 15]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any OpenMP library loads

import argparse  # noqa: E402
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.automl_quality import SEEDS, TARGET, sample_data_path  # noqa: E402

THRESHOLDS = np.round(np.arange(0.30, 0.7001, 0.005), 3)


def _lgbm(**params: Any) -> Callable[[], Any]:
    return lambda: lgb.LGBMClassifier(random_state=0, verbose=-1, n_jobs=1, **params)


def _xgb(**params: Any) -> Callable[[], Any]:
    return lambda: xgb.XGBClassifier(
        enable_categorical=True, tree_method="hist", n_jobs=1, random_state=0, **params
    )


MODELS: dict[str, Callable[[], Any]] = {
    "lgbm_default": _lgbm(),
    "lgbm_slow": _lgbm(
        n_estimators=600,
        learning_rate=0.03,
        num_leaves=15,
        min_child_samples=30,
        colsample_bytree=0.7,
        reg_lambda=1.0,
    ),
    "lgbm_deep": _lgbm(
        n_estimators=300,
        learning_rate=0.05,
        num_leaves=63,
        min_child_samples=40,
        colsample_bytree=0.6,
        reg_lambda=5.0,
    ),
    "lgbm_dart": _lgbm(boosting_type="dart", n_estimators=300, learning_rate=0.1),
    "xgboost": _xgb(
        n_estimators=400, learning_rate=0.05, max_depth=5, subsample=0.8, colsample_bytree=0.8
    ),
}


def _catboost(cat_columns: list[str]) -> Callable[[], Any] | None:
    try:
        from catboost import CatBoostClassifier
    except ImportError:
        return None
    return lambda: CatBoostClassifier(
        iterations=1000,
        thread_count=2,
        verbose=0,
        random_seed=0,
        cat_features=cat_columns,
        allow_writing_files=False,  # no catboost_info folder in the working directory
    )


def _accuracy(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    return float(np.mean((p >= threshold).astype(int) == y))


def _best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    accs = [_accuracy(y, p, t) for t in THRESHOLDS]
    return float(THRESHOLDS[int(np.argmax(accs))])


def scores(
    make: Callable[[], Any], X: pd.DataFrame, y: pd.Series, X_test: pd.DataFrame, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores on the train part (5 folds) and holdout scores of a fit on all of it."""
    oof = np.zeros(len(y))
    for tr, va in StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y):
        oof[va] = make().fit(X.iloc[tr], y.iloc[tr]).predict_proba(X.iloc[va])[:, 1]
    return oof, make().fit(X, y).predict_proba(X_test)[:, 1]


def evaluate(blend: tuple[str, ...], preds: dict, labels: dict) -> dict[str, float]:
    """Mean over the seeds of one model's or equal-weight blend's holdout numbers."""
    rows = []
    for seed, (y_train, y_test) in labels.items():
        oof = np.mean([preds[(name, seed)][0] for name in blend], axis=0)
        p = np.mean([preds[(name, seed)][1] for name in blend], axis=0)
        rows.append(
            {
                "cv_auc": roc_auc_score(y_train, oof),
                "auc": roc_auc_score(y_test, p),
                "acc_0.5": _accuracy(y_test, p, 0.5),
                "acc_oof_thr": _accuracy(y_test, p, _best_threshold(y_train, oof)),
                "acc_hindsight": _accuracy(y_test, p, _best_threshold(y_test, p)),
            }
        )
    frame = pd.DataFrame(rows)
    return {"model": "+".join(blend), **frame.mean().to_dict(), "min_auc": frame.auc.min()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-catboost", action="store_true", help="leave CatBoost out")
    ap.add_argument("--top", type=int, default=15, help="rows of the table, best AUC first")
    args = ap.parse_args()
    path = sample_data_path()
    if not path.exists():
        sys.exit(f"data file not found: {path} (set OPSDECK_SAMPLE_DATA)")
    df = pd.read_csv(path)
    text = [c for c in df.columns if c != TARGET and df[c].dtype.kind not in "biuf"]
    X_all = df.drop(columns=[TARGET])
    boosters = dict(MODELS)
    catboost = None if args.no_catboost else _catboost(text)
    for c in text:
        X_all[c] = pd.Categorical(X_all[c])
    if catboost is not None:
        boosters["catboost"] = catboost
    y_all = (df[TARGET] == "yes").astype(int)
    preds: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    labels: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for seed in SEEDS:
        X, X_test, y, y_test = train_test_split(
            X_all, y_all, test_size=0.2, stratify=y_all, random_state=seed
        )
        labels[seed] = (y.to_numpy(), y_test.to_numpy())
        for name, make in boosters.items():
            t = time.time()
            X_fit, X_hold = X, X_test
            if name == "catboost":  # it takes its categories as text
                X_fit, X_hold = (f.astype(dict.fromkeys(text, str)) for f in (X, X_test))
            preds[(name, seed)] = scores(make, X_fit, y, X_hold, seed)
            print(
                f"seed {seed} {name}: holdout AUC "
                f"{roc_auc_score(y_test, preds[(name, seed)][1]):.4f} ({time.time() - t:.0f}s)",
                flush=True,
            )
    blends = [b for k in (1, 2, 3) for b in itertools.combinations(boosters, k)]
    table = pd.DataFrame([evaluate(b, preds, labels) for b in blends])
    table = table.sort_values("auc", ascending=False)
    print()
    print(table.head(args.top).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    default = table.set_index("model").loc["lgbm_default"]
    print(
        f"\nceiling: {len(blends)} models and blends, best mean AUC {table.auc.max():.4f} "
        f"(goal 0.951), best mean accuracy {table['acc_oof_thr'].max():.4f} at a threshold "
        f"tuned out of fold, {table['acc_hindsight'].max():.4f} at the holdout's own "
        f"(goal 0.920); default LightGBM {default.auc:.4f} / {default['acc_0.5']:.4f}"
    )


if __name__ == "__main__":
    main()
