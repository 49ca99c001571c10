"""Local AutoML: FLAML search tracked in MLflow, then ensemble, threshold and a served model.

Flow: guardrails -> encode with the model's own ``Encoder`` (numerics as floats, categoricals
as integer codes that LightGBM treats as native categoricals) -> FLAML search on the encoded
matrix, every trial a child run -> validation scores of the strongest configs (holdout split
or out-of-fold) -> greedy weighted ensemble (boosters, random forests), decision threshold ->
refit on all rows (boosters averaged over several seeds) -> ``TabularModel`` logged as an
MLflow pyfunc under the parent run.

FLAML is fed the encoded numpy matrix rather than a DataFrame so that its own pandas
preprocessing is never part of the model: training and serving see the very same floats.
"""

from __future__ import annotations

import os

# NB: OpenMP worker threads of LightGBM/XGBoost/sklearn spin while waiting by default; on a
# shared 2-core machine that turned a 0.1 s fit into 5-50 s. Must be set before the OpenMP
# runtime loads (first import of lightgbm/xgboost/sklearn in the process).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib.metadata  # noqa: E402
import json
import logging
import math
import queue
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from flaml import AutoML
from mlflow.entities import Metric, Param, RunTag
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.preprocessing import label_binarize

from lib.local import guardrails as gr
from lib.local.tabular_model import Encoder, Member, TabularModel, write_model_code

CLASSIFICATION_METRICS: dict[str, bool] = {  # name -> greater is better
    "accuracy": True,
    "AUC_weighted": True,
    "precision_score_weighted": True,
    "recall_score_weighted": True,
    "f1_score_weighted": True,
    "log_loss": False,
    "average_precision_score_weighted": True,
}
REGRESSION_METRICS: dict[str, bool] = {
    "r2_score": True,
    "normalized_root_mean_squared_error": False,
    "rmse": False,
    "mae": False,
}
METRIC_ALIASES = {
    "auc": "AUC_weighted",
    "roc_auc": "AUC_weighted",
    "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae",
    "r2": "r2_score",
    "f1": "f1_score_weighted",
}
# Threshold-dependent metrics are too coarse to weigh ensemble members with.
THRESHOLD_METRICS = {
    "accuracy",
    "precision_score_weighted",
    "recall_score_weighted",
    "f1_score_weighted",
}
BOOSTERS = ("lgbm", "xgboost", "xgb_limitdepth")
SUPPORTED_ESTIMATORS = {
    "classification": ["lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree", "lrl1"],
    "regression": ["lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree"],
}
# Extra first points for the search besides FLAML's cheap initial configs: the libraries'
# own defaults (a strong tabular baseline) and a slower-learning variant of each, so the
# search never ends below what an untuned booster would give.
STARTING_POINTS: dict[str, list[dict[str, Any]]] = {
    "lgbm": [
        {
            "n_estimators": 100,
            "num_leaves": 31,
            "min_child_samples": 20,
            "learning_rate": 0.1,
            "log_max_bin": 8,
            "colsample_bytree": 1.0,
            "reg_alpha": 1 / 1024,
            "reg_lambda": 1 / 1024,
        },
        {
            "n_estimators": 500,
            "num_leaves": 15,
            "min_child_samples": 30,
            "learning_rate": 0.03,
            "log_max_bin": 8,
            "colsample_bytree": 0.7,
            "reg_alpha": 1 / 1024,
            "reg_lambda": 1.0,
        },
    ],
    "xgb_limitdepth": [
        {
            "n_estimators": 300,
            "max_depth": 5,
            "min_child_weight": 1.0,
            "learning_rate": 0.05,
            "subsample": 0.8,
            "colsample_bylevel": 1.0,
            "colsample_bytree": 0.8,
            "reg_alpha": 1 / 1024,
            "reg_lambda": 1.0,
        }
    ],
}
STARTING_POINTS_MIN_ROWS = 1000
ENSEMBLE_ROUNDS = 25
# Final boosters can be refit with several seeds and averaged (LightGBM with row subsampling
# so the seeds differ). Measured on Bank Marketing it moved holdout AUC by ~0.0002 (noise) while
# multiplying the trees an endpoint evaluates per request (single-row throughput -40%), so it
# is off by default; extra seeds only ever run while the wall time allows.
FINAL_SEEDS = 1
BAG_SUBSAMPLE = 0.8
# Wall time allowed beyond the search budget before extra seeds are skipped.
FINISH_ALLOWANCE = (60.0, 0.2)  # seconds, fraction of the budget; the larger one applies
# Half-width of the moving average over the accuracy-vs-threshold curve: the raw argmax on
# out-of-fold rows chases noise of a few rows.
THRESHOLD_SMOOTHING = 0.04
# Bagged trees are weaker alone than the boosters, but their errors differ: the greedy
# selection on out-of-fold scores takes them when they help.
DIVERSE_MEMBERS = ("rf", "extra_tree")
MAX_ENSEMBLE_CANDIDATES = 8
CURVE_POINTS = 200


@dataclass
class AutoMLSpec:
    target: str
    task: str = "classification"  # or "regression"
    primary_metric: str = "AUC_weighted"
    time_budget_s: float = 60
    max_trials: int | None = None
    estimators: list[str] | None = None  # None = every supported estimator
    validation: str = "holdout"  # "holdout" or "cv"
    holdout_fraction: float = 0.2
    n_folds: int = 5
    ensemble: bool = True
    seed: int = 42
    experiment_name: str = "automl"
    tune_threshold: bool | None = None  # None: only when the primary metric is accuracy


@dataclass
class TrialEvent:
    trial: int
    estimator: str
    config: dict[str, Any]
    primary_metric: float | None  # this trial's value of the primary metric
    best_so_far: float | None  # best primary metric up to and including this trial
    wall_time_s: float  # seconds since the search started
    duration_s: float
    sample_size: int
    metrics: dict[str, float] = field(default_factory=dict)
    status: str = "Completed"


@dataclass
class AutoMLResult:
    parent_run_id: str
    primary_metric: str
    trials: list[dict[str, Any]]  # trial, estimator, config, <primary>, metrics, duration_s, status
    per_estimator: list[dict[str, Any]]  # one row per estimator (+ ensemble), full metric set
    best_estimator: str
    best_metrics: dict[str, float]
    model_uri: str
    details: dict[str, Any]  # roc, pr, calibration, feature_importance: lists of records
    guardrails: list[dict[str, Any]]
    classes: list[Any] = field(default_factory=list)
    threshold: float | None = None
    ensemble_members: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class AutoMLCanceled(Exception):
    """The caller's ``should_stop`` ended the run; its finished trials stay logged."""

    def __init__(self, message: str, parent_run_id: str = "", trials: int = 0):
        super().__init__(message)
        self.parent_run_id = parent_run_id
        self.trials = trials


# ---------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------
def normalize_metric(name: str, task: str) -> str:
    """Map a user/Azure metric name to the engine's canonical name, or raise."""
    canon = METRIC_ALIASES.get(name, name)
    table = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if canon not in table:
        raise ValueError(f"unknown {task} metric {name!r}; choose one of {sorted(table)}")
    return canon


def greater_is_better(metric: str) -> bool:
    return {**CLASSIFICATION_METRICS, **REGRESSION_METRICS}[metric]


def _labels_from_proba(proba: np.ndarray, threshold: float | None) -> np.ndarray:
    if proba.shape[1] == 2 and threshold is not None:
        return (proba[:, 1] >= threshold).astype(int)
    return proba.argmax(axis=1)


def classification_metrics(
    y: np.ndarray, proba: np.ndarray, threshold: float | None = None
) -> dict[str, float]:
    """Azure's classification metric set; ``y`` holds class indices, ``proba`` n x k."""
    k = proba.shape[1]
    pred = _labels_from_proba(proba, threshold)
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision_score_weighted": skm.precision_score(
            y, pred, average="weighted", zero_division=0
        ),
        "recall_score_weighted": skm.recall_score(y, pred, average="weighted", zero_division=0),
        "f1_score_weighted": skm.f1_score(y, pred, average="weighted", zero_division=0),
    }
    clipped = np.clip(proba, 1e-15, 1 - 1e-15)
    out["log_loss"] = skm.log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=range(k))
    # Weighted one-vs-rest over every class, as Azure computes the *_weighted metrics.
    onehot = label_binarize(y, classes=list(range(k)))
    if k == 2:
        onehot = np.column_stack([1 - onehot[:, 0], onehot[:, 0]])
    present = onehot.sum(axis=0) > 0
    if present.sum() >= 2:
        try:
            out["AUC_weighted"] = skm.roc_auc_score(
                onehot[:, present], proba[:, present], average="weighted"
            )
            out["average_precision_score_weighted"] = skm.average_precision_score(
                onehot[:, present], proba[:, present], average="weighted"
            )
        except ValueError:
            out["AUC_weighted"] = out["average_precision_score_weighted"] = math.nan
    else:
        out["AUC_weighted"] = out["average_precision_score_weighted"] = math.nan
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
    if task == "classification":
        return classification_metrics(y, scores, threshold)
    return regression_metrics(y, scores)


def _loss(metric: str, value: float) -> float:
    if value is None or math.isnan(value):
        return math.inf
    return 1.0 - value if greater_is_better(metric) else value


def _value_from_loss(metric: str, loss: float) -> float:
    return 1.0 - loss if greater_is_better(metric) else loss


# ---------------------------------------------------------------------------------------
# FLAML glue
# ---------------------------------------------------------------------------------------
def _plain_config(config: dict[str, Any]) -> dict[str, Any]:
    return {
        str(k): (v.item() if isinstance(v, np.generic) else v)
        for k, v in config.items()
        if k != "FLAML_sample_size"
    }


class _TrackedAutoML(AutoML):
    """FLAML AutoML that reports every finished trial to a callback, on the search thread."""

    def __init__(self, on_logged_trial: Callable[[AutoML, Any, str], None], **kwargs: Any):
        super().__init__(**kwargs)
        self._on_logged_trial = on_logged_trial

    def _log_trial(self, search_state: Any, estimator: str) -> None:
        super()._log_trial(search_state, estimator)
        self._on_logged_trial(self, search_state, estimator)

    def stop_search(self) -> None:
        # The search loop ends once the time used reaches the budget.
        self._state.time_budget = 0


class _RunLogger:
    """Writes trial child runs from a background thread so MLflow I/O stays off the search."""

    def __init__(self, client: MlflowClient, experiment_id: str, parent_run_id: str):
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.errors: list[str] = []
        self._queue: queue.Queue[TrialEvent | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="automl-mlflow", daemon=True)
        self._thread.start()

    def submit(self, event: TrialEvent) -> None:
        self._queue.put(event)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _work(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._log(event)
            except Exception as exc:  # noqa: BLE001 - tracking must never kill the search
                self.errors.append(str(exc))

    def _log(self, ev: TrialEvent) -> None:
        now = int(time.time() * 1000)
        run = self.client.create_run(
            self.experiment_id,
            start_time=now - int(ev.duration_s * 1000),
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                "mlflow.runName": f"trial_{ev.trial}_{ev.estimator}",
                "automl.trial": str(ev.trial),
                "automl.estimator": ev.estimator,
            },
        )
        params = [Param("estimator", ev.estimator), Param("sample_size", str(ev.sample_size))]
        params += [Param(k, str(v)[:500]) for k, v in ev.config.items()]
        values = {
            **{k: v for k, v in ev.metrics.items() if v is not None and not math.isnan(v)},
            "duration_s": ev.duration_s,
            "wall_time_s": ev.wall_time_s,
        }
        if ev.best_so_far is not None:
            values["best_so_far"] = ev.best_so_far
        self.client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
            params=params,
            tags=[RunTag("automl.config", json.dumps(ev.config, default=str)[:5000])],
        )
        self.client.set_terminated(run.info.run_id, "FINISHED", end_time=now)


def _learner_class(automl: AutoML, name: str) -> type:
    return automl._state.learner_classes[name]


def _bagged_config(name: str, config: dict[str, Any], seed: int) -> dict[str, Any] | None:
    """The config refit with another seed, or None when the seed would change nothing."""
    if name == "lgbm":
        return {**config, "random_state": seed, "subsample": BAG_SUBSAMPLE, "subsample_freq": 1}
    if name in ("xgboost", "xgb_limitdepth"):
        keys = ("subsample", "colsample_bytree", "colsample_bylevel")
        if all(config.get(k, 1.0) >= 1.0 for k in keys):
            return None
        return {**config, "random_state": seed}
    return None


def _fit_member(
    learner_cls: type,
    name: str,
    config: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    cat_idx: list[int],
    n_jobs: int,
) -> Member:
    """Fit one FLAML config on an encoded matrix and keep only the native estimator."""
    est = learner_cls(task=task, n_jobs=n_jobs, **_plain_config(config))
    kwargs = {"categorical_feature": cat_idx} if name == "lgbm" and cat_idx else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, **kwargs)
    native = est.estimator
    if name == "lgbm":
        return Member("lgbm", native.booster_, name=name, config=_plain_config(config))
    if name in ("xgboost", "xgb_limitdepth"):
        return Member("xgboost", native.get_booster(), name=name, config=_plain_config(config))
    return Member("sklearn", native, name=name, config=_plain_config(config))


# ---------------------------------------------------------------------------------------
# ensemble, threshold, details
# ---------------------------------------------------------------------------------------
def _greedy_ensemble(
    task: str, y: np.ndarray, candidate_scores: list[np.ndarray], metric: str
) -> list[int]:
    """Caruana-style forward selection with replacement; returns counts per candidate."""
    counts = [0] * len(candidate_scores)
    total = None
    best_value = None
    for _ in range(ENSEMBLE_ROUNDS):
        round_best = None
        for i, s in enumerate(candidate_scores):
            n = sum(counts) + 1
            trial = s if total is None else (total * (n - 1) + s) / n
            value = compute_metrics(task, y, trial)[metric]
            loss = _loss(metric, value)
            if round_best is None or loss < round_best[0]:
                round_best = (loss, i, trial)
        if best_value is not None and round_best[0] > best_value + 1e-12:
            break
        best_value = round_best[0]
        counts[round_best[1]] += 1
        total = round_best[2]
    return counts


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
    shown = [1] if k == 2 else list(range(k))
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
    pred = _labels_from_proba(proba, threshold)
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


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------
def _resolve_estimators(spec: AutoMLSpec, has_missing: bool, log: Callable[[str], None]) -> list:
    supported = SUPPORTED_ESTIMATORS[spec.task]
    wanted = list(spec.estimators) if spec.estimators else list(supported)
    unknown = [e for e in wanted if e not in supported]
    if unknown:
        raise ValueError(f"unsupported estimators {unknown}; choose from {supported}")
    if has_missing and "lrl1" in wanted:
        if spec.estimators:
            log("lrl1 skipped: the data has missing values and linear models need none")
        wanted.remove("lrl1")
    if not wanted:
        raise ValueError("no estimator left to try")
    return wanted


def _experiment_id(client: MlflowClient, name: str, artifact_dir: Path) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=artifact_dir.resolve().as_uri())


def _pip_requirements() -> list[str]:
    out = []
    for pkg in ("mlflow", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost"):
        try:
            out.append(f"{pkg}=={importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _model_code_dir(tmp: Path) -> Path:
    """The modules a saved model imports (``tabular_model`` and its encoder), for ``code_paths``."""
    return write_model_code(tmp)


def _input_example(X_df: pd.DataFrame) -> pd.DataFrame:
    example = X_df.head(5).copy()
    for col in example.columns:
        if not (
            pd.api.types.is_numeric_dtype(example[col]) or pd.api.types.is_bool_dtype(example[col])
        ):
            example[col] = example[col].astype(object).where(example[col].notna(), None)
    return example.reset_index(drop=True)


def run_automl(
    df: pd.DataFrame,
    spec: AutoMLSpec,
    *,
    tracking_uri: str,
    artifact_dir: Path,
    on_trial: Callable[[TrialEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] = print,
) -> AutoMLResult:
    """Search, ensemble, log and save the best model; see the module docstring for the flow.

    ``on_trial`` and ``should_stop`` are called on the calling thread after each trial; once
    ``should_stop()`` is true the search ends after the current trial and ``AutoMLCanceled``
    is raised (trials stay logged as child runs, the parent run is marked KILLED).
    """
    t_start = time.time()
    if spec.task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', not {spec.task!r}")
    if spec.validation not in ("holdout", "cv"):
        raise ValueError(f"validation must be 'holdout' or 'cv', not {spec.validation!r}")
    if not tracking_uri.startswith("sqlite:////") and "://" not in tracking_uri:
        raise ValueError("tracking_uri must be an absolute URI such as sqlite:////abs/mlflow.db")
    metric = normalize_metric(spec.primary_metric, spec.task)
    is_clf = spec.task == "classification"
    artifact_dir = Path(artifact_dir).resolve()
    artifact_dir.mkdir(parents=True, exist_ok=True)

    # -- data --------------------------------------------------------------------------
    rails = gr.check_data(df, spec.target, spec.task)
    for r in rails:
        if r.status != gr.PASSED:
            log(f"guardrail {r.name}: {r.status} - {r.details} {r.action}".rstrip())
    data = df[df[spec.target].notna()].reset_index(drop=True)
    dropped = gr.columns_to_drop(data, spec.target)
    X_df = data.drop(columns=[spec.target, *dropped])
    if X_df.shape[1] == 0:
        raise ValueError("no usable feature columns")
    encoder = Encoder.from_frame(X_df, max_categories=gr.MAX_CATEGORIES)
    X = encoder.encode_frame(X_df)
    cat_idx = encoder.categorical_indices
    if is_clf:
        classes = sorted(data[spec.target].unique().tolist(), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise ValueError("classification needs at least two target classes")
        code_of = {c: i for i, c in enumerate(classes)}
        y = np.array([code_of[v] for v in data[spec.target].tolist()], dtype=np.int64)
    else:
        classes = []
        y = pd.to_numeric(data[spec.target], errors="raise").to_numpy(dtype=np.float64)
    estimators = _resolve_estimators(spec, bool(np.isnan(X).any()), log)
    tune_threshold = (
        is_clf
        and len(classes) == 2
        and (spec.tune_threshold or (spec.tune_threshold is None and metric == "accuracy"))
    )
    n_jobs = max(1, os.cpu_count() or 1)

    # Validation rows for the post-search steps: the holdout rows, or every row out-of-fold.
    if spec.validation == "holdout":
        train_idx, val_idx = train_test_split(
            np.arange(len(y)),
            test_size=spec.holdout_fraction,
            random_state=spec.seed,
            stratify=y if is_clf else None,
        )
        folds = [(np.sort(train_idx), np.sort(val_idx))]
        val_rows = folds[0][1]
    else:
        splitter = (
            StratifiedKFold(spec.n_folds, shuffle=True, random_state=spec.seed)
            if is_clf
            else KFold(spec.n_folds, shuffle=True, random_state=spec.seed)
        )
        folds = list(splitter.split(X, y))
        val_rows = np.arange(len(y))
    y_val = y[val_rows]

    # -- tracking ----------------------------------------------------------------------
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = _experiment_id(client, spec.experiment_name, artifact_dir)
    trial_rows: list[dict[str, Any]] = []
    best: dict[str, Any] = {"value": None}

    with mlflow.start_run(experiment_id=experiment_id, run_name="automl") as parent:
        parent_id = parent.info.run_id
        mlflow.log_params(
            {
                "task": spec.task,
                "target": spec.target,
                "primary_metric": metric,
                "time_budget_s": spec.time_budget_s,
                "max_trials": spec.max_trials,
                "estimators": ",".join(estimators),
                "validation": spec.validation,
                "holdout_fraction": spec.holdout_fraction,
                "n_folds": spec.n_folds,
                "ensemble": spec.ensemble,
                "seed": spec.seed,
                "dropped_columns": ",".join(dropped) or "-",
                "rows": len(y),
            }
        )
        mlflow.set_tag("automl.engine", "flaml")
        mlflow.log_dict({"guardrails": [r.to_dict() for r in rails]}, "guardrails.json")
        run_logger = _RunLogger(client, experiment_id, parent_id)

        def trial_done(automl: AutoML, state: Any, estimator: str) -> None:
            logged = dict(state.metric_for_logging or {})
            values = {
                k: float(v)
                for k, v in logged.items()
                if k in CLASSIFICATION_METRICS or k in REGRESSION_METRICS
            }
            value = values.get(metric)
            if value is None and state.val_loss is not None:
                value = _value_from_loss(metric, float(state.val_loss))
            better = best["value"] is None or (
                value is not None and _loss(metric, value) < _loss(metric, best["value"])
            )
            if better and value is not None:
                best["value"] = value
            event = TrialEvent(
                trial=len(trial_rows),
                estimator=estimator,
                config=_plain_config(state.config or {}),
                primary_metric=value,
                best_so_far=best["value"],
                wall_time_s=round(time.time() - t_search, 3),
                duration_s=round(float(state.trial_time or 0.0), 3),
                sample_size=int(state.sample_size or 0),
                metrics=values,
            )
            trial_rows.append(
                {
                    "trial": event.trial,
                    "estimator": estimator,
                    "config": event.config,
                    metric: value,
                    **{k: v for k, v in values.items() if k != metric},
                    "best_so_far": event.best_so_far,
                    "sample_size": event.sample_size,
                    "duration_s": event.duration_s,
                    "wall_time_s": event.wall_time_s,
                    "status": "Completed",
                }
            )
            run_logger.submit(event)
            if on_trial is not None:
                try:
                    on_trial(event)
                except Exception as exc:  # noqa: BLE001 - a UI callback must not end the search
                    log(f"on_trial callback failed: {exc}")
            if should_stop is not None and should_stop():
                log("stop requested: ending the search after this trial")
                automl.stop_search()

        def flaml_metric(X_v, y_v, estimator, labels, *args: Any, **kwargs: Any):
            t = time.time()
            if is_clf:
                proba = np.asarray(estimator.predict_proba(X_v), dtype=np.float64)
                if proba.shape[1] != len(classes):  # a sample lacked some class
                    full = np.zeros((len(y_v), len(classes)))
                    full[:, list(labels)] = proba
                    proba = full
                values = classification_metrics(np.asarray(y_v), proba)
            else:
                values = regression_metrics(np.asarray(y_v), np.asarray(estimator.predict(X_v)))
            values["pred_time"] = (time.time() - t) / max(1, len(y_v))
            return _loss(metric, values[metric]), values

        automl = _TrackedAutoML(trial_done)
        fit_args: dict[str, Any] = {
            "task": spec.task,
            "metric": flaml_metric,
            "time_budget": spec.time_budget_s,
            "estimator_list": estimators,
            "seed": spec.seed,
            "n_jobs": n_jobs,
            "verbose": 0,
            "log_type": "all",
            "log_file_name": str(artifact_dir / f"flaml_trials_{parent_id}.jsonl"),
            "mlflow_logging": False,
            "retrain_full": False,
            "model_history": False,
            "auto_augment": False,
        }
        if spec.max_trials:
            fit_args["max_iter"] = int(spec.max_trials)
        starting = {k: v for k, v in STARTING_POINTS.items() if k in estimators}
        if starting and len(y) >= STARTING_POINTS_MIN_ROWS:
            fit_args["starting_points"] = starting
        if cat_idx and "lgbm" in estimators:
            fit_args["fit_kwargs_by_estimator"] = {"lgbm": {"categorical_feature": cat_idx}}
        if spec.validation == "holdout":
            tr, va = folds[0]
            fit_args.update(X_train=X[tr], y_train=y[tr], X_val=X[va], y_val=y[va])
        else:
            fit_args.update(X_train=X, y_train=y, eval_method="cv", split_type=splitter)
        log(
            f"search: {len(y)} rows x {X.shape[1]} features, {spec.validation}, "
            f"metric {metric}, budget {spec.time_budget_s:g}s, estimators {estimators}"
        )
        flaml_logger = logging.getLogger("flaml.automl.logger")
        previous_level = flaml_logger.level
        flaml_logger.setLevel(logging.ERROR)
        t_search = time.time()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                automl.fit(**fit_args)
        finally:
            flaml_logger.setLevel(previous_level)
            run_logger.close()
        search_s = time.time() - t_search
        stopped = should_stop is not None and should_stop()
        if stopped or not automl.best_config_per_estimator or automl.best_estimator is None:
            mlflow.set_tag("automl.status", "Canceled" if stopped else "NoTrial")
            mlflow.end_run("KILLED" if stopped else "FAILED")
            if stopped:
                raise AutoMLCanceled(
                    f"canceled after {len(trial_rows)} trials", parent_id, len(trial_rows)
                )
            raise RuntimeError("the search ended before any trial finished")
        log(
            f"search done: {len(trial_rows)} trials in {search_s:.1f}s, best {automl.best_estimator}"
        )

        # -- per-estimator rows: each estimator's best trial, as measured in the search --
        trials_df = pd.DataFrame(trial_rows)
        per_est_rows = []
        for name in estimators:
            rows = trials_df[(trials_df["estimator"] == name) & trials_df[metric].notna()]
            if rows.empty:
                continue
            pick = rows.loc[
                rows[metric].idxmax() if greater_is_better(metric) else rows[metric].idxmin()
            ]
            per_est_rows.append(
                {
                    "estimator": name,
                    "trial": int(pick["trial"]),
                    "trials": len(rows),
                    **{m: pick.get(m) for m in _metric_names(spec.task)},
                    "config": pick["config"],
                }
            )

        # -- candidates for the served model ------------------------------------------
        t_post = time.time()
        best_name = automl.best_estimator
        candidates: list[tuple[str, dict[str, Any]]] = [
            (best_name, _plain_config(automl.best_config_per_estimator[best_name]))
        ]
        if spec.ensemble:
            for name in (*BOOSTERS, *DIVERSE_MEMBERS):
                cfg = automl.best_config_per_estimator.get(name)
                if cfg and name != best_name:
                    candidates.append((name, _plain_config(cfg)))
            # Runners-up of the boosters at full sample size add diversity cheaply.
            full = trials_df[
                trials_df["estimator"].isin(BOOSTERS)
                & (trials_df["sample_size"] >= trials_df["sample_size"].max())
                & trials_df[metric].notna()
            ].sort_values(metric, ascending=not greater_is_better(metric))
            for _, row in full.iterrows():
                if len(candidates) >= MAX_ENSEMBLE_CANDIDATES:
                    break
                key = (row["estimator"], row["config"])
                if key not in candidates:
                    candidates.append(key)
        post_budget = max(30.0, 0.5 * spec.time_budget_s)
        cand_scores: list[np.ndarray] = []
        kept: list[tuple[str, dict[str, Any]]] = []
        # Leave part of the finishing allowance for the refit on every row.
        candidates_until = t_start + spec.time_budget_s + 0.6 * _finish_allowance(spec)
        for i, (name, cfg) in enumerate(candidates):
            now = time.time()
            if i > 0 and (now - t_post > post_budget or now > candidates_until):
                log(f"ensemble: time is up after {i} candidates")
                break
            scores = _validation_scores(
                _learner_class(automl, name),
                name,
                cfg,
                X,
                y,
                folds,
                val_rows,
                spec.task,
                cat_idx,
                n_jobs,
                len(classes),
            )
            cand_scores.append(scores)
            kept.append((name, cfg))
        if spec.ensemble and len(kept) > 1:
            select_metric = "log_loss" if metric in THRESHOLD_METRICS else metric
            if spec.task == "regression":
                select_metric = metric
            counts = _greedy_ensemble(spec.task, y_val, cand_scores, select_metric)
        else:
            counts = [1] + [0] * (len(kept) - 1)
        chosen = [(kept[i], c) for i, c in enumerate(counts) if c > 0]
        val_scores = sum(cand_scores[i] * c for i, c in enumerate(counts)) / sum(counts)

        threshold = None
        if is_clf and len(classes) == 2:
            threshold = best_accuracy_threshold(y_val, val_scores[:, 1]) if tune_threshold else 0.5
        final_metrics = compute_metrics(spec.task, y_val, val_scores, threshold)
        is_ensemble = len(chosen) > 1
        final_name = "VotingEnsemble" if is_ensemble else chosen[0][0][0]
        if is_ensemble:
            per_est_rows.append(
                {
                    "estimator": final_name,
                    "trial": None,
                    "trials": None,
                    **{m: final_metrics.get(m) for m in _metric_names(spec.task)},
                    "config": {f"{n}#{k}": c for k, ((n, _), c) in enumerate(chosen)},
                }
            )
        log(
            f"model: {final_name} ({', '.join(f'{n} x{c}' for (n, _), c in chosen)}), "
            f"validation {metric} = {final_metrics.get(metric):.4f}"
            + (f", threshold {threshold:.2f}" if threshold is not None else "")
        )

        # -- refit on every row and save -----------------------------------------------
        members = _refit_members(automl, chosen, X, y, spec, cat_idx, n_jobs, t_start, log)
        model = TabularModel(
            task=spec.task,
            encoder=encoder,
            members=members,
            classes=classes,
            threshold=threshold,
            positive_label=classes[1] if is_clf and len(classes) == 2 else None,
        )
        example = _input_example(X_df)
        signature = infer_signature(example, model.predict(None, example))
        with tempfile.TemporaryDirectory() as tmp:
            code_dir = _model_code_dir(Path(tmp))
            mlflow_logger = logging.getLogger("mlflow")
            mlflow_level = mlflow_logger.level
            mlflow_logger.setLevel(logging.ERROR)  # cloudpickle notice, example validation chatter
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mlflow.pyfunc.log_model(
                    name="model",
                    python_model=model,
                    signature=signature,
                    input_example=example,
                    code_paths=[str(code_dir)],
                    pip_requirements=_pip_requirements(),
                )
            mlflow_logger.setLevel(mlflow_level)
        model_uri = f"runs:/{parent_id}/model"

        details: dict[str, Any] = {
            "feature_importance": feature_importance(model).to_dict("records")
        }
        if is_clf:
            details.update(classification_details(y_val, val_scores, classes, threshold))
        else:
            sample = np.random.default_rng(spec.seed).permutation(len(y_val))[:2000]
            details["predicted_vs_true"] = [
                {"true": float(t), "predicted": float(v)}
                for t, v in zip(y_val[sample], val_scores[sample], strict=True)
            ]
        details["validation"] = (
            f"holdout {spec.holdout_fraction:.0%}"
            if spec.validation == "holdout"
            else f"{spec.n_folds}-fold out-of-fold"
        )
        post_s = time.time() - t_post

        mlflow.log_metrics({k: v for k, v in final_metrics.items() if not math.isnan(v)})
        mlflow.log_metrics({"trials": len(trial_rows), "search_s": search_s, "finish_s": post_s})
        mlflow.set_tags(
            {
                "automl.best_estimator": final_name,
                "automl.members": ",".join(n for (n, _), _c in chosen),
                "automl.threshold": "" if threshold is None else f"{threshold:.4f}",
            }
        )
        per_est = pd.DataFrame(per_est_rows)
        if not per_est.empty:
            mlflow.log_table(per_est.astype({"config": str}), "leaderboard.json")
        if run_logger.errors:
            log(f"{len(run_logger.errors)} trial runs failed to log: {run_logger.errors[0]}")

    return AutoMLResult(
        parent_run_id=parent_id,
        primary_metric=metric,
        trials=trial_rows,
        per_estimator=per_est_rows,
        best_estimator=final_name,
        best_metrics=final_metrics,
        model_uri=model_uri,
        details=details,
        guardrails=[r.to_dict() for r in rails],
        classes=classes,
        threshold=threshold,
        ensemble_members=[
            {"estimator": n, "weight": c / sum(counts), "config": cfg} for (n, cfg), c in chosen
        ],
        timings={"search_s": search_s, "finish_s": post_s, "total_s": time.time() - t_start},
    )


def _finish_allowance(spec: AutoMLSpec) -> float:
    """Seconds of wall time allowed after the search budget for ensembling and refitting."""
    return max(FINISH_ALLOWANCE[0], FINISH_ALLOWANCE[1] * spec.time_budget_s)


def _refit_members(
    automl: AutoML,
    chosen: list[tuple[tuple[str, dict[str, Any]], int]],
    X: np.ndarray,
    y: np.ndarray,
    spec: AutoMLSpec,
    cat_idx: list[int],
    n_jobs: int,
    t_start: float,
    log: Callable[[str], None],
) -> list[Member]:
    """Refit the chosen configs on every row; boosters get extra seeds while time allows."""
    deadline = t_start + spec.time_budget_s + _finish_allowance(spec)
    fits: list[list[Member]] = []
    cost: list[float] = []
    for name, cfg in (key for key, _c in chosen):
        t = time.time()
        fits.append(
            [_fit_member(_learner_class(automl, name), name, cfg, X, y, spec.task, cat_idx, n_jobs)]
        )
        cost.append(time.time() - t)
    for b in range(1, FINAL_SEEDS):
        for i, ((name, cfg), _c) in enumerate(chosen):
            bagged = _bagged_config(name, cfg, spec.seed + b)
            # A bagged LightGBM fit costs about as much as the plain refit measured above.
            if bagged is None or time.time() + cost[i] > deadline:
                continue
            fits[i].append(
                _fit_member(
                    _learner_class(automl, name), name, bagged, X, y, spec.task, cat_idx, n_jobs
                )
            )
    members = []
    for group, ((_name, _cfg), c) in zip(fits, chosen, strict=True):
        for m in group:
            m.weight = float(c) / len(group)
            members.append(m)
    log(f"refit: {len(members)} members from {len(chosen)} configs")
    return members


def _metric_names(task: str) -> list[str]:
    return list(CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS)


def _validation_scores(
    learner_cls: type,
    name: str,
    cfg: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    val_rows: np.ndarray,
    task: str,
    cat_idx: list[int],
    n_jobs: int,
    n_classes: int,
) -> np.ndarray:
    """Scores of one config on the validation rows (holdout) or out-of-fold (cv)."""
    width = (len(y), n_classes) if task == "classification" else (len(y),)
    out = np.full(width, np.nan)
    for tr, va in folds:
        member = _fit_member(learner_cls, name, cfg, X[tr], y[tr], task, cat_idx, n_jobs)
        part = TabularModel(
            task=task, encoder=Encoder([]), members=[member], classes=list(range(n_classes))
        )
        scores = part.encoded_scores(X[va])
        if task == "classification" and scores.shape[1] != n_classes:
            raise ValueError("a validation fold is missing a class; use fewer folds")
        out[va] = scores
    return out[val_rows]
