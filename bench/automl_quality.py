"""AutoML quality on Bank Marketing against a default-LightGBM baseline, on fixed splits.

Protocol (reference/performance.md): ``train_test_split(test_size=0.2, stratify=y,
random_state=seed)`` for seeds 42, 7, 2026; ``run_automl`` sees the train part only; holdout
AUC and accuracy with ``y == "yes"`` as the positive class.

    .venv/bin/python -m bench.automl_quality --budget 300
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any OpenMP library loads

import argparse  # noqa: E402
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lib.local import tracking  # noqa: E402
from lib.local.automl_engine import AutoMLSpec, promised_seconds, run_automl  # noqa: E402

SEEDS = (42, 7, 2026)
TARGET = "y"


def sample_data_path() -> Path:
    env = os.environ.get("OPSDECK_SAMPLE_DATA")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data" / "bankmarketing_train.csv"


def baseline(train: pd.DataFrame, test: pd.DataFrame) -> tuple[float, float]:
    """LGBMClassifier with default parameters and native categoricals."""

    def prep(frame: pd.DataFrame, cats: dict[str, list] | None = None):
        X = frame.drop(columns=[TARGET]).copy()
        cats = cats or {
            c: sorted(X[c].dropna().unique()) for c in X.columns if X[c].dtype.kind not in "biuf"
        }
        for c, levels in cats.items():
            X[c] = pd.Categorical(X[c], categories=levels)
        return X, cats

    X_tr, cats = prep(train)
    X_te, _ = prep(test, cats)
    model = lgb.LGBMClassifier(random_state=0, verbose=-1)
    model.fit(X_tr, (train[TARGET] == "yes").astype(int))
    p = model.predict_proba(X_te)[:, 1]
    y = (test[TARGET] == "yes").astype(int).to_numpy()
    return roc_auc_score(y, p), accuracy_score(y, (p >= 0.5).astype(int))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=300, help="search seconds per seed")
    ap.add_argument("--validation", choices=["cv", "holdout"], default="cv")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--metric", default="AUC_weighted")
    ap.add_argument("--no-threshold", action="store_true", help="keep the 0.5 threshold")
    ap.add_argument("--no-ensemble", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    args = ap.parse_args()

    path = sample_data_path()
    if not path.exists():
        sys.exit(f"data file not found: {path} (set OPSDECK_SAMPLE_DATA)")
    df = pd.read_csv(path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tracking.ensure_store(Path(tmp))  # an existing workspace's store, not a new one's
        for seed in args.seeds:
            train, test = train_test_split(
                df, test_size=0.2, stratify=df[TARGET], random_state=seed
            )
            spec = AutoMLSpec(
                target=TARGET,
                primary_metric=args.metric,
                time_budget_s=args.budget,
                validation=args.validation,
                n_folds=args.folds,
                ensemble=not args.no_ensemble,
                seed=seed,
                tune_threshold=not args.no_threshold,
                experiment_name=f"bench_{seed}",
            )
            t = time.time()
            result = run_automl(
                train,
                spec,
                tracking_uri=tracking.tracking_uri(Path(tmp)),
                artifact_dir=Path(tmp) / "artifacts",
                log=lambda _msg: None,
            )
            wall = time.time() - t
            model = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model()
            features = test.drop(columns=[TARGET])
            proba = model.predict_proba_frame(features)[:, model.classes_.index("yes")]
            labels = model.predict(None, features)
            y = (test[TARGET] == "yes").astype(int).to_numpy()
            auc = roc_auc_score(y, proba)
            acc = float(np.mean(labels == test[TARGET].to_numpy()))
            # what the tuned threshold bought (or cost) against 0.5 on the same scores
            acc_05 = float(np.mean((proba >= 0.5).astype(int) == y))
            base_auc, base_acc = baseline(train, test)
            rows.append(
                {
                    "seed": seed,
                    "auc": auc,
                    "acc": acc,
                    "acc_at_0.5": acc_05,
                    "base_auc": base_auc,
                    "base_acc": base_acc,
                    "trials": len(result.trials),
                    "best": result.best_estimator
                    + (
                        "(" + "+".join(m["estimator"] for m in result.ensemble_members) + ")"
                        if len(result.ensemble_members) > 1
                        else ""
                    ),
                    "threshold": result.threshold,
                    "wall_s": wall,
                    # within the promise: budget + 10 % + 5 s, counted from the run's start
                    "promise_s": promised_seconds(args.budget),
                    "trimmed": len(result.budget["trimmed"]),
                }
            )
            r = rows[-1]
            print(
                f"seed {seed}: AUC {auc:.4f} (baseline {base_auc:.4f})  "
                f"acc {acc:.4f} (baseline {base_acc:.4f}, ours at 0.5 {acc_05:.4f})  "
                f"trials {r['trials']}  "
                f"best {r['best']}  threshold {r['threshold']}  wall {wall:.0f}s "
                f"(promise {r['promise_s']:.0f}s, {r['trimmed']} steps trimmed)",
                flush=True,
            )
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(
        f"\nmean: AUC {table.auc.mean():.4f} (baseline {table.base_auc.mean():.4f})  "
        f"acc {table.acc.mean():.4f} (baseline {table.base_acc.mean():.4f})  "
        f"goal AUC >= 0.951, acc >= 0.920"
    )
    worse = table[(table.auc < table.base_auc) | (table.acc < table.base_acc)]
    print("below baseline on seeds:", ", ".join(map(str, worse.seed)) or "none")
    overrun = 100 * (table.wall_s / table.promise_s - 1).max()
    print(f"wall time: max {table.wall_s.max():.0f}s, {overrun:+.1f} % against the promise")


if __name__ == "__main__":
    main()
