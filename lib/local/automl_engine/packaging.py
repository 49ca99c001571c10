"""The served model: the chosen configs refit on every row, saved as an MLflow pyfunc, and
compiled for the numpy-only fast path once it agrees with the saved model."""

from __future__ import annotations

import importlib.metadata
import json
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

from lib.files import atomic_write
from lib.local.automl_engine.budget import Clock, slowdown, tail_s
from lib.local.automl_engine.data import Prepared
from lib.local.automl_engine.ensemble import Selection
from lib.local.automl_engine.members import complete, fit_member, learner_class
from lib.local.automl_engine.spec import AutoMLSpec
from lib.local.fastpath import NotCompilable, compile_model, save, verify
from lib.local.tabular_model import Member, TabularModel, write_model_code

# Final boosters can be refit with several seeds and averaged (LightGBM with row subsampling
# so the seeds differ). Measured on Bank Marketing it moved holdout AUC by ~0.0002 (noise) while
# multiplying the trees an endpoint evaluates per request (single-row throughput -40%), so it
# is off by default; extra seeds only ever run while the wall time allows.
FINAL_SEEDS = 1
BAG_SUBSAMPLE = 0.8
# Rows of the fast path's agreement check with the saved model, and the least it may be cut to.
VERIFY_ROWS = 2000
VERIFY_MIN_ROWS = 200
# Below this many seconds left, the fast path is not compiled (it could not be verified).
FASTPATH_MIN_S = 1.0


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
    clock: Clock,
    log: Callable[[str], None],
) -> list[Member]:
    """Refit the chosen configs on every row while time allows (else serve the member fitted
    on the first validation split); boosters get extra seeds while time allows."""
    chosen = selection.chosen
    deadline = clock.end - tail_s(data.X.shape[1])
    fits: list[list[Member]] = []
    cost: list[float] = []

    def fit(name: str, cfg: dict[str, Any]) -> Member:
        learner = learner_class(automl, name)
        return fit_member(
            learner, name, cfg, data.X, data.y, spec.task, data.cat_idx, data.n_jobs, deadline
        )

    served_as_split = f"served as fitted on {len(data.folds[0][0])} of the {len(data.y)} rows"
    for i, ((name, cfg), _c) in enumerate(chosen):
        if time.time() + selection.refit_s[i] > deadline:
            clock.trim(
                "Refit",
                f"{name} {served_as_split}: the refit on every row would not finish in time",
                log,
            )
            fits.append([selection.split_members[i]])
            cost.append(selection.refit_s[i])
            continue
        t = time.time()
        refit = fit(name, cfg)
        cost.append(time.time() - t)
        if not complete(refit):  # stopped at the deadline: not the model that was validated
            clock.trim(
                "Refit",
                f"{name} {served_as_split}: the refit on every row ran out of time",
                log,
            )
            refit = selection.split_members[i]
        fits.append([refit])
    skipped = 0
    for b in range(1, FINAL_SEEDS):
        for i, ((name, cfg), _c) in enumerate(chosen):
            bagged = bagged_config(name, cfg, spec.seed + b)
            if bagged is None:
                continue
            # A bagged LightGBM fit costs about as much as the plain refit measured above.
            if time.time() + cost[i] > deadline:
                skipped += 1
                continue
            extra = fit(name, bagged)
            if complete(extra):
                fits[i].append(extra)
            else:
                skipped += 1
    if skipped:
        clock.trim("Extra seeds", f"{skipped} seed refits skipped to finish in time", log)
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
        # A client scoring a row of the uploaded table sends its target cell too.
        ignored_inputs=[*data.dropped, *data.screened, spec.target],
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
    """Five rows as a client sends them: missing text values as None, not NaN, and datetimes
    as ISO 8601 text (so the signature types them as strings, which JSON clients send)."""
    example = X_df.head(5).copy()
    for col in example.columns:
        if pd.api.types.is_datetime64_any_dtype(example[col]):
            iso = [None if pd.isna(v) else v.isoformat() for v in example[col]]
            example[col] = pd.Series(iso, index=example.index, dtype=object)
        elif not (
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


def load_saved_model(model_uri: str) -> TabularModel:
    """The saved model as a server will load it (from the store, not the in-memory object)."""
    return mlflow.pyfunc.load_model(model_uri, suppress_warnings=True).unwrap_python_model()


def compile_fastpath(
    model_uri: str,
    sample: pd.DataFrame,
    directory: Path,
    clock: Clock,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Compile the saved model for numpy-only serving into ``directory``, kept only if it
    predicts exactly as the model on the sample rows checked in the time left (never fewer
    than ``VERIFY_MIN_ROWS``); without time for that, endpoints serve the MLflow model."""
    if clock.left() < FASTPATH_MIN_S * slowdown():
        reason = f"not compiled: {max(0.0, clock.left()):.1f} s left, too little to verify it"
        clock.trim("Fast path", reason + "; endpoints serve the MLflow model", log)
        return {"ok": False, "reason": reason}
    model = load_saved_model(model_uri)
    try:
        compiled = compile_model(model)
    except NotCompilable as exc:
        log(f"fast path: not compiled ({exc}); endpoints will serve the MLflow model")
        return {"ok": False, "reason": str(exc)}
    reports = _verify_in_time(model, compiled, sample, clock, log)
    if not all(r["ok"] for r in reports):
        log(f"fast path: disagrees with the model ({reports}); not used")
        return {"ok": False, "reason": "predictions differ", "reports": reports}
    save(compiled, directory)
    report = {"ok": True, "rows": reports[0]["rows"], "reports": reports}
    atomic_write(directory / "verification.json", json.dumps(report, default=_plain).encode())
    log(f"fast path: compiled, identical on {report['rows']} rows")
    return report


def _verify_in_time(
    model: TabularModel,
    compiled: Any,
    sample: pd.DataFrame,
    clock: Clock,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Verify a first slice, then as many further sample rows as the time left allows.

    The checked rows without missing values are verified again on their own: without NaN
    their integer columns keep integer dtypes, another path through the encoder.
    """
    first = sample.iloc[:VERIFY_MIN_ROWS]
    t = time.time()
    report = verify(model, compiled, first)
    per_row = (time.time() - t) / max(1, len(first))
    rest = sample.iloc[VERIFY_MIN_ROWS:]
    # Twice the rows' cost: the complete rows among them are checked a second time.
    affordable = int(max(0.0, clock.left() - 0.5) / (2 * per_row)) if per_row > 0 else len(rest)
    if affordable < len(rest):
        clock.trim(
            "Fast path check",
            f"compared with the saved model on {len(first) + affordable} of {len(sample)} "
            "sample rows to finish in time",
            log,
        )
        rest = rest.iloc[:affordable]
    if len(rest):
        report = _merge(report, verify(model, compiled, rest))
    reports = [report]
    checked = sample.iloc[: len(first) + len(rest)]
    complete = checked.dropna()
    if len(complete) and len(complete) < len(checked):
        reports.append(verify(model, compiled, complete))
    return reports


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One report for two slices of the same sample."""
    return {
        "rows": a["rows"] + b["rows"],
        "max_abs_diff": max(a["max_abs_diff"], b["max_abs_diff"]),
        "label_mismatches": a["label_mismatches"] + b["label_mismatches"],
        "encoding_mismatches": a["encoding_mismatches"] + b["encoding_mismatches"],
        "ok": bool(a["ok"] and b["ok"]),
        "error": a["error"] or b["error"],
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)
