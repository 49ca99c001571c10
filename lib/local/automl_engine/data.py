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
from scipy import stats
from sklearn.feature_selection import f_classif, f_regression
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from lib.guardrails import label_spellings
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
    if spec.task == "regression" and "lrl1" in wanted:
        # The form offers one list for every task; lrl1 is a classifier (L1 logistic regression).
        log("lrl1 skipped: it is a classifier, and this run is a regression")
        wanted.remove("lrl1")
        if not wanted:
            raise ValueError(
                "lrl1 is a classifier (L1 logistic regression): choose another algorithm for a "
                "regression run"
            )
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
    merged = label_spellings(data[spec.target]) if is_clf else {}
    if merged:  # ` yes` and `YES` are `Yes`, as the guardrail says
        data[spec.target] = data[spec.target].astype(str).replace(merged)
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
        decimal_comma=spec.decimal_comma,
        missing_words=spec.missing_words,
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
    """(columns to leave out, number and text columns there were): beyond `screen_limit`, those
    least tied to the target on their own, by the p-value of a one-column test — ANOVA F for a
    number column (correlation for a number target), chi-squared of the class counts per
    category for a text column (ANOVA of the target by category for a number target). Date
    columns are always kept."""
    numbers = [c for c, t in X_df.dtypes.items() if t.kind in "iuf"]
    texts = gr_text_columns(X_df, numbers)
    keep = screen_limit(budget_s) - (X_df.shape[1] - len(numbers) - len(texts))
    total = len(numbers) + len(texts)
    if total <= max(keep, 0) or keep <= 0:
        return [], total
    y = target.to_numpy() if not is_clf else pd.factorize(target.astype(str))[0]
    log_p = np.concatenate(
        [_number_log_p(X_df, numbers, y, is_clf), _text_log_p(X_df, texts, y, is_clf)]
    )
    log_p = np.nan_to_num(log_p, nan=0.0)
    order = np.argsort(log_p, kind="stable")  # most significant first
    names = [*numbers, *texts]
    left = {names[i] for i in order[keep:]}
    return [str(c) for c in X_df.columns if c in left], total


def gr_text_columns(X_df: pd.DataFrame, numbers: list[Any]) -> list[Any]:
    """The columns that are neither numbers nor dates nor booleans."""
    skip = set(numbers)
    return [
        c
        for c, t in X_df.dtypes.items()
        if c not in skip and t.kind not in "bmM" and not pd.api.types.is_bool_dtype(t)
    ]


def _number_log_p(
    X_df: pd.DataFrame, numbers: list[Any], y: np.ndarray, is_clf: bool
) -> np.ndarray:
    if not numbers:
        return np.zeros(0)
    values = X_df[numbers].to_numpy(dtype=np.float64)
    # A missing cell counts as its column's mean; a column of none scores nothing.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gaps = np.isnan(values)
        if gaps.any():
            values = np.where(gaps, np.nan_to_num(np.nanmean(values, axis=0)), values)
        n = len(y)
        if is_clf:
            f, _ = f_classif(values, y)
            classes = len(np.unique(y))
            return stats.f.logsf(f, classes - 1, n - classes)
        f, _ = f_regression(values, y.astype(np.float64))
        return stats.f.logsf(f, 1, n - 2)


def _text_log_p(X_df: pd.DataFrame, texts: list[Any], y: np.ndarray, is_clf: bool) -> np.ndarray:
    n = len(y)
    classes = int(y.max()) + 1 if is_clf and n else 0
    yf = y.astype(np.float64)
    # Statistics per column, then the p-values at once (scipy per column took a second).
    stat, dof1, dof2 = np.zeros(len(texts)), np.ones(len(texts)), np.ones(len(texts))
    usable = np.zeros(len(texts), dtype=bool)
    with np.errstate(all="ignore"):
        for i, c in enumerate(texts):
            codes, uniques = pd.factorize(X_df[c], use_na_sentinel=False)
            groups = len(uniques)
            if groups < 2 or (not is_clf and n <= groups):
                continue
            usable[i] = True
            if is_clf:
                table = np.bincount(codes * classes + y, minlength=groups * classes)
                table = table.reshape(groups, classes).astype(np.float64)
                expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
                ratio = (table - expected) ** 2 / np.where(expected > 0, expected, np.nan)
                stat[i], dof1[i] = np.nansum(ratio), (groups - 1) * (classes - 1)
            else:
                counts = np.bincount(codes, minlength=groups)
                means = np.bincount(codes, weights=yf, minlength=groups) / counts
                between = float((counts * (means - yf.mean()) ** 2).sum())
                within = float(((yf - means[codes]) ** 2).sum())
                stat[i] = (between / (groups - 1)) / (within / (n - groups)) if within else np.inf
                dof1[i], dof2[i] = groups - 1, n - groups
        if is_clf:
            log_p = stats.chi2.logsf(stat, np.maximum(dof1, 1))
        else:
            log_p = stats.f.logsf(stat, dof1, dof2)
    return np.where(usable, log_p, 0.0)


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
