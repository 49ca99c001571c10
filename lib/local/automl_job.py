"""The `automl` job kind: runs the local AutoML engine inside a job process.

The job's time budget counts from the job's recorded start, so start-up (process launch,
imports, loading the data) is inside the promise the engine keeps.
"""

from __future__ import annotations

import importlib
import json
import math
import threading
import time
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from lib.files import atomic_write
from lib.local import tracking
from lib.local.datasets import LocalDatasets
from lib.local.jobs import JobContext, handler, log
from lib.metrics import LOWER_IS_BETTER, higher_is_better


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _as_dict(obj: Any) -> dict[str, Any]:
    if is_dataclass(obj):
        return asdict(obj)
    if isinstance(obj, dict):
        return obj
    return dict(vars(obj))


def _leaderboard_best(rows: list[dict[str, Any]], metric: str) -> float | None:
    """The top of the run's leaderboard (each estimator's best, and the ensemble's row when one
    is served): the run's best when the served model has no recorded score."""
    scores = [float(r[metric]) for r in rows if _finite(r.get(metric))]
    if not scores:
        return None
    return max(scores) if higher_is_better(metric) else min(scores)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@handler("automl")
def run_automl_job(ctx: JobContext, spec: dict[str, Any], settings: Any) -> dict[str, Any]:
    from lib.local.automl_engine import AutoMLCanceled, AutoMLSpec, run_automl

    # NB: opening MLflow's SQL store imports SQLAlchemy and Alembic (2-7 s); started now it
    # overlaps loading and checking the data instead of the search.
    threading.Thread(
        target=importlib.import_module,
        args=("mlflow.store.tracking.sqlalchemy_store",),
        name="warm-mlflow-store",
        daemon=True,
    ).start()
    request = spec["request"]
    datasets = LocalDatasets(ctx.store, max_upload_bytes=settings.max_upload_mb * 1024 * 1024)
    ctx.progress(phase="Loading data", trials=0)
    frame = datasets.load(request["dataset"], request["dataset_version"])
    log(f"loaded {request['dataset']} v{request['dataset_version']}: {frame.shape}")

    from lib.local.guardrails import check_data

    # Shown with the job while the search runs; the engine's final list replaces it.
    features = request.get("features")
    ctx.progress(phase="Checking data", trials=0)
    checked = check_data(frame, request["target"], request["task"], features)
    early = [g.to_dict() for g in checked]
    job_dir = ctx.store.artifacts("jobs", ctx.job_id)
    atomic_write(job_dir / "guardrails.json", json.dumps(_clean(early), default=str).encode())

    metric = request["primary_metric"]
    higher = metric not in LOWER_IS_BETTER
    started = time.monotonic()
    state: dict[str, Any] = {"best": None, "trials": 0}

    def on_trial(event: Any) -> None:
        e = _clean(_as_dict(event))
        value = e.get("primary_metric")
        if value is not None:
            best = state["best"]
            if best is None or (value > best if higher else value < best):
                state["best"] = value
        state["trials"] += 1
        with ctx.store.transaction() as tx:
            tx.execute(
                """INSERT OR REPLACE INTO trials(job_id, trial, estimator, primary_metric,
                   best_so_far, metrics, config, duration_s, wall_time_s, status, run_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    ctx.job_id,
                    int(e.get("trial", state["trials"])),
                    str(e.get("estimator", "")),
                    value,
                    state["best"],
                    json.dumps(e.get("metrics") or {}),
                    json.dumps(e.get("config") or {}, default=str),
                    float(e.get("duration_s") or 0.0),
                    float(e.get("wall_time_s") or (time.monotonic() - started)),
                    str(e.get("status") or "Completed"),
                    str(e.get("run_id") or ""),
                ),
            )
        ctx.progress(
            phase="Searching",
            trials=state["trials"],
            best_score=state["best"],
            current_estimator=e.get("estimator"),
        )

    commas, words = datasets.number_reading(request["dataset"], request["dataset_version"])
    engine_spec = AutoMLSpec(
        target=request["target"],
        task=request["task"],
        primary_metric=metric,
        time_budget_s=float(request["time_budget_s"]),
        max_trials=request.get("max_trials"),
        estimators=request.get("estimators"),
        validation=request.get("validation", "auto"),
        holdout_fraction=float(request.get("holdout_fraction", 0.2)),
        n_folds=int(request.get("n_folds", 5)),
        ensemble=bool(request.get("ensemble", True)),
        experiment_name=request.get("experiment_name", "automl"),
        features=features,
        date_formats=datasets.date_formats(request["dataset"], request["dataset_version"]),
        missing_numbers=datasets.missing_numbers(request["dataset"], request["dataset_version"]),
        decimal_comma=commas,
        missing_words=words,
    )
    tracking.ensure_store(ctx.store.home)
    try:
        result = run_automl(
            frame,
            engine_spec,
            tracking_uri=tracking.tracking_uri(ctx.store.home),
            artifact_dir=tracking.artifact_root(ctx.store.home),
            on_trial=on_trial,
            should_stop=ctx.cancel_requested,
            log=log,
            started_at=_started_at(ctx),
            fastpath_dir=job_dir / "fastpath",
            on_phase=lambda name: ctx.progress(phase=name),
            guardrails=checked,
        )
    except AutoMLCanceled as exc:
        raise KeyboardInterrupt from exc
    if ctx.cancel_requested():
        raise KeyboardInterrupt
    out = _clean(_as_dict(result))
    details = out.pop("details", {}) or {}
    guardrails = out.pop("guardrails", None) or early
    details["best_estimator"] = out.get("best_estimator")
    details.setdefault("metrics", out.get("best_metrics", {}))
    # The run's best, as the runs table and Home show it, is the served model's score.
    served = (details.get("metrics") or {}).get(result.primary_metric)
    final = (
        served
        if _finite(served)
        else _leaderboard_best(out["per_estimator"], result.primary_metric)
    )
    ctx.progress(
        phase="Done",
        budget=_clean(result.budget),
        left_out=result.left_out,
        **({"best_score": float(final)} if final is not None else {}),
    )
    atomic_write(job_dir / "details.json", json.dumps(details, default=str).encode())
    atomic_write(job_dir / "guardrails.json", json.dumps(guardrails, default=str).encode())
    out.pop("trials", None)
    out["task"] = request["task"]
    return out


def _started_at(ctx: JobContext) -> float:
    """The job's recorded start (epoch seconds): where its time budget counts from."""
    row = (
        ctx.store.connect().execute("SELECT started FROM jobs WHERE id=?", (ctx.job_id,)).fetchone()
    )
    if row is None or not row[0]:
        return time.time()
    return datetime.fromisoformat(row[0]).timestamp()
