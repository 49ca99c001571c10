"""The served model: the chosen configs refit on every row, saved as an MLflow pyfunc."""

from __future__ import annotations

import importlib.metadata
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from flaml import AutoML
from mlflow.models import infer_signature

from lib.local.automl_engine.data import Prepared
from lib.local.automl_engine.ensemble import Selection
from lib.local.automl_engine.members import fit_member, learner_class
from lib.local.automl_engine.spec import AutoMLSpec
from lib.local.tabular_model import Member, TabularModel, write_model_code

# Final boosters can be refit with several seeds and averaged (LightGBM with row subsampling
# so the seeds differ). Measured on Bank Marketing it moved holdout AUC by ~0.0002 (noise) while
# multiplying the trees an endpoint evaluates per request (single-row throughput -40%), so it
# is off by default; extra seeds only ever run while the wall time allows.
FINAL_SEEDS = 1
BAG_SUBSAMPLE = 0.8
# Wall time allowed beyond the search budget before extra seeds are skipped.
FINISH_ALLOWANCE = (60.0, 0.2)  # seconds, fraction of the budget; the larger one applies


def finish_allowance(spec: AutoMLSpec) -> float:
    """Seconds of wall time allowed after the search budget for ensembling and refitting."""
    return max(FINISH_ALLOWANCE[0], FINISH_ALLOWANCE[1] * spec.time_budget_s)


def bagged_config(name: str, config: dict[str, Any], seed: int) -> dict[str, Any] | None:
    """The config refit with another seed, or None when the seed would change nothing."""
    if name == "lgbm":
        return {**config, "random_state": seed, "subsample": BAG_SUBSAMPLE, "subsample_freq": 1}
    if name in ("xgboost", "xgb_limitdepth"):
        keys = ("subsample", "colsample_bytree", "colsample_bylevel")
        if all(config.get(k, 1.0) >= 1.0 for k in keys):
            return None
        return {**config, "random_state": seed}
    return None


def refit_members(
    automl: AutoML,
    selection: Selection,
    data: Prepared,
    spec: AutoMLSpec,
    deadline: float,
    log: Callable[[str], None],
) -> list[Member]:
    """Refit the chosen configs on every row; boosters get extra seeds while time allows."""
    chosen = selection.chosen
    fits: list[list[Member]] = []
    cost: list[float] = []

    def fit(name: str, cfg: dict[str, Any]) -> Member:
        learner = learner_class(automl, name)
        return fit_member(learner, name, cfg, data.X, data.y, spec.task, data.cat_idx, data.n_jobs)

    for name, cfg in (key for key, _c in chosen):
        t = time.time()
        fits.append([fit(name, cfg)])
        cost.append(time.time() - t)
    for b in range(1, FINAL_SEEDS):
        for i, ((name, cfg), _c) in enumerate(chosen):
            bagged = bagged_config(name, cfg, spec.seed + b)
            # A bagged LightGBM fit costs about as much as the plain refit measured above.
            if bagged is None or time.time() + cost[i] > deadline:
                continue
            fits[i].append(fit(name, bagged))
    members = []
    for group, ((_name, _cfg), c) in zip(fits, chosen, strict=True):
        for m in group:
            m.weight = float(c) / len(group)
            members.append(m)
    log(f"refit: {len(members)} members from {len(chosen)} configs")
    return members


def build_model(
    data: Prepared, spec: AutoMLSpec, members: list[Member], selection: Selection
) -> TabularModel:
    """The served ``TabularModel``: the run's encoder, the members, classes and threshold."""
    classes = data.classes
    return TabularModel(
        task=spec.task,
        encoder=data.encoder,
        members=members,
        classes=classes,
        threshold=selection.threshold,
        positive_label=classes[1] if data.is_clf and len(classes) == 2 else None,
    )


def pip_requirements() -> list[str]:
    out = []
    for pkg in ("mlflow", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost"):
        try:
            out.append(f"{pkg}=={importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def input_example(X_df: pd.DataFrame) -> pd.DataFrame:
    """Five rows as a client sends them: missing text values as None, not NaN."""
    example = X_df.head(5).copy()
    for col in example.columns:
        if not (
            pd.api.types.is_numeric_dtype(example[col]) or pd.api.types.is_bool_dtype(example[col])
        ):
            example[col] = example[col].astype(object).where(example[col].notna(), None)
    return example.reset_index(drop=True)


def save_model(model: TabularModel, X_df: pd.DataFrame, parent_id: str) -> str:
    """Log the model as an MLflow pyfunc under the active parent run; return its URI."""
    example = input_example(X_df)
    signature = infer_signature(example, model.predict(None, example))
    with tempfile.TemporaryDirectory() as tmp:
        code_dir = write_model_code(Path(tmp))
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
                pip_requirements=pip_requirements(),
            )
        mlflow_logger.setLevel(mlflow_level)
    return f"runs:/{parent_id}/model"
