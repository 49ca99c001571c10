"""From the raw frame to what the search sees: guardrails, encoded matrix, targets, splits."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_selection import f_classif, f_regression
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from lib.local import guardrails as gr
from lib.local.automl_engine.members import booster_threads
from lib.local.automl_engine.spec import AutoMLSpec
from lib.local.tabular_model import Encoder

# Number columns the search takes per second of budget (never fewer than SCREEN_MIN): a
# boosted tree's cost grows with the columns (720 rows x 10,000 columns: 4 s for one LightGBM
# fit of 4 trees), so past this many the columns that predict the target best alone are kept.
SCREEN_PER_S = 100
SCREEN_MIN = 1000

SUPPORTED_ESTIMATORS = {
    "classification": ["lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree", "lrl1"],
    "regression": ["lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree"],
}


@dataclass
class Prepared:
    """The training data as every later phase uses it."""

    rails: list[gr.Guardrail]
    dropped: list[str]  # columns removed before training (constant, id-like)
    X_df: pd.DataFrame  # raw feature columns of the rows with a target
    X: np.ndarray  # X_df encoded by ``encoder``
    y: np.ndarray  # class indices (classification) or floats
    encoder: Encoder
    cat_idx: list[int]
    classes: list[Any]
    folds: list[tuple[np.ndarray, np.ndarray]]  # one (train, validation) pair for holdout
    splitter: Any  # the cv splitter handed to FLAML (None for holdout)
    val_rows: np.ndarray  # rows scored for the post-search steps
    estimators: list[str]
    tune_threshold: bool
    n_jobs: int  # threads of the bagged-tree learners
    booster_jobs: int  # threads of each booster fit (``members.booster_threads``)
    # Number columns left out to fit the budget (``screen_columns``), and how many there were.
    screened: list[str] = dataclasses.field(default_factory=list)
    numbers_before_screen: int = 0

    @property
    def is_clf(self) -> bool:
        return bool(self.classes)

    @property
    def y_val(self) -> np.ndarray:
        return self.y[self.val_rows]


def resolve_estimators(spec: AutoMLSpec, has_missing: bool, log: Callable[[str], None]) -> list:
    """The estimators to search: the spec's, or every supported one, minus what cannot run."""
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


def prepare(
    df: pd.DataFrame,
    spec: AutoMLSpec,
    metric: str,
    log: Callable[[str], None],
    rails: list[gr.Guardrail] | None = None,
) -> Prepared:
    """Run the guardrails (unless given, as ``check_data`` made them for this very frame and
    spec), drop what they remove, encode, and fix the validation rows."""
    is_clf = spec.task == "classification"
    if rails is None:
        rails = gr.check_data(df, spec.target, spec.task, spec.features)
    for r in rails:
        if r.status != gr.PASSED:
            log(f"guardrail {r.name}: {r.status} - {r.details} {r.action}".rstrip())
    data = df[df[spec.target].notna()].reset_index(drop=True)
    dropped = gr.columns_to_drop(data, spec.target, spec.features)
    if dropped:
        log(f"columns left out: {', '.join(dropped)}")
    X_df = data.drop(columns=[spec.target, *dropped])
    if X_df.shape[1] == 0:
        raise ValueError(
            gr.no_features_left(data, spec.target, spec.features) or "no usable feature columns"
        )
    screened, numbers = screen_columns(X_df, data[spec.target], is_clf, spec.time_budget_s)
    if screened:
        X_df = X_df.drop(columns=screened)
    encoder = Encoder.from_frame(
        X_df,
        max_categories=gr.MAX_CATEGORIES,
        datetime_formats=spec.date_formats,
        missing_numbers=spec.missing_numbers,
    )
    X = encoder.encode_frame(X_df)
    if is_clf:
        classes = sorted(data[spec.target].unique().tolist(), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise ValueError("classification needs at least two target classes")
        code_of = {c: i for i, c in enumerate(classes)}
        y = np.array([code_of[v] for v in data[spec.target].tolist()], dtype=np.int64)
    else:
        classes = []
        y = pd.to_numeric(data[spec.target], errors="raise").to_numpy(dtype=np.float64)
    estimators = resolve_estimators(spec, bool(np.isnan(X).any()), log)
    tune_threshold = (
        is_clf
        and len(classes) == 2
        and bool(spec.tune_threshold or (spec.tune_threshold is None and metric == "accuracy"))
    )
    folds, splitter, val_rows = _validation_split(spec, X, y, is_clf)
    cores = max(1, os.cpu_count() or 1)
    return Prepared(
        rails=rails,
        dropped=dropped,
        X_df=X_df,
        X=X,
        y=y,
        encoder=encoder,
        cat_idx=encoder.categorical_indices,
        classes=classes,
        folds=folds,
        splitter=splitter,
        val_rows=val_rows,
        estimators=estimators,
        tune_threshold=tune_threshold,
        n_jobs=cores,
        booster_jobs=booster_threads(X.shape[0], X.shape[1], cores),
        screened=screened,
        numbers_before_screen=numbers,
    )


def screen_limit(budget_s: float) -> int:
    """The most number columns a search of `budget_s` seconds takes."""
    return max(SCREEN_MIN, int(SCREEN_PER_S * budget_s))


def screen_columns(
    X_df: pd.DataFrame, target: pd.Series, is_clf: bool, budget_s: float
) -> tuple[list[str], int]:
    """(number columns to leave out, number columns there were): beyond `screen_limit`, the
    columns whose one-column ANOVA F (classification) or correlation (regression) with the
    target is lowest. Text and date columns are always kept."""
    numbers = [c for c, t in X_df.dtypes.items() if t.kind in "iuf"]
    keep = screen_limit(budget_s) - (X_df.shape[1] - len(numbers))
    if len(numbers) <= max(keep, 0) or keep <= 0:
        return [], len(numbers)
    values = X_df[numbers].to_numpy(dtype=np.float64)
    # A missing cell counts as its column's mean; a column of none scores nothing.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gaps = np.isnan(values)
        if gaps.any():
            values = np.where(gaps, np.nan_to_num(np.nanmean(values, axis=0)), values)
        if is_clf:
            scores, _ = f_classif(values, target.astype(str).to_numpy())
        else:
            scores, _ = f_regression(values, target.to_numpy(dtype=np.float64))
    scores = np.nan_to_num(scores, nan=0.0, posinf=np.finfo(np.float64).max)
    order = np.argsort(-scores, kind="stable")
    return [str(numbers[i]) for i in sorted(order[keep:])], len(numbers)


def _validation_split(
    spec: AutoMLSpec, X: np.ndarray, y: np.ndarray, is_clf: bool
) -> tuple[list[tuple[np.ndarray, np.ndarray]], Any, np.ndarray]:
    """Validation rows for the post-search steps: the holdout rows, or every row out-of-fold."""
    if spec.validation == "holdout":
        train_idx, val_idx = train_test_split(
            np.arange(len(y)),
            test_size=spec.holdout_fraction,
            random_state=spec.seed,
            stratify=y if is_clf else None,
        )
        folds = [(np.sort(train_idx), np.sort(val_idx))]
        return folds, None, folds[0][1]
    splitter = (
        StratifiedKFold(spec.n_folds, shuffle=True, random_state=spec.seed)
        if is_clf
        else KFold(spec.n_folds, shuffle=True, random_state=spec.seed)
    )
    return list(splitter.split(X, y)), splitter, np.arange(len(y))
