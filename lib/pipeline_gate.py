"""The deploy gate's rules, shared by both backends: which rows both models are judged on, and
the decision.

The rows are the new AutoML run's validation rows, split exactly as the local engine splits them
(stratified holdout with its seed); the Azure backend hands AutoML the very same holdout as
explicit validation data, so the gate's numbers mean the same on both.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lib.metrics import higher_is_better

DEFAULT_SEED = 42


def decide(
    metric: str, challenger: float, champion: float | None, margin: float
) -> tuple[str, str]:
    """("deploy" | "keep", why): deploy when the challenger beats the champion by more than margin."""
    if champion is None:
        return "deploy", "no live model on the endpoint: the new model is deployed"
    if challenger is None or not math.isfinite(challenger):
        return "keep", f"the new model has no {metric} value"
    gain = challenger - champion if higher_is_better(metric) else champion - challenger
    compared = f"new {challenger:.4f} vs live {champion:.4f} ({metric}, gain {gain:+.4f})"
    if gain > margin:
        return "deploy", f"{compared} beats the margin {margin:g}"
    return "keep", f"{compared} does not beat the margin {margin:g}: the live model stays"


def validation_rows(
    frame: pd.DataFrame,
    target: str,
    task: str,
    validation: str,
    holdout_fraction: float,
    seed: int = DEFAULT_SEED,
) -> tuple[pd.DataFrame, pd.Series]:
    """The rows an AutoML run validated on, split exactly as the local engine splits them."""
    from sklearn.model_selection import train_test_split

    data = frame[frame[target].notna()].reset_index(drop=True)
    if validation != "holdout":
        # Cross-validation scores every row out of fold.
        return data.drop(columns=[target]), data[target]
    labels = data[target]
    stratify = None
    if task == "classification":
        classes = sorted(labels.unique().tolist(), key=lambda v: (str(type(v)), v))
        code = {c: i for i, c in enumerate(classes)}
        stratify = np.array([code[v] for v in labels.tolist()], dtype=np.int64)
    _, rows = train_test_split(
        np.arange(len(data)),
        test_size=holdout_fraction,
        random_state=seed,
        stratify=stratify,
    )
    rows = np.sort(rows)
    part = data.iloc[rows]
    return part.drop(columns=[target]), part[target]
