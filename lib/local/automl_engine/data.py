"""From the raw frame to what the search sees: guardrails, encoded matrix, targets, splits."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from lib.local import guardrails as gr
from lib.local.automl_engine.members import booster_threads
from lib.local.automl_engine.spec import AutoMLSpec
from lib.local.tabular_model import Encoder

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
    )


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
