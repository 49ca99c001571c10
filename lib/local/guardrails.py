"""Data guardrails in the spirit of Azure AutoML's: cheap checks run before training."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from lib import guardrails as seam
from lib.tabular.disguised import disguised_missing, disguised_note

PASSED = "Passed"
DONE = "Done"
ALERTED = "Alerted"

# Azure alerts when the smallest class has under ~20% of the largest class's rows.
IMBALANCE_RATIO = 0.2
# A text column with more distinct values than this share of rows is treated as an id.
ID_LIKE_SHARE = 0.9
HIGH_CARDINALITY_MIN = 100
MAX_CATEGORIES = 1000
SPELLING_COLUMNS_SHOWN = 5
LEAKAGE_GUARDRAIL = "Target leakage detection"
MODEL_LEAKAGE_GUARDRAIL = "Target leakage against the model"


@dataclass
class Guardrail:
    name: str
    status: str  # Passed | Done | Alerted
    details: str
    action: str = ""
    columns: list[str] = field(default_factory=list)
    # One-feature holdout scores behind the leakage row, kept for the rule run after the search.
    scores: dict[str, float] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("scores")
        return out


def _is_text(col: pd.Series) -> bool:
    # Datetimes are not categories: the model reads them as date parts.
    return not (
        pd.api.types.is_numeric_dtype(col)
        or pd.api.types.is_bool_dtype(col)
        or pd.api.types.is_datetime64_any_dtype(col)
    )


def _constant(col: pd.Series) -> bool:
    values = col.dropna()
    # A comparison with the first value: counting distinct values hashes every cell.
    return len(values) == 0 or bool((values == values.iloc[0]).all())


def constant_columns(
    df: pd.DataFrame, target: str, counts: dict[Any, tuple[int, int]] | None = None
) -> list[str]:
    """Feature columns with at most one distinct non-missing value (`counts`: the text
    columns' distinct counts, when known already)."""
    # Number columns at once (a table of 10,000 of them took 2.8 s column by column).
    lo, hi = df.min(numeric_only=True), df.max(numeric_only=True)
    flat = set(lo.index[(lo == hi) | lo.isna()])
    texts = seam.text_counts(df, target) if counts is None else counts
    texts = {c: v for c, v in texts.items() if c in df.columns and c != target}
    flat |= {c for c, (distinct, _) in texts.items() if distinct <= 1}
    return [
        c
        for c in df.columns
        if c != target and (c in flat if c in lo.index or c in texts else _constant(df[c]))
    ]


def id_like_columns(
    df: pd.DataFrame, target: str, counts: dict[Any, tuple[int, int]] | None = None
) -> list[str]:
    """Feature columns that identify rows or hold free text (see ``lib.guardrails``)."""
    counts = seam.text_counts(df, target) if counts is None else counts
    found = {
        **seam.id_like_columns(df, target, counts),
        **seam.free_text_columns(df, target, counts),
    }
    return [str(c) for c in df.columns if c in found]


def high_cardinality_columns(
    df: pd.DataFrame,
    target: str,
    ids: list[str] | None = None,
    counts: dict[Any, tuple[int, int]] | None = None,
) -> list[str]:
    """Text feature columns with many categories but not id-like (rare ones get grouped);
    ``ids``: the id-like columns, when known already."""
    texts = seam.text_counts(df, target) if counts is None else counts
    ids = set(id_like_columns(df, target, texts) if ids is None else ids)
    return [
        str(c)
        for c, (distinct, _) in texts.items()
        if c not in ids and distinct > HIGH_CARDINALITY_MIN
    ]


def _spelled_apart(counts: pd.Series) -> list[list[str]]:
    """Groups of class labels that are one label written differently (`Yes`, `yes `)."""
    groups: dict[str, list[str]] = {}
    for label in counts.index:
        groups.setdefault(" ".join(str(label).split()).casefold(), []).append(str(label))
    return [g for g in groups.values() if len(g) > 1]


def _categories_spelled_apart(
    df: pd.DataFrame, features: list[str]
) -> dict[str, list[list[tuple[str, int]]]]:
    """Text features with values that are one value written differently (`Male`, `male`):
    column -> groups of (value, rows). Columns of more than MAX_CATEGORIES values are IDs or
    text, where a case difference is no spelling."""
    out = {}
    wanted = set(features)
    texts = [c for c in seam.text_columns(df) if c in wanted]
    # Bounded like the leakage check: a table of thousands of text columns is looked at in part.
    for c in texts[: seam.LEAKAGE_MAX_COLUMNS]:
        counts = df[c].value_counts()
        if len(counts) > MAX_CATEGORIES:
            continue
        groups = _spelled_apart(counts)
        if groups:
            out[str(c)] = [[(k, int(counts[k])) for k in g] for g in groups]
    return out


def columns_to_drop(df: pd.DataFrame, target: str, features: list[str] | None = None) -> list[str]:
    """Columns the engine removes before training.

    Without a column choice: constant, id-like and free-text columns. With one: the columns not
    chosen, and chosen columns that are constant (the operator kept id-like ones on purpose).
    """
    if features is None:
        counts = seam.text_counts(df, target)
        return sorted(
            set(constant_columns(df, target, counts)) | set(id_like_columns(df, target, counts))
        )
    chosen = set(features)
    unchosen = {str(c) for c in df.columns if c != target and c not in chosen}
    return sorted(unchosen | (set(constant_columns(df[[*features, target]], target))))


def no_features_left(
    df: pd.DataFrame, target: str, features: list[str] | None = None
) -> str | None:
    """What to tell the operator when the engine would have no column left to learn from."""
    dropped = columns_to_drop(df, target, features)
    if any(c != target and c not in dropped for c in map(str, df.columns)):
        return None
    if features is not None and not features:
        return "No feature column is chosen: choose at least one besides the target."
    constant = set(constant_columns(df, target))
    shown = ", ".join(
        f"{c} ({'constant or empty' if c in constant else 'ID-like or free text'})"
        for c in dropped[:10]
    )
    more = f" and {len(dropped) - 10} more" if len(dropped) > 10 else ""
    keep = (
        " Keep an ID-like column by choosing it in the column choice, if it is a real feature."
        if set(dropped) - constant
        else ""
    )
    return f"No column is left to learn from: {shown}{more} would be left out.{keep}"


def check_data(
    df: pd.DataFrame, target: str, task: str, features: list[str] | None = None
) -> list[Guardrail]:
    """Run every guardrail on a training frame (the chosen features only); pure function."""
    if target not in df.columns:
        raise ValueError(f"target column {target!r} is not in the data")
    chosen = features is not None
    if features is not None:
        wanted = set(features)
        df = df[[c for c in df.columns if c in wanted or c == target]]
    out: list[Guardrail] = []
    n = len(df)
    features = [c for c in df.columns if c != target]

    missing_target = int(df[target].isna().sum())
    out.append(
        Guardrail(
            "Missing target values",
            DONE if missing_target else PASSED,
            f"{missing_target} of {n} rows have no target value."
            if missing_target
            else "Every row has a target value.",
            "Rows without a target were removed." if missing_target else "",
        )
    )

    if task == "classification":
        counts = df[target].dropna().astype(str).value_counts()
        if len(counts) >= 2:
            ratio = counts.iloc[-1] / counts.iloc[0]
            share = ", ".join(f"{k}: {v / counts.sum():.1%}" for k, v in counts.items())
            imbalanced = ratio < IMBALANCE_RATIO
            out.append(
                Guardrail(
                    "Class balancing detection",
                    ALERTED if imbalanced else PASSED,
                    f"Class shares {share} (smallest/largest = {ratio:.2f})."
                    if imbalanced
                    else f"Classes are balanced enough ({share}).",
                    "Prefer AUC_weighted over accuracy (always answering the largest class "
                    f"scores {counts.iloc[0] / counts.sum():.1%}) and over "
                    "average_precision_score_weighted (weighted by class size, the largest "
                    "class decides it); stratified validation splits are used."
                    if imbalanced
                    else "",
                )
            )
        else:
            out.append(
                Guardrail(
                    "Class balancing detection",
                    ALERTED,
                    f"The target has {len(counts)} distinct value(s); at least 2 are needed.",
                )
            )
        merged = seam.label_spellings(df[target])
        if merged:
            out.append(
                Guardrail(
                    "Class label spelling",
                    DONE,
                    "Class labels that differ only in case or spaces: "
                    + seam.label_spelling_note(merged, counts)
                    + ".",
                    "Each is learned as the spelling most rows use, and the model answers it.",
                )
            )

    apart = _categories_spelled_apart(df, features)
    if apart:
        shown = "; ".join(
            f"{c}: " + ", ".join(" / ".join(f"{k!r} ({n_})" for k, n_ in g) for g in groups[:3])
            for c, groups in list(apart.items())[:SPELLING_COLUMNS_SHOWN]
        )
        more = len(apart) - SPELLING_COLUMNS_SHOWN
        out.append(
            Guardrail(
                "Category spelling",
                ALERTED,
                f"Values that differ only in case or spaces: {shown}"
                + (f"; and {more} more columns." if more > 0 else "."),
                "Learned as different categories: if they are one, write each one way in the "
                "file and upload it again.",
                sorted(apart),
            )
        )

    absent = n - df[features].count()
    missing = {c: int(k) for c, k in absent.items() if k}
    out.append(
        Guardrail(
            "Missing feature values imputation",
            DONE if missing else PASSED,
            "Missing values in "
            + ", ".join(f"{c} ({k / n:.1%})" for c, k in sorted(missing.items()))
            + "."
            if missing
            else "No missing feature values were detected.",
            "Kept as missing: the tree learners route missing values natively; "
            "unseen categories at scoring time are treated the same way."
            if missing
            else "",
            sorted(missing),
        )
    )

    disguised = disguised_missing(df[features])
    if disguised:
        out.append(
            Guardrail(
                "Values that may mean missing",
                ALERTED,
                disguised_note(disguised, n),
                "Learned as numbers, as the dataset holds them. If they mean no value, "
                "register the file again with those tokens and train on the new version.",
                sorted(disguised),
            )
        )

    counts = seam.text_counts(df, target)
    ids = id_like_columns(df, target, counts)
    high = high_cardinality_columns(df, target, ids, counts)
    if ids or high:
        parts = []
        if ids:
            parts.append(
                f"id-like and free-text columns {', '.join(ids)} were "
                + ("kept, as chosen" if chosen else "dropped")
            )
        if high:
            parts.append(
                f"for {', '.join(high)} only the {MAX_CATEGORIES} most frequent categories "
                "are kept, the rest are treated as missing"
            )
        out.append(
            Guardrail(
                "High cardinality feature detection",
                DONE,
                "Columns with many distinct text values: " + ", ".join(ids + high) + ".",
                _sentence("; ".join(parts)),
                ids + high,
            )
        )
    else:
        out.append(
            Guardrail(
                "High cardinality feature detection",
                PASSED,
                "No high-cardinality text columns were detected.",
            )
        )

    out.append(leakage_guardrail(df, target, task))

    constant = constant_columns(df, target, counts)
    out.append(
        Guardrail(
            "Constant feature detection",
            DONE if constant else PASSED,
            f"Columns with a single value: {', '.join(constant)}."
            if constant
            else "No constant columns were detected.",
            "Dropped: they carry no signal." if constant else "",
            constant,
        )
    )

    # Rows compared by a 64-bit hash of their cells: 10x faster than comparing the cells.
    duplicated = int(pd.util.hash_pandas_object(df, index=False).duplicated().sum())
    out.append(
        Guardrail(
            "Duplicate rows",
            ALERTED if duplicated > 0.05 * n else PASSED,
            f"{duplicated} of {n} rows are exact duplicates.",
            "Kept; duplicates can leak between training and validation splits."
            if duplicated > 0.05 * n
            else "",
        )
    )

    min_rows = 50
    out.append(
        Guardrail(
            "Training data size",
            ALERTED if n - missing_target < min_rows else PASSED,
            f"{n - missing_target} usable rows, {len(features)} feature columns.",
            "Too few rows for a reliable validation score."
            if n - missing_target < min_rows
            else "",
        )
    )
    return out


def leakage_guardrail(df: pd.DataFrame, target: str, task: str) -> Guardrail:
    """Features that predict the target alone almost perfectly (one-feature holdout score)."""
    scores = seam.one_feature_scores(df, target, task)
    leaks = {c: s for c, s in scores.items() if s >= seam.LEAKAGE_SCORE}
    combined = seam.combined_leaks(df, target) if task == "regression" else {}
    combined = {c: r for c, r in combined.items() if c not in leaks}
    metric = "R²" if task == "regression" else "AUC"
    if not leaks and not combined:
        best = max(scores.items(), key=lambda kv: kv[1], default=None)
        detail = "No single feature predicts the target almost perfectly"
        detail += f" (best alone: {best[0]}, {metric} {best[1]:.3f})." if best else "."
        return Guardrail(LEAKAGE_GUARDRAIL, PASSED, detail, scores=scores)
    ranked = sorted(leaks.items(), key=lambda kv: -kv[1])
    parts = []
    if ranked:
        parts.append(
            "Alone, "
            + ", ".join(f"{c} predicts {target} with holdout {metric} {s:.3f}" for c, s in ranked)
        )
    parts += sorted(set(combined.values()))
    return Guardrail(
        LEAKAGE_GUARDRAIL,
        ALERTED,
        "; ".join(parts) + ".",
        "Exclude it unless it is known before the outcome (choose the columns of the run).",
        [c for c, _ in ranked] + list(combined),
        scores=scores,
    )


def model_leakage(
    rails: list[Guardrail], best_metrics: dict[str, float], task: str, features: list[str]
) -> tuple[Guardrail, dict[str, Any]] | None:
    """After the search: trained features whose one-feature score almost matches the model's.

    Reuses the scores the leakage guardrail computed before the search; None when it has none.
    Returns the guardrail row and the record stored with the run's details.
    """
    before = next((r for r in rails if r.name == LEAKAGE_GUARDRAIL and r.scores), None)
    metric = seam.LEAKAGE_METRIC.get(task)
    if before is None or metric is None:
        return None
    best = best_metrics.get(metric)
    trained = set(features)
    scores = {c: s for c, s in before.scores.items() if c in trained}
    flags = seam.relative_leakage(scores, best, task)
    share = f"{seam.RELATIVE_LEAKAGE:.0%}"
    if flags:
        rail = Guardrail(
            MODEL_LEAKAGE_GUARDRAIL,
            ALERTED,
            "; ".join(f.reason for f in flags) + ".",
            "Exclude it and run again unless it is known before the outcome.",
            [f.column for f in flags],
        )
    elif best is None or not math.isfinite(best):
        rail = Guardrail(
            MODEL_LEAKAGE_GUARDRAIL, PASSED, f"Not checked: the model has no {metric}."
        )
    elif best <= seam.CHANCE[task]:
        name = "R²" if task == "regression" else "AUC"
        rail = Guardrail(
            MODEL_LEAKAGE_GUARDRAIL,
            ALERTED,
            f"The model does no better than chance ({name} {best:.3f}, chance "
            f"{seam.CHANCE[task]:g}): its predictions carry no signal, so no feature is "
            "compared with it.",
            "Check the target and the feature columns, or give the run a bigger time budget; "
            "do not deploy this model.",
        )
    elif weak := seam.features_matching_a_weak_model(scores, best, task):
        column, score = weak[0]  # not a leak: a leak's flag would exclude it by default
        name = "R²" if task == "regression" else "AUC"
        rail = Guardrail(
            MODEL_LEAKAGE_GUARDRAIL,
            PASSED,
            f"{column} alone scores {name} {score:.3f}, "
            + ("above" if score > best else "close to")
            + f" the model's {best:.3f}: the model is weak rather than {column} a leak (a "
            f"leak scores {name} {seam.RELATIVE_MIN_SCORE[task]:g} or more alone). A bigger "
            "time budget, or more rows, may find a model that does better than one column.",
        )
    else:
        rail = Guardrail(
            MODEL_LEAKAGE_GUARDRAIL,
            PASSED,
            f"No feature alone reaches {share} of the model's {metric} {best:.3f} "
            "(both counted above chance).",
        )
    record = {
        "metric": metric,
        "model_score": best,
        "threshold": seam.RELATIVE_LEAKAGE,
        "one_feature_scores": scores,
        "flags": [asdict(f) for f in flags],
    }
    return rail, record


def _sentence(text: str) -> str:
    """Text with a capital first letter and a full stop; column names keep their case."""
    return text[:1].upper() + text[1:] + "."
