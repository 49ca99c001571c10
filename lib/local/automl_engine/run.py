"""One AutoML run, phase by phase: prepare, search, select, refit, save, record."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from lib.local.automl_engine import evaluation as ev
from lib.local.automl_engine import packaging, tracking
from lib.local.automl_engine.data import prepare
from lib.local.automl_engine.ensemble import select_model
from lib.local.automl_engine.search import run_search
from lib.local.automl_engine.spec import AutoMLResult, AutoMLSpec, TrialEvent


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
    """Search, ensemble, log and save the best model; see the package docstring for the flow.

    ``on_trial`` and ``should_stop`` are called on the calling thread after each trial; once
    ``should_stop()`` is true the search ends after the current trial and ``AutoMLCanceled``
    is raised (trials stay logged as child runs, the parent run is marked KILLED).
    """
    t_start = time.time()
    metric = _check_request(spec, tracking_uri)
    artifact_dir = Path(artifact_dir).resolve()
    artifact_dir.mkdir(parents=True, exist_ok=True)
    data = prepare(df, spec, metric, log)

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = tracking.experiment_id(client, spec.experiment_name, artifact_dir)
    with mlflow.start_run(experiment_id=experiment_id, run_name="automl") as parent:
        parent_id = parent.info.run_id
        tracking.log_run_inputs(spec, metric, data)
        trial_logger = tracking.TrialLogger(client, experiment_id, parent_id)
        search = run_search(
            data,
            spec,
            metric,
            parent_id=parent_id,
            trial_logger=trial_logger,
            artifact_dir=artifact_dir,
            on_trial=on_trial,
            should_stop=should_stop,
            log=log,
        )

        t_post = time.time()
        post_budget = max(30.0, 0.5 * spec.time_budget_s)
        # Leave part of the finishing allowance for the refit on every row.
        candidates_until = t_start + spec.time_budget_s + 0.6 * packaging.finish_allowance(spec)

        def may_continue(_i: int) -> bool:
            now = time.time()
            return not (now - t_post > post_budget or now > candidates_until)

        selection = select_model(search, data, spec, metric, may_continue, log)
        per_estimator = list(search.per_estimator)
        if selection.is_ensemble:
            per_estimator.append(selection.leaderboard_row(spec.task))

        refit_until = t_start + spec.time_budget_s + packaging.finish_allowance(spec)
        members = packaging.refit_members(search.automl, selection, data, spec, refit_until, log)
        model = packaging.build_model(data, spec, members, selection)
        model_uri = packaging.save_model(model, data.X_df, parent_id)
        details = ev.model_details(
            model,
            spec.task,
            data.y_val,
            selection.val_scores,
            data.classes,
            selection.threshold,
            _validation_label(spec),
            spec.seed,
        )
        post_s = time.time() - t_post

        tracking.log_run_summary(
            selection.metrics,
            {"trials": len(search.trials), "search_s": search.seconds, "finish_s": post_s},
            {
                "automl.best_estimator": selection.name,
                "automl.members": ",".join(n for (n, _), _c in selection.chosen),
                "automl.threshold": ""
                if selection.threshold is None
                else f"{selection.threshold:.4f}",
            },
            per_estimator,
        )
        if trial_logger.errors:
            log(f"{len(trial_logger.errors)} trial runs failed to log: {trial_logger.errors[0]}")

    return AutoMLResult(
        parent_run_id=parent_id,
        primary_metric=metric,
        trials=search.trials,
        per_estimator=per_estimator,
        best_estimator=selection.name,
        best_metrics=selection.metrics,
        model_uri=model_uri,
        details=details,
        guardrails=[r.to_dict() for r in data.rails],
        classes=data.classes,
        threshold=selection.threshold,
        ensemble_members=[
            {"estimator": n, "weight": w, "config": cfg}
            for ((n, cfg), _c), w in zip(selection.chosen, selection.weights, strict=True)
        ],
        timings={
            "search_s": search.seconds,
            "finish_s": post_s,
            "total_s": time.time() - t_start,
        },
    )


def _check_request(spec: AutoMLSpec, tracking_uri: str) -> str:
    """Reject what cannot run before any work; return the canonical primary metric."""
    if spec.task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', not {spec.task!r}")
    if spec.validation not in ("holdout", "cv"):
        raise ValueError(f"validation must be 'holdout' or 'cv', not {spec.validation!r}")
    if not tracking_uri.startswith("sqlite:////") and "://" not in tracking_uri:
        raise ValueError("tracking_uri must be an absolute URI such as sqlite:////abs/mlflow.db")
    return ev.normalize_metric(spec.primary_metric, spec.task)


def _validation_label(spec: AutoMLSpec) -> str:
    if spec.validation == "holdout":
        return f"holdout {spec.holdout_fraction:.0%}"
    return f"{spec.n_folds}-fold out-of-fold"
