"""The FLAML search on the encoded matrix; every finished trial becomes an MLflow child run.

FLAML is fed the encoded numpy matrix rather than a DataFrame so that its own pandas
preprocessing is never part of the model: training and serving see the very same floats.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from flaml import AutoML

from lib.local.automl_engine import evaluation as ev
from lib.local.automl_engine.budget import (
    ENSEMBLE_SHARE,
    MIN_SEARCH_S,
    SAFETY,
    Clock,
    CostModel,
    slowdown,
)
from lib.local.automl_engine.data import Prepared
from lib.local.automl_engine.members import (
    BOOSTERS,
    fit_member,
    learner_class,
    pinned_booster,
    plain_config,
)
from lib.local.automl_engine.spec import AutoMLCanceled, AutoMLSpec, TrialEvent
from lib.local.automl_engine.tracking import RunRecorder
from lib.local.tabular_model import Encoder, Member, TabularModel

# Extra first points for the search besides FLAML's cheap initial configs: the libraries'
# own defaults (a strong tabular baseline) and a slower-learning variant of each, so the
# search never ends below what an untuned booster would give.
STARTING_POINTS: dict[str, list[dict[str, Any]]] = {
    "lgbm": [
        {
            "n_estimators": 100,
            "num_leaves": 31,
            "min_child_samples": 20,
            "learning_rate": 0.1,
            "log_max_bin": 8,
            "colsample_bytree": 1.0,
            "reg_alpha": 1 / 1024,
            "reg_lambda": 1 / 1024,
        },
        {
            "n_estimators": 500,
            "num_leaves": 15,
            "min_child_samples": 30,
            "learning_rate": 0.03,
            "log_max_bin": 8,
            "colsample_bytree": 0.7,
            "reg_alpha": 1 / 1024,
            "reg_lambda": 1.0,
        },
    ],
    "xgb_limitdepth": [
        {
            "n_estimators": 300,
            "max_depth": 5,
            "min_child_weight": 1.0,
            "learning_rate": 0.05,
            "subsample": 0.8,
            "colsample_bylevel": 1.0,
            "colsample_bytree": 0.8,
            "reg_alpha": 1 / 1024,
            "reg_lambda": 1.0,
        }
    ],
}
STARTING_POINTS_MIN_ROWS = 1000


class _TrackedAutoML(AutoML):
    """FLAML AutoML that reports every finished trial to a callback, on the search thread."""

    def __init__(self, on_logged_trial: Callable[[AutoML, Any, str], None], **kwargs: Any):
        super().__init__(**kwargs)
        self._on_logged_trial = on_logged_trial

    def _log_trial(self, search_state: Any, estimator: str) -> None:
        super()._log_trial(search_state, estimator)
        self._on_logged_trial(self, search_state, estimator)

    def _search(self) -> None:
        # After a cross-validated search FLAML fits the best config once more on every row,
        # with no time limit, whatever `retrain_full` says. The engine scores and refits what
        # it serves itself, so that fit was thrown away: 26 s of a 10 s budget on a
        # 2,000 x 3,000 table.
        self._state.retrain_final = False
        super()._search()

    def stop_search(self) -> None:
        # The search loop ends once the time used reaches the budget.
        self._state.time_budget = 0

    def end_search_by(self, deadline: float) -> None:
        """Bring the search's end forward to ``deadline`` (never later than it was)."""
        # NB: FLAML re-reads the budget before every trial and sizes each trial's own time
        # limit from what is left of it.
        budget = deadline - self._start_time_flag
        if 0 <= budget < self._state.time_budget:
            self._state.time_budget = budget
        elif budget < 0:
            self.stop_search()


# A config fitted on the first validation split: the member, its scores there, the seconds taken.
FirstSplit = tuple[Member, np.ndarray, float]


@dataclass
class SearchOutcome:
    automl: AutoML
    trial_log: Path  # FLAML's own JSON-lines log of the trials
    trials: list[dict[str, Any]]  # one row per finished trial, as reported
    per_estimator: list[dict[str, Any]]  # each estimator's best trial
    seconds: float
    # Configs the search already fitted on the first validation split (``config_key``).
    first_splits: dict[str, FirstSplit] = field(default_factory=dict)

    @property
    def trials_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.trials)


def run_search(
    data: Prepared,
    spec: AutoMLSpec,
    metric: str,
    *,
    recorder: RunRecorder,
    artifact_dir: Path,
    clock: Clock,
    costs: CostModel,
    on_trial: Callable[[TrialEvent], None] | None,
    should_stop: Callable[[], bool] | None,
    log: Callable[[str], None],
) -> SearchOutcome:
    """Search until the time the later phases leave; raise ``AutoMLCanceled`` if stopped.

    The search ends at the budget counted from the job's start, or earlier when scoring,
    refitting and saving the best model so far (plus a share for ensemble candidates) would
    not otherwise finish within the promise.
    """
    trial_rows: list[dict[str, Any]] = []
    best: dict[str, Any] = {"value": None, "row": None}
    reserve_s = ENSEMBLE_SHARE * clock.budget_s if spec.ensemble else 0.0
    measured: dict[int, float] = {}  # trial -> seconds of one split's fit and score at full size
    first_splits: dict[str, FirstSplit] = {}  # what those timings fitted

    def search_end() -> float:
        row = best["row"]
        finish = costs.finish_s(row, measured.get(row["trial"])) if row else costs.tail_s()
        return min(clock.budget_end, clock.end - reserve_s - finish)

    def measure_if_guessed(automl: AutoML) -> None:
        """Time the best config at full size when a guess from its sampled trial alone would
        end the search: the guess scales the whole trial (and one-time costs of a first
        trial) with the rows, and was 10x the real cost on a 285,000-row table."""
        row = best["row"]
        if row is None or row["trial"] in measured or not costs.extrapolated(row):
            return
        if time.time() < search_end():
            return
        t = time.time()
        try:
            member, scores = fit_first_split(
                automl,
                (row["estimator"], row["config"]),
                data,
                spec.task,
                # its share of the time left, as each validation fold gets
                t + max(0.0, clock.end - costs.tail_s() - t) / len(data.folds),
            )
        except Exception as exc:  # noqa: BLE001 - the guess stands; the run must go on
            measured[row["trial"]] = costs.validation_s(row) / SAFETY / costs.folds
            log(f"search: timing {row['estimator']} at full size failed ({exc}); kept the guess")
            return
        measured[row["trial"]] = time.time() - t
        first_splits[config_key((row["estimator"], row["config"]))] = (
            member,
            scores,
            measured[row["trial"]],
        )
        log(
            f"search: {row['estimator']} timed at full size, {measured[row['trial']]:.1f}s a "
            f"split (its {row['sample_size']}-row trial took {row['duration_s']:.1f}s)"
        )

    t_search = time.time()

    def trial_done(automl: AutoML, state: Any, estimator: str) -> None:
        logged = dict(state.metric_for_logging or {})
        values = {k: float(v) for k, v in logged.items() if ev.is_metric(k)}
        value = values.get(metric)
        if value is None and state.val_loss is not None:
            value = ev.value_from_loss(metric, float(state.val_loss))
        better = best["value"] is None or (
            value is not None and ev.loss(metric, value) < ev.loss(metric, best["value"])
        )
        if better and value is not None:
            best["value"] = value
        event = TrialEvent(
            trial=len(trial_rows),
            estimator=estimator,
            config=plain_config(state.config or {}),
            primary_metric=value,
            best_so_far=best["value"],
            wall_time_s=round(time.time() - t_search, 3),
            duration_s=round(float(state.trial_time or 0.0), 3),
            sample_size=int(state.sample_size or 0),
            metrics=values,
        )
        trial_rows.append(
            {
                "trial": event.trial,
                "estimator": estimator,
                "config": event.config,
                metric: value,
                **{k: v for k, v in values.items() if k != metric},
                "best_so_far": event.best_so_far,
                "sample_size": event.sample_size,
                "duration_s": event.duration_s,
                "wall_time_s": event.wall_time_s,
                "status": "Completed",
            }
        )
        if better and value is not None:
            best["row"] = trial_rows[-1]
        measure_if_guessed(automl)
        automl.end_search_by(search_end())
        recorder.submit(event)
        if on_trial is not None:
            try:
                on_trial(event)
            except Exception as exc:  # noqa: BLE001 - a UI callback must not end the search
                log(f"on_trial callback failed: {exc}")
        if should_stop is not None and should_stop():
            log("stop requested: ending the search after this trial")
            automl.stop_search()

    automl = _TrackedAutoML(trial_done)
    for name in data.estimators:
        if name in BOOSTERS:  # the refits later get the same class via ``learner_class``
            automl.add_learner(name, pinned_booster(name, data.booster_jobs))
    allowed_s = search_end() - time.time()
    search_s = max(allowed_s, MIN_SEARCH_S * slowdown())
    # Named after the parent run once it exists (the run is created while the search runs).
    trial_log = artifact_dir / f"flaml_trials_{uuid.uuid4().hex}.jsonl"
    fit_args = _fit_args(data, spec, metric, _flaml_metric(data, metric), trial_log)
    fit_args["time_budget"] = search_s
    log(
        f"search: {len(data.y)} rows x {data.X.shape[1]} features, {spec.validation}, "
        f"metric {metric}, {max(0.0, allowed_s):.1f}s of the {spec.time_budget_s:g}s budget "
        f"left {clock.elapsed():.1f}s after the start, estimators {data.estimators}"
    )
    flaml_logger = logging.getLogger("flaml.automl.logger")
    previous_level = flaml_logger.level
    flaml_logger.setLevel(logging.ERROR)
    t_search = time.time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            automl.fit(**fit_args)
    finally:
        flaml_logger.setLevel(previous_level)
    seconds = time.time() - t_search
    stopped = should_stop is not None and should_stop()
    if stopped or not automl.best_config_per_estimator or automl.best_estimator is None:
        recorder.close()
        _client, parent_id = recorder.parent()
        recorder.end("KILLED" if stopped else "FAILED", "Canceled" if stopped else "NoTrial")
        if stopped:
            raise AutoMLCanceled(
                f"canceled after {len(trial_rows)} trials", parent_id, len(trial_rows)
            )
        raise RuntimeError("the search ended before any trial finished")
    log(f"search done: {len(trial_rows)} trials in {seconds:.1f}s, best {automl.best_estimator}")
    limit = search_end()
    capped = bool(spec.max_trials) and len(trial_rows) >= int(spec.max_trials or 0)
    late_start = allowed_s <= MIN_SEARCH_S
    now = time.time()
    at_limit = now >= min(limit, t_search + search_s) - 1.0
    # A last trial may run past the limit: the search was only cut short if it ended early.
    early = limit < clock.budget_end - 1.0 and now < clock.budget_end - 1.0
    if not capped and at_limit and (late_start or early):
        if late_start:
            reason = (
                f"cut to its minimum ({len(trial_rows)} trials): it could only start "
                f"{t_search - clock.started_at:.0f} s into the {clock.budget_s:g} s budget"
            )
        else:
            reason = (
                f"ended {clock.elapsed():.0f} s after the start instead of at "
                f"{clock.budget_s:g} s, to leave time to score, refit and save the best model"
            )
        clock.trim("Search", reason, log)
    return SearchOutcome(
        automl=automl,
        trial_log=trial_log,
        trials=trial_rows,
        per_estimator=_per_estimator_rows(trial_rows, data.estimators, metric, spec.task),
        seconds=seconds,
        first_splits=first_splits,
    )


def config_key(config: tuple[str, dict[str, Any]]) -> str:
    """A config as a dictionary key."""
    name, cfg = config
    return json.dumps([name, plain_config(cfg)], sort_keys=True, default=str)


def fit_first_split(
    automl: AutoML,
    config: tuple[str, dict[str, Any]],
    data: Prepared,
    task: str,
    deadline: float | None = None,
) -> tuple[Member, np.ndarray]:
    """A config fitted on the first validation split's training rows (a booster stops adding
    trees at ``deadline``), and its scores on that split's validation rows."""
    train, val = data.folds[0]
    name, cfg = config
    member = fit_member(
        learner_class(automl, name),
        name,
        cfg,
        data.X[train],
        data.y[train],
        task,
        data.cat_idx,
        data.n_jobs,
        deadline,
    )
    classes = list(range(len(data.classes)))
    model = TabularModel(task=task, encoder=Encoder([]), members=[member], classes=classes)
    return member, model.encoded_scores(data.X[val])


def _flaml_metric(data: Prepared, metric: str) -> Callable[..., tuple[float, dict[str, float]]]:
    """FLAML's custom-metric hook: the loss to minimise plus the full metric set to log."""
    n_classes = len(data.classes)

    def flaml_metric(X_v, y_v, estimator, labels, *args: Any, **kwargs: Any):  # noqa: ANN001
        t = time.time()
        if data.is_clf:
            proba = np.asarray(estimator.predict_proba(X_v), dtype=np.float64)
            if proba.shape[1] != n_classes:  # a sample lacked some class
                full = np.zeros((len(y_v), n_classes))
                full[:, list(labels)] = proba
                proba = full
            values = ev.classification_metrics(np.asarray(y_v), proba)
        else:
            values = ev.regression_metrics(np.asarray(y_v), np.asarray(estimator.predict(X_v)))
        values["pred_time"] = (time.time() - t) / max(1, len(y_v))
        return ev.loss(metric, values[metric]), values

    return flaml_metric


def _fit_args(
    data: Prepared,
    spec: AutoMLSpec,
    metric: str,
    flaml_metric: Callable[..., Any],
    trial_log: Path,
) -> dict[str, Any]:
    estimators = data.estimators
    fit_args: dict[str, Any] = {
        "task": spec.task,
        "metric": flaml_metric,
        "time_budget": spec.time_budget_s,
        "estimator_list": estimators,
        "seed": spec.seed,
        "n_jobs": data.n_jobs,
        "verbose": 0,
        "log_type": "all",
        "log_file_name": str(trial_log),
        "mlflow_logging": False,
        "retrain_full": False,
        "model_history": False,
        "auto_augment": False,
    }
    if spec.max_trials:
        fit_args["max_iter"] = int(spec.max_trials)
    starting = {k: v for k, v in STARTING_POINTS.items() if k in estimators}
    if starting and len(data.y) >= STARTING_POINTS_MIN_ROWS:
        fit_args["starting_points"] = starting
    if data.cat_idx and "lgbm" in estimators:
        fit_args["fit_kwargs_by_estimator"] = {"lgbm": {"categorical_feature": data.cat_idx}}
    X, y = data.X, data.y
    if spec.validation == "holdout":
        tr, va = data.folds[0]
        fit_args.update(X_train=X[tr], y_train=y[tr], X_val=X[va], y_val=y[va])
    else:
        fit_args.update(X_train=X, y_train=y, eval_method="cv", split_type=data.splitter)
    return fit_args


def _per_estimator_rows(
    trial_rows: list[dict[str, Any]], estimators: list[str], metric: str, task: str
) -> list[dict[str, Any]]:
    """Each estimator's best trial, as measured in the search."""
    trials_df = pd.DataFrame(trial_rows)
    rows_out = []
    for name in estimators:
        rows = trials_df[(trials_df["estimator"] == name) & trials_df[metric].notna()]
        if rows.empty:
            continue
        pick = rows.loc[
            rows[metric].idxmax() if ev.greater_is_better(metric) else rows[metric].idxmin()
        ]
        rows_out.append(
            {
                "estimator": name,
                "trial": int(pick["trial"]),
                "trials": len(rows),
                **{m: pick.get(m) for m in ev.metric_names(task)},
                "config": pick["config"],
            }
        )
    return rows_out
