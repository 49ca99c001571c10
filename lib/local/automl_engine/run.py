"""One AutoML run, phase by phase: prepare, search, select, refit, save, compile, record."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from lib.automl_rules import resolve_validation
from lib.local.automl_engine import evaluation as ev
from lib.local.automl_engine import packaging, tracking
from lib.local.automl_engine.budget import Clock, CostModel
from lib.local.automl_engine.data import Prepared, prepare
from lib.local.automl_engine.ensemble import Selection, select_model
from lib.local.automl_engine.search import SearchOutcome, run_search
from lib.local.automl_engine.spec import AutoMLCanceled, AutoMLResult, AutoMLSpec, TrialEvent
from lib.local.guardrails import Guardrail, model_leakage


def run_automl(
    df: pd.DataFrame,
    spec: AutoMLSpec,
    *,
    tracking_uri: str,
    artifact_dir: Path,
    on_trial: Callable[[TrialEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] = print,
    started_at: float | None = None,
    fastpath_dir: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
    guardrails: list[Guardrail] | None = None,
) -> AutoMLResult:
    """Search, ensemble, log and save the best model; see the package docstring for the flow.

    Everything ends within ``budget.promised_seconds(spec.time_budget_s)`` of ``started_at``
    (the job's start; default now), trimming optional work to fit (``result.budget``).
    ``fastpath_dir``: also compile the saved model for numpy-only serving there, verified
    against it. ``on_trial`` and ``should_stop`` are called on the calling thread after each
    trial; once ``should_stop()`` is true the search ends after the current trial and
    ``AutoMLCanceled`` is raised (trials stay logged as child runs, the parent run is marked
    KILLED). ``on_phase`` hears the name of each phase as it starts. ``guardrails``: what
    ``guardrails.check_data`` already said of this frame and spec (not computed again).
    """
    clock = Clock(spec.time_budget_s, started_at)
    phase = _Phases(on_phase)
    spec = _concrete_validation(spec, df)
    metric = _check_request(spec, tracking_uri)
    artifact_dir = Path(artifact_dir).resolve()
    artifact_dir.mkdir(parents=True, exist_ok=True)

    phase("Preparing data")
    data = prepare(df, spec, metric, log, guardrails)
    if data.screened:
        kept = data.numbers_before_screen - len(data.screened)
        clock.trim(
            "Columns",
            f"searched the {kept:,} of {data.numbers_before_screen:,} columns that predict "
            f"{spec.target} best on their own; a search on every column would not finish in "
            "time (a bigger budget takes more of them)",
            log,
        )
    costs = CostModel.for_folds(
        len(data.y), data.folds, cv=spec.validation == "cv", features=data.X.shape[1]
    )
    recorder = tracking.RunRecorder(
        tracking_uri,
        spec.experiment_name,
        artifact_dir,
        tracking.run_inputs(spec, metric, data),
        [r.to_dict() for r in data.rails],
    )
    try:
        phase("Searching")
        search = run_search(
            data,
            spec,
            metric,
            recorder=recorder,
            artifact_dir=artifact_dir,
            clock=clock,
            costs=costs,
            on_trial=on_trial,
            should_stop=should_stop,
            log=log,
        )
        phase("Ensembling")
        selection = select_model(search, data, spec, metric, clock, costs, log)
        phase("Refitting")
        members = packaging.refit_members(search.automl, selection, data, spec, clock, log)
        model = packaging.build_model(data, spec, members, selection)
    except AutoMLCanceled:
        raise
    except BaseException:
        recorder.end("FAILED", "Failed")
        raise

    phase("Saving model")
    parent_id = _resume_parent_run(recorder, search, artifact_dir, tracking_uri)
    with mlflow.start_run(run_id=parent_id):
        model_uri = packaging.save_model(model, data.X_df, parent_id)
        fastpath = None
        if fastpath_dir is not None:
            phase("Compiling fast path")
            sample = df.drop(columns=[spec.target])
            sample = sample.sample(n=min(len(sample), packaging.VERIFY_ROWS), random_state=0)
            fastpath = packaging.compile_fastpath(model_uri, sample, fastpath_dir, clock, log)
        phase("Recording")
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
        result = AutoMLResult(
            parent_run_id=parent_id,
            primary_metric=metric,
            trials=search.trials,
            per_estimator=_leaderboard(search, selection, spec),
            best_estimator=selection.name,
            best_metrics=selection.metrics,
            model_uri=model_uri,
            details=details,
            guardrails=[],
            classes=data.classes,
            threshold=selection.threshold,
            ensemble_members=[
                {"estimator": n, "weight": w, "config": cfg}
                for ((n, cfg), _c), w in zip(selection.chosen, selection.weights, strict=True)
            ],
            feature_spec=list(model.feature_spec),
            fastpath=fastpath,
            left_out=list(data.dropped),
        )
        _record(result, data, search, selection, clock, phase, recorder, log)
    return result


def _resume_parent_run(
    recorder: tracking.RunRecorder, search: SearchOutcome, artifact_dir: Path, uri: str
) -> str:
    """Wait until every trial is written and make the parent run the active one again."""
    recorder.close()
    _client, parent_id = recorder.parent()
    if search.trial_log.exists():
        search.trial_log.replace(artifact_dir / f"flaml_trials_{parent_id}.jsonl")
    mlflow.set_tracking_uri(uri)
    return parent_id


def _leaderboard(
    search: SearchOutcome, selection: Selection, spec: AutoMLSpec
) -> list[dict[str, Any]]:
    """Each estimator's best trial, and the ensemble's row when the model is one."""
    rows = list(search.per_estimator)
    if selection.is_ensemble:
        rows.append(selection.leaderboard_row(spec.task))
    return rows


def _record(
    result: AutoMLResult,
    data: Prepared,
    search: SearchOutcome,
    selection: Selection,
    clock: Clock,
    phase: _Phases,
    recorder: tracking.RunRecorder,
    log: Callable[[str], None],
) -> None:
    """Timings, the time budget and the post-search guardrails on the result and on the active
    parent run."""
    finish_s = time.time() - phase.started["Ensembling"]
    task = "classification" if data.is_clf else "regression"
    leakage = model_leakage(data.rails, selection.metrics, task, list(data.X_df.columns))
    if leakage is not None:
        result.details["leakage"] = leakage[1]
    guardrails = [*data.rails, *([leakage[0]] if leakage else []), clock.guardrail()]
    tracking.log_run_summary(
        selection.metrics,
        {
            "trials": len(search.trials),
            "search_s": search.seconds,
            "finish_s": finish_s,
            "elapsed_s": clock.elapsed(),
        },
        {
            "automl.best_estimator": selection.name,
            "automl.members": ",".join(n for (n, _), _c in selection.chosen),
            "automl.threshold": "" if selection.threshold is None else f"{selection.threshold:.4f}",
            "automl.trimmed": "; ".join(f"{t.step}: {t.reason}" for t in clock.trims),
        },
        result.per_estimator,
        [g.to_dict() for g in guardrails],
    )
    if recorder.errors:
        log(f"{len(recorder.errors)} trial runs failed to log: {recorder.errors[0]}")
    phase.done()
    result.guardrails = [g.to_dict() for g in guardrails]
    result.budget = clock.summary()
    result.timings = {
        **{f"{k.lower().replace(' ', '_')}_s": v for k, v in phase.seconds.items()},
        "search_s": search.seconds,
        "finish_s": finish_s,
        "total_s": clock.elapsed(),
    }
    log(
        f"time budget: {result.budget['elapsed_s']:.1f}s of the promised "
        f"{result.budget['promised_s']:.1f}s"
        + (f", {len(clock.trims)} step(s) trimmed" if clock.trims else "")
    )


class _Phases:
    """Announces each phase and keeps when it started and how long it took."""

    def __init__(self, on_phase: Callable[[str], None] | None):
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self._on_phase = on_phase
        self._current: str | None = None

    def __call__(self, name: str) -> None:
        self.done()
        self._current = name
        self.started[name] = time.time()
        if self._on_phase is not None:
            self._on_phase(name)

    def done(self) -> None:
        if self._current is not None:
            self.seconds[self._current] = time.time() - self.started[self._current]
            self._current = None


def _check_request(spec: AutoMLSpec, tracking_uri: str) -> str:
    """Reject what cannot run before any work; return the canonical primary metric."""
    if spec.task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', not {spec.task!r}")
    if spec.validation not in ("holdout", "cv"):
        raise ValueError(f"validation must be 'holdout' or 'cv', not {spec.validation!r}")
    if not tracking_uri.startswith("sqlite:////") and "://" not in tracking_uri:
        raise ValueError("tracking_uri must be an absolute URI such as sqlite:////abs/mlflow.db")
    return ev.normalize_metric(spec.primary_metric, spec.task)


def _concrete_validation(spec: AutoMLSpec, df: pd.DataFrame) -> AutoMLSpec:
    """The spec with "auto" validation decided for this frame's labelled rows."""
    if spec.validation != "auto" or spec.target not in df.columns:
        return spec
    target = df[spec.target].dropna()
    if target.empty:
        return spec
    smallest = int(target.value_counts().min()) if spec.task == "classification" else None
    validation, folds = resolve_validation(spec.validation, len(target), spec.n_folds, smallest)
    return dataclasses.replace(spec, validation=validation, n_folds=folds)


def _validation_label(spec: AutoMLSpec) -> str:
    if spec.validation == "holdout":
        return f"holdout {spec.holdout_fraction:.0%}"
    return f"{spec.n_folds}-fold out-of-fold"
