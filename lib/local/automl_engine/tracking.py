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
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking.context import registry as context_registry

from lib.local.automl_engine.data import Prepared
from lib.local.automl_engine.spec import AutoMLSpec, TrialEvent


def experiment_id(client: MlflowClient, name: str, artifact_dir: Path) -> str:
    """The experiment's id, created with its artifacts under ``artifact_dir`` if new."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_dir.resolve().as_uri())
    except MlflowException:
        # Two jobs starting together both find no experiment; the one that loses the insert
        # uses the winner's.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def run_inputs(spec: AutoMLSpec, metric: str, data: Prepared) -> dict[str, Any]:
    """What the parent run was asked to do (its params)."""
    return {
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
        "dropped_columns": ",".join(data.dropped)[:5000] or "-",
        "features": ",".join(map(str, data.X_df.columns))[:5000],
        "rows": len(data.y),
    }


def log_run_summary(
    metrics: dict[str, float],
    counters: dict[str, float],
    tags: dict[str, str],
    per_estimator: list[dict[str, Any]],
    guardrails: list[dict[str, Any]],
) -> None:
    """The served model's validation metrics, timings, tags, leaderboard and the final
    guardrails (with the time budget's) on the parent run."""
    mlflow.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)})
    mlflow.log_metrics(counters)
    mlflow.set_tags(tags)
    mlflow.log_dict({"guardrails": guardrails}, "guardrails.json")
    per_est = pd.DataFrame(per_estimator)
    if not per_est.empty:
        mlflow.log_table(per_est.astype({"config": str}), "leaderboard.json")


class RunRecorder:
    """Creates the parent run, then writes trial child runs, all from a background thread.

    NB: opening MLflow's SQL store imports SQLAlchemy and Alembic (2 s on an idle machine,
    7 s on a busy one); on this thread it overlaps the search instead of delaying it, and
    MLflow I/O never slows a trial.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_name: str,
        artifact_dir: Path,
        params: dict[str, Any],
        guardrails: list[dict[str, Any]],
    ) -> None:
        self.errors: list[str] = []
        self.parent_run_id = ""
        self._open = (tracking_uri, experiment_name, artifact_dir, params, guardrails)
        self._client: MlflowClient | None = None
        self._experiment_id = ""
        self._ended = False
        self._failure: BaseException | None = None
        self._ready = threading.Event()
        self._queue: queue.Queue[TrialEvent | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="automl-mlflow", daemon=True)
        self._thread.start()

    def submit(self, event: TrialEvent) -> None:
        self._queue.put(event)

    def parent(self) -> tuple[MlflowClient, str]:
        """The client and the parent run's id, once created (re-raises its failure)."""
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        assert self._client is not None
        return self._client, self.parent_run_id

    def close(self) -> None:
        """Wait until every submitted trial is written."""
        self._queue.put(None)
        self._thread.join()

    def end(self, status: str, tag: str) -> None:
        """End the parent run without a model (``KILLED`` or ``FAILED``); once only."""
        self._ready.wait()
        if self._failure is not None or self._client is None or self._ended:
            return
        self._ended = True
        self._client.set_tag(self.parent_run_id, "automl.status", tag)
        self._client.set_terminated(self.parent_run_id, status)

    def _work(self) -> None:
        try:
            self._create_parent()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the run
            self._failure = exc
        finally:
            self._ready.set()
        while (event := self._queue.get()) is not None:
            if self._failure is not None:
                continue
            try:
                self._log(event)
            except Exception as exc:  # noqa: BLE001 - tracking must never kill the search
                self.errors.append(str(exc))

    def _create_parent(self) -> None:
        tracking_uri, experiment_name, artifact_dir, params, guardrails = self._open
        client = MlflowClient(tracking_uri)
        self._experiment_id = experiment_id(client, experiment_name, artifact_dir)
        # The user, source and git tags ``mlflow.start_run`` would have added.
        tags = context_registry.resolve_tags({"automl.engine": "flaml"})
        run = client.create_run(self._experiment_id, run_name="automl", tags=tags)
        run_id = run.info.run_id
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        client.log_dict(run_id, {"guardrails": guardrails}, "guardrails.json")
        self._client, self.parent_run_id = client, run_id

    def _log(self, ev: TrialEvent) -> None:
        assert self._client is not None
        client = self._client
        now = int(time.time() * 1000)
        run = client.create_run(
            self._experiment_id,
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
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
            params=params,
            tags=[RunTag("automl.config", json.dumps(ev.config, default=str)[:5000])],
        )
        client.set_terminated(run.info.run_id, "FINISHED", end_time=now)
