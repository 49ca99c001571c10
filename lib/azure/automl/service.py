"""`AzureAutoML`: the AutoMLService over `ml_client.jobs` and the workspace's MLflow tracking."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd

from lib.automl_rules import validate_request
from lib.azure.automl.details import best_model_details
from lib.azure.automl.jobs import is_automl, job_request, to_automl_job
from lib.azure.automl.submit import azure_problems, build_job, ensure_mltable, mltable_input
from lib.azure.automl.tracking import (
    MlflowClientSource,
    get_run,
    json_artifact,
    parent_and_trials,
)
from lib.azure.automl.trials import (
    best_run,
    describe_best,
    leaderboard_frame,
    trial_frame,
    trial_progress,
)
from lib.azure.client import MLClientSource, azure_call
from lib.azure.compute import list_jobs
from lib.azure.datasets import AzureDatasets
from lib.errors import WorkspaceError
from lib.tabular import ParsedTable
from lib.workspace import AutoMLRequest, DatasetVersion, Job


def _no_tracking() -> Any:
    raise WorkspaceError("This workspace has no MLflow tracking client to read AutoML trials.")


class AzureAutoML:
    """AutoMLService over `ml_client.jobs` (AutoML jobs) and the workspace's MLflow tracking."""

    def __init__(
        self,
        ml_client: MLClientSource,
        datasets: AzureDatasets,
        mlflow_client: MlflowClientSource | None = None,
    ) -> None:
        """`mlflow_client` builds the tracking client (see `tracking.default_tracking`)."""
        self.ml_client = ml_client
        self.datasets = datasets
        self._mlflow_source = mlflow_client or _no_tracking
        self._mlflow: Any = None
        self._lock = threading.Lock()

    def mlflow(self) -> Any:
        """The MLflow client, built on first use."""
        if self._mlflow is None:
            with self._lock:
                if self._mlflow is None:
                    self._mlflow = self._mlflow_source()
        return self._mlflow

    # --- submission -----------------------------------------------------------------------

    def _read(self, request: AutoMLRequest) -> tuple[DatasetVersion, ParsedTable]:
        """The dataset version and its table as registered (with the operator's tokens: the
        MLTable Azure trains on is written from it)."""
        return self.datasets.parsed(request.dataset, request.dataset_version)

    def validate(self, request: AutoMLRequest) -> list[str]:
        """Problems with the data (the rules both backends share) and with the Azure settings."""
        try:
            _, parsed = self._read(request)
        except WorkspaceError as exc:
            return [str(exc)]
        return validate_request(request, parsed.frame) + azure_problems(self.ml_client, request)[0]

    def submit(self, request: AutoMLRequest) -> Job:
        """Validate, register (or reuse) the MLTable, and submit the AutoML job."""
        dv, parsed = self._read(request)
        problems, cluster = azure_problems(self.ml_client, request)
        problems = validate_request(request, parsed.frame) + problems
        if problems or cluster is None:
            raise WorkspaceError(" ".join(problems))
        table = ensure_mltable(self.ml_client, dv, parsed.table)
        job = build_job(
            request,
            mltable_input(table),
            max_concurrent_trials=cluster.max_instances,
            columns=[str(c) for c in parsed.frame.columns],
        )
        with azure_call(f"submit the AutoML job on {request.compute}"):
            created = self.ml_client().jobs.create_or_update(job)
        return to_automl_job(created)

    # --- jobs -----------------------------------------------------------------------------

    def _entity(self, job_id: str) -> Any:
        with azure_call(f"get job {job_id}", not_found=f"Job {job_id} does not exist."):
            entity = self.ml_client().jobs.get(job_id)
        if not is_automl(entity):
            raise WorkspaceError(f"Job {job_id} is not an AutoML job.")
        return entity

    def jobs(self) -> list[Job]:
        """The workspace's AutoML jobs, newest first."""
        found = [to_automl_job(e) for e in list_jobs(self.ml_client) if is_automl(e)]
        return sorted(found, key=lambda j: j.created, reverse=True)

    def get(self, job_id: str) -> Job:
        """One job, with trial progress from MLflow when it can be read."""
        entity = self._entity(job_id)
        job = to_automl_job(entity)
        if job.state == "Queued":
            return job  # no parent run in MLflow before the job starts
        try:
            metric = job.spec["request"].get("primary_metric", "")
            progress = trial_progress(self._frame(job.id, metric))
        except WorkspaceError as exc:
            progress = {"note": str(exc)}
        return to_automl_job(entity, progress)

    def get_request(self, job_id: str) -> dict[str, Any]:
        """The request fields of a job (stored by opsdeck, else read from the job)."""
        return job_request(self._entity(job_id))

    def cancel(self, job_id: str) -> Job:
        """Ask Azure to cancel; the job shows Running until the service has stopped it."""
        job = self.get(job_id)
        if job.is_terminal:
            return job
        with azure_call(f"cancel job {job_id}", not_found=f"Job {job_id} does not exist."):
            # Not waited on: Azure acknowledges at once, the cancellation itself takes minutes.
            self.ml_client().jobs.begin_cancel(job_id)
        return to_automl_job(self._entity(job_id))

    def log_tail(self, job_id: str, lines: int = 60) -> str:
        """Status, Studio link and the latest trials (Azure keeps the driver log in Studio)."""
        job = self.get(job_id)
        out = [
            f"{job.id}: {job.state} (Azure status {job.spec.get('azure_status', '?')})",
            f"compute: {job.compute}",
        ]
        if url := job.progress.get("studio_url"):
            out.append(f"Studio: {url}")
        if job.error:
            out.append(job.error)
        if note := job.progress.get("note"):
            out.append(str(note))
        else:
            metric = job.spec["request"].get("primary_metric", "")
            frame = self._frame(job_id, metric)
            for row in frame.tail(max(0, lines - len(out))).itertuples():
                score = "" if pd.isna(row.primary_metric) else f" {metric}={row.primary_metric:.4f}"
                out.append(f"trial {row.trial} {row.estimator}: {row.status}{score}")
        return "\n".join(out[-lines:])

    # --- trials ---------------------------------------------------------------------------

    def _metric(self, job_id: str) -> str:
        """The job's primary metric, by our name."""
        return self.get_request(job_id).get("primary_metric") or ""

    def _frame(self, job_id: str, metric: str) -> pd.DataFrame:
        parent, runs = parent_and_trials(self.mlflow(), job_id)
        return trial_frame(parent, runs, metric)

    def trials(self, job_id: str) -> pd.DataFrame:
        """One row per child run (trial order), with every metric Azure logged on it."""
        metric = self._metric(job_id)
        return self._frame(job_id, metric)

    def leaderboard(self, job_id: str, per_estimator: bool = False) -> pd.DataFrame:
        """Trials sorted best first; with `per_estimator`, each algorithm's best trial."""
        metric = self._metric(job_id)
        return leaderboard_frame(self._frame(job_id, metric), metric, per_estimator)

    def best_trial(self, job_id: str) -> dict[str, Any]:
        """The best child run: run_id, estimator and metrics (Azure's pick when it names one)."""
        metric = self._metric(job_id)
        client = self.mlflow()
        parent, runs = parent_and_trials(client, job_id)
        best = best_run(parent, runs, metric, lambda run_id: get_run(client, run_id))
        if best is None:
            raise WorkspaceError(f"Job {job_id} has no scored trial yet.")
        return describe_best(best)

    def details(self, job_id: str) -> dict[str, Any]:
        """The best trial's metrics, plus ROC/PR and confusion matrix when Azure logged them."""
        client = self.mlflow()
        return best_model_details(
            self.best_trial(job_id),
            lambda run_id, name: json_artifact(client, run_id, name),
        )

    def guardrails(self, job_id: str) -> list[dict[str, Any]]:
        """Always empty: Azure shows data guardrails in Studio but records them nowhere readable.

        The featurization summary lives in a job artifact whose layout is undocumented and has
        changed between AutoML releases, so nothing is shown rather than something misread.
        """
        return []
