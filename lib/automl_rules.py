"""AutoML request rules shared by both backends: validation, trial columns, form suggestions."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lib.metrics import CLASSIFICATION, REGRESSION, TASKS, primary_metrics
from lib.workspace import AutoMLRequest

MIN_ROWS = 50
MIN_BUDGET_S = 10
# Above this many distinct values a classification target is probably a regression target.
MAX_CLASSES = 100
# Past this many candidate columns the AutoML form picks the columns left out, not the features.
FORM_PICK_MAX = 200
# Rare classes named in the error when some are too small to validate (the rest are counted).
RARE_CLASSES_SHOWN = 5
# A column with at most this many values may be a label of classes (the last such column is
# the suggestion of last resort).
REGRESSION_DISTINCT = 20
# A number label with more values than this is suggested as regression (grades 0-20 are);
# fewer read as classes (ratings 1-5, wine quality 3-9, a 0-4 diagnosis).
REGRESSION_SUGGEST_DISTINCT = 10
# Algorithm names as the local engine (FLAML) knows them; the Azure backend maps them.
ESTIMATORS = ("lgbm", "xgboost", "rf", "extra_tree", "lrl1")
# How a run validates: "auto" decides by size as Azure AutoML does when given no validation
# settings: k-fold cross-validation below AUTO_CV_ROWS labelled rows (10 folds below
# AUTO_SMALL_ROWS, else 3), a holdout from there on. On a small table a holdout's score is noise
# (Caravan: ~56 positives in a 20 % holdout), and a search that picks the best of hundreds of
# trials on it picks noise.
VALIDATIONS = ("auto", "holdout", "cv")
AUTO_CV_ROWS = 20_000
AUTO_SMALL_ROWS = 1_000
AUTO_VALIDATION_HELP = (
    f"Automatic: cross-validation below {AUTO_CV_ROWS:,} rows (3 folds; 10 below "
    f"{AUTO_SMALL_ROWS:,}), a holdout from there on, as Azure AutoML chooses."
)
# Conventional label column names, tried in this order (compared in lower case without
# spaces, dots, dashes or underscores: "Loan_Status", "default.payment.next.month").
TARGET_NAMES = (
    "y",
    "target",
    "label",
    "class",
    "outcome",
    "survived",
    "transported",
    "churn",
    "churned",
    "exited",
    "attrition",
    "left",
    "isfraud",
    "fraud",
    "loanstatus",
    "defaultpaymentnextmonth",
    "diagnosis",
    "saleprice",
    # well-known files whose label is not their last column
    "seriousdlqin2yrs",
    "medianhousevalue",
    "medv",
    "price",
    "mpg",
    "personalloan",
    "isdefault",
    "readmitted",
    "heartdisease",
    "deathevent",
)
# The last column is taken for the label (the convention of UCI's files and most exports)
# unless it reads as something else: an identifier, a date, a column mostly empty.
LAST_COLUMN_MAX_MISSING_PCT = 50.0
ID_DISTINCT_SHARE = 0.9
# Two values like these make a column look like an outcome (Titanic's Survived, a churn flag).
FLAG_VALUES = frozenset({"0", "1", "yes", "no", "true", "false", "y", "n"})
# The columns of `AutoMLService.trials` (metrics follow as extra columns).
TRIAL_COLUMNS = [
    "trial",
    "estimator",
    "primary_metric",
    "best_so_far",
    "duration_s",
    "wall_time_s",
    "status",
    "config",
    "run_id",
]


def resolve_validation(
    validation: str, rows: int, n_folds: int, smallest_class: int | None = None
) -> tuple[str, int]:
    """`(validation, folds)` for a table of `rows` labelled rows: "auto" made concrete (see
    `VALIDATIONS`; never more folds than the smallest class has rows, never fewer than 2),
    "holdout" and "cv" as given."""
    if validation != "auto":
        return validation, n_folds
    if rows >= AUTO_CV_ROWS:
        return "holdout", n_folds
    folds = 10 if rows < AUTO_SMALL_ROWS else 3
    if smallest_class is not None:
        folds = min(folds, smallest_class)
    return "cv", max(2, folds)


def validation_label(validation: str) -> str:
    """How the form names a validation choice."""
    return {"auto": "Automatic", "holdout": "Holdout", "cv": "k-fold CV"}.get(
        validation, validation
    )


# MLflow takes any text; a path-like or blank name only confuses the experiment lists.
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def experiment_problem(name: str) -> str | None:
    """What is wrong with an experiment name, or None."""
    if not name.strip():
        return "an experiment name is required."
    if not EXPERIMENT_NAME.match(name):
        return (
            "use letters, digits, '_', '-' or '.', starting with a letter or digit (at most "
            "255 characters)."
        )
    return None


def validate_request(request: AutoMLRequest, frame: pd.DataFrame) -> list[str]:
    """Everything wrong with a request for this data, in the user's terms."""
    problems: list[str] = []
    wrong_name = experiment_problem(request.experiment_name)
    if wrong_name:
        problems.append(f"Experiment name {request.experiment_name!r}: {wrong_name}")
    if request.task not in TASKS:
        problems.append(f"Task must be classification or regression, not {request.task!r}.")
        return problems
    allowed = primary_metrics(request.task)
    if request.primary_metric not in allowed:
        problems.append(
            f"{request.primary_metric} is not a {request.task} metric (choose from {', '.join(allowed)})."
        )
    if request.target not in frame.columns:
        problems.append(f"Target column {request.target!r} is not in the dataset.")
        return problems
    problems += _feature_problems(request, frame)
    target = frame[request.target].dropna()
    if len(target) < MIN_ROWS:
        problems.append(
            f"Only {len(target)} rows have a target value; at least {MIN_ROWS} are needed."
        )
    if frame.shape[1] < 2:
        problems.append("The dataset needs at least one feature column besides the target.")
    if request.task == CLASSIFICATION:
        counts = target.value_counts()
        if len(counts) < 2:
            problems.append(f"The target {request.target!r} has only one class; two are needed.")
        elif len(counts) > MAX_CLASSES and pd.api.types.is_numeric_dtype(target):
            problems.append(
                f"The target has {len(counts)} distinct values: is this a regression target?"
            )
        elif len(counts) > MAX_CLASSES:
            problems.append(
                f"The target has {len(counts)} classes; at most {MAX_CLASSES} can be learned. "
                "Group the rare ones (e.g. into 'other') in the file, or choose another target."
            )
        else:
            validation, folds = resolve_validation(
                request.validation, int(counts.sum()), request.n_folds, int(counts.min())
            )
            need = folds if validation == "cv" else 2
            rare = counts[counts < need]
            if not rare.empty:
                problems.append(_rare_classes_problem(rare, need))
    elif not pd.api.types.is_numeric_dtype(target):
        problems.append(f"Regression needs a numeric target; {request.target!r} is {target.dtype}.")
    elif problem := _infinite_target_problem(request.target, target):
        problems.append(problem)
    if request.time_budget_s < MIN_BUDGET_S:
        problems.append(f"The time budget must be at least {MIN_BUDGET_S} s.")
    if request.max_trials is not None and request.max_trials < 1:
        problems.append("Max trials must be at least 1.")
    if request.validation not in VALIDATIONS:
        problems.append(f"Validation must be one of {', '.join(VALIDATIONS)}.")
    if request.validation == "holdout" and not 0.05 <= request.holdout_fraction <= 0.5:
        problems.append("The holdout fraction must be between 0.05 and 0.5.")
    if request.validation == "cv" and not 2 <= request.n_folds <= 20:
        problems.append("Cross-validation needs between 2 and 20 folds.")
    return problems


def _infinite_target_problem(name: str, target: pd.Series) -> str | None:
    """A number to predict must be finite: which rows hold inf, and how to read them."""
    if pd.api.types.is_bool_dtype(target):
        return None
    infinite = np.flatnonzero(np.isinf(target.to_numpy(dtype=np.float64)))
    if not len(infinite):
        return None
    rows = ", ".join(str(int(target.index[i]) + 1) for i in infinite[:RARE_CLASSES_SHOWN])
    more = (
        f" and {len(infinite) - RARE_CLASSES_SHOWN} more"
        if len(infinite) > RARE_CLASSES_SHOWN
        else ""
    )
    return (
        f"The target {name!r} holds {len(infinite)} infinite value(s) (data rows {rows}{more}); "
        "a number to predict must be finite. Upload the file again with inf among the "
        "missing-value words (those rows are then left out of training), or fix them in the file."
    )


def _rare_classes_problem(rare: pd.Series, need: int, shown: int = RARE_CLASSES_SHOWN) -> str:
    """Which classes are too small to validate, a few by name with their row counts."""
    named = ", ".join(f"{label} ({count})" for label, count in rare.head(shown).items())
    more = f" and {len(rare) - shown} more" if len(rare) > shown else ""
    classes = "1 class has" if len(rare) == 1 else f"{len(rare)} classes have"
    return (
        f"{classes} fewer than {need} rows, which validation needs: {named}{more}. "
        "Merge or remove the rare classes, or choose another target."
    )


def _feature_problems(request: AutoMLRequest, frame: pd.DataFrame) -> list[str]:
    """A column choice must name dataset columns, not the target, and at least one."""
    if request.features is None:
        return []
    if not request.features:
        return ["Choose at least one feature column."]
    unknown = [c for c in request.features if c not in frame.columns]
    problems = (
        [f"Feature column(s) {', '.join(map(repr, unknown))} are not in the dataset."]
        if unknown
        else []
    )
    if request.target in request.features:
        problems.append(f"The target {request.target!r} cannot also be a feature.")
    if len(set(request.features)) != len(request.features):
        problems.append("A feature column is chosen twice.")
    return problems


def excluded_columns(request: AutoMLRequest, columns: list[str]) -> list[str]:
    """The dataset columns a request leaves out (none without a column choice)."""
    if request.features is None:
        return []
    chosen = set(request.features)
    return [c for c in columns if c != request.target and c not in chosen]


def _is_flag(row: pd.Series) -> bool:
    """Two values that read as an outcome: 0/1, yes/no, true/false (not male/female or S/C)."""
    if row.get("distinct") != 2:
        return False
    lo, hi = row.get("min"), row.get("max")
    if lo is not None and hi is not None and not pd.isna(lo) and not pd.isna(hi):
        return float(lo) == 0.0 and float(hi) == 1.0
    top = str(row.get("top_values") or "")
    # top_values reads "yes (120), no (80)": the values before their counts.
    values = {part.rsplit(" (", 1)[0].strip().lower() for part in top.split(", ") if part}
    return len(values) == 2 and values <= FLAG_VALUES


def _name_key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _could_be_label(row: pd.Series, rows: int | None) -> bool:
    """A column that may be the label: two values or more, not a date, mostly filled, and
    not an identifier (nearly a distinct value per row, text or whole numbers)."""
    distinct = row.get("distinct")
    if distinct is None or pd.isna(distinct) or distinct < 2:
        return False
    if row.get("kind") == "datetime":
        return False
    missing = row.get("missing_pct")
    if missing is not None and not pd.isna(missing) and missing > LAST_COLUMN_MAX_MISSING_PCT:
        return False
    if rows:
        filled = rows * (1 - float(missing or 0) / 100)
        whole = row.get("kind") == "text" or str(row.get("dtype", "")).startswith(("int", "uint"))
        if whole and filled > 0 and distinct >= ID_DISTINCT_SHARE * filled:
            return False
    return True


def suggest_target(columns: list[str], profile: pd.DataFrame, rows: int | None = None) -> str:
    """A likely label: a conventional name, else the last column when it could be one (not an
    identifier, a date or mostly empty), else a 0/1 or yes/no column, else the last
    low-cardinality column. ``rows``: the table's rows (to tell identifiers)."""
    keys: dict[str, str] = {}
    for c in reversed(columns):
        keys.setdefault(_name_key(c), c)
    for name in TARGET_NAMES:
        if name in keys:
            return keys[name]
    known = profile[profile["column"].isin(columns)]
    by_name = {row["column"]: row for _, row in known.iterrows()}
    if columns and columns[-1] in by_name and _could_be_label(by_name[columns[-1]], rows):
        return columns[-1]
    flags = [row["column"] for _, row in known.iterrows() if _is_flag(row)]
    if flags:
        return flags[-1]
    low = known[(known["distinct"] >= 2) & (known["distinct"] <= REGRESSION_DISTINCT)]
    names = low["column"].tolist()
    return names[-1] if names else columns[-1]


def suggest_task(profile: pd.DataFrame, target: str) -> str:
    """Regression for a numeric target with many distinct values, else classification."""
    rows = profile[profile["column"] == target]
    if rows.empty:
        return CLASSIFICATION
    row = rows.iloc[0]
    mean = row.get("mean")
    # (A column holding inf has no mean, and is numbers all the same.)
    numeric = row.get("kind") == "numeric" or (mean is not None and not pd.isna(mean))
    many = row["distinct"] > REGRESSION_SUGGEST_DISTINCT
    return REGRESSION if numeric and many else CLASSIFICATION


def names_list(names: Sequence[object], limit: int = 20) -> str:
    """Column names for a sentence: the first `limit`, then how many more."""
    shown = ", ".join(map(str, names[:limit]))
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")
