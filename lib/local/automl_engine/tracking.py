"""MLflow records of a run: the experiment, the parent run's params and summary, trial child runs."""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from lib.local.automl_engine.data import Prepared
from lib.local.automl_engine.spec import AutoMLSpec, TrialEvent


def experiment_id(client: MlflowClient, name: str, artifact_dir: Path) -> str:
    """The experiment's id, created with its artifacts under ``artifact_dir`` if new."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=artifact_dir.resolve().as_uri())


def log_run_inputs(spec: AutoMLSpec, metric: str, data: Prepared) -> None:
    """What the active parent run was asked to do, and the data guardrails."""
    mlflow.log_params(
        {
            "task": spec.task,
            "target": spec.target,
            "primary_metric": metric,
            "time_budget_s": spec.time_budget_s,
            "max_trials": spec.max_trials,
            "estimators": ",".join(data.estimators),
            "validation": spec.validation,
            "holdout_fraction": spec.holdout_fraction,
            "n_folds": spec.n_folds,
            "ensemble": spec.ensemble,
            "seed": spec.seed,
            "dropped_columns": ",".join(data.dropped) or "-",
            "rows": len(data.y),
        }
    )
    mlflow.set_tag("automl.engine", "flaml")
    mlflow.log_dict({"guardrails": [r.to_dict() for r in data.rails]}, "guardrails.json")


def log_run_summary(
    metrics: dict[str, float],
    counters: dict[str, float],
    tags: dict[str, str],
    per_estimator: list[dict[str, Any]],
) -> None:
    """The served model's validation metrics, timings, tags and leaderboard on the parent run."""
    mlflow.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)})
    mlflow.log_metrics(counters)
    mlflow.set_tags(tags)
    per_est = pd.DataFrame(per_estimator)
    if not per_est.empty:
        mlflow.log_table(per_est.astype({"config": str}), "leaderboard.json")


class TrialLogger:
    """Writes trial child runs from a background thread so MLflow I/O stays off the search."""

    def __init__(self, client: MlflowClient, experiment_id: str, parent_run_id: str):
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.errors: list[str] = []
        self._queue: queue.Queue[TrialEvent | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="automl-mlflow", daemon=True)
        self._thread.start()

    def submit(self, event: TrialEvent) -> None:
        self._queue.put(event)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _work(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._log(event)
            except Exception as exc:  # noqa: BLE001 - tracking must never kill the search
                self.errors.append(str(exc))

    def _log(self, ev: TrialEvent) -> None:
        now = int(time.time() * 1000)
        run = self.client.create_run(
            self.experiment_id,
            start_time=now - int(ev.duration_s * 1000),
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                "mlflow.runName": f"trial_{ev.trial}_{ev.estimator}",
                "automl.trial": str(ev.trial),
                "automl.estimator": ev.estimator,
            },
        )
        params = [Param("estimator", ev.estimator), Param("sample_size", str(ev.sample_size))]
        params += [Param(k, str(v)[:500]) for k, v in ev.config.items()]
        values = {
            **{k: v for k, v in ev.metrics.items() if v is not None and not math.isnan(v)},
            "duration_s": ev.duration_s,
            "wall_time_s": ev.wall_time_s,
        }
        if ev.best_so_far is not None:
            values["best_so_far"] = ev.best_so_far
        self.client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
            params=params,
            tags=[RunTag("automl.config", json.dumps(ev.config, default=str)[:5000])],
        )
        self.client.set_terminated(run.info.run_id, "FINISHED", end_time=now)
