"""Local AutoML service: validates and queues jobs, reads trials, leaderboards and details."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from lib.local.datasets import LocalDatasets
from lib.local.jobs import JobManager
from lib.workspace import (
    CLASSIFICATION_METRICS,
    LOWER_IS_BETTER,
    REGRESSION_METRICS,
    AutoMLRequest,
    Job,
    WorkspaceError,
)

MIN_ROWS = 50
MIN_BUDGET_S = 10
TRIAL_COLUMNS = [
    "trial",
    "estimator",
    "primary_metric",
    "best_so_far",
    "duration_s",
    "wall_time_s",
    "status",
    "config",
    "run_id",
]


def validate_request(request: AutoMLRequest, frame: pd.DataFrame) -> list[str]:
    """Everything wrong with a request for this data, in the user's terms."""
    problems: list[str] = []
    if request.task not in ("classification", "regression"):
        problems.append(f"Task must be classification or regression, not {request.task!r}.")
        return problems
    allowed = CLASSIFICATION_METRICS if request.task == "classification" else REGRESSION_METRICS
    if request.primary_metric not in allowed:
        problems.append(
            f"{request.primary_metric} is not a {request.task} metric (choose from {', '.join(allowed)})."
        )
    if request.target not in frame.columns:
        problems.append(f"Target column {request.target!r} is not in the dataset.")
        return problems
    target = frame[request.target].dropna()
    if len(target) < MIN_ROWS:
        problems.append(
            f"Only {len(target)} rows have a target value; at least {MIN_ROWS} are needed."
        )
    if frame.shape[1] < 2:
        problems.append("The dataset needs at least one feature column besides the target.")
    if request.task == "classification":
        counts = target.value_counts()
        if len(counts) < 2:
            problems.append(f"The target {request.target!r} has only one class; two are needed.")
        elif len(counts) > 100:
            problems.append(
                f"The target has {len(counts)} distinct values: is this a regression target?"
            )
        else:
            need = request.n_folds if request.validation == "cv" else 2
            rare = counts[counts < need]
            if not rare.empty:
                problems.append(
                    f"Class(es) {', '.join(map(str, rare.index))} have fewer than {need} rows."
                )
    elif not pd.api.types.is_numeric_dtype(target):
        problems.append(f"Regression needs a numeric target; {request.target!r} is {target.dtype}.")
    if request.time_budget_s < MIN_BUDGET_S:
        problems.append(f"The time budget must be at least {MIN_BUDGET_S} s.")
    if request.max_trials is not None and request.max_trials < 1:
        problems.append("Max trials must be at least 1.")
    if request.validation == "holdout" and not 0.05 <= request.holdout_fraction <= 0.5:
        problems.append("The holdout fraction must be between 0.05 and 0.5.")
    if request.validation == "cv" and not 2 <= request.n_folds <= 20:
        problems.append("Cross-validation needs between 2 and 20 folds.")
    return problems


class LocalAutoML:
    def __init__(self, jobs: JobManager, datasets: LocalDatasets) -> None:
        self.jobs_manager = jobs
        self.datasets = datasets

    def validate(self, request: AutoMLRequest) -> list[str]:
        try:
            frame = self.datasets.load(request.dataset, request.dataset_version)
        except WorkspaceError as exc:
            return [str(exc)]
        return validate_request(request, frame)

    def submit(self, request: AutoMLRequest) -> Job:
        problems = self.validate(request)
        if problems:
            raise WorkspaceError(" ".join(problems))
        name = f"{request.experiment_name}: {request.dataset} v{request.dataset_version} → {request.target}"
        return self.jobs_manager.submit("automl", name, {"request": asdict(request)})

    def jobs(self) -> list[Job]:
        self.jobs_manager.tick()
        return self.jobs_manager.list(kind="automl")

    def get(self, job_id: str) -> Job:
        self.jobs_manager.tick()
        return self.jobs_manager.get(job_id)

    def cancel(self, job_id: str) -> Job:
        return self.jobs_manager.cancel(job_id)

    def result(self, job_id: str) -> dict[str, Any]:
        return self.jobs_manager.result(job_id)

    def trials(self, job_id: str) -> pd.DataFrame:
        rows = (
            self.jobs_manager.store.connect()
            .execute("SELECT * FROM trials WHERE job_id=? ORDER BY trial", (job_id,))
            .fetchall()
        )
        if not rows:
            return pd.DataFrame(columns=TRIAL_COLUMNS)
        frame = pd.DataFrame([dict(r) for r in rows])
        metrics = pd.json_normalize([json.loads(m) for m in frame.pop("metrics")])
        frame = pd.concat([frame.drop(columns=["job_id"]), metrics], axis=1)
        return frame

    def leaderboard(self, job_id: str, per_estimator: bool = False) -> pd.DataFrame:
        """Trials (or each estimator's best, fully evaluated) sorted best first."""
        job = self.jobs_manager.get(job_id)
        metric = job.spec["request"]["primary_metric"]
        ascending = metric in LOWER_IS_BETTER
        if per_estimator:
            rows = self.result(job_id).get("per_estimator", [])
            frame = pd.DataFrame(rows)
            if frame.empty or metric not in frame.columns:
                return frame
            return frame.sort_values(metric, ascending=ascending, na_position="last").reset_index(
                drop=True
            )
        frame = self.trials(job_id)
        if frame.empty:
            return frame
        if metric in frame.columns:
            frame[metric] = frame[metric].fillna(frame.pop("primary_metric"))
        else:
            frame = frame.rename(columns={"primary_metric": metric})
        return frame.sort_values(metric, ascending=ascending, na_position="last").reset_index(
            drop=True
        )

    def details(self, job_id: str) -> dict[str, Any]:
        path = self.jobs_manager.job_dir(job_id) / "details.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def guardrails(self, job_id: str) -> list[dict[str, Any]]:
        path: Path = self.jobs_manager.job_dir(job_id) / "guardrails.json"
        return json.loads(path.read_text()) if path.exists() else []

    def log_tail(self, job_id: str, lines: int = 60) -> str:
        return self.jobs_manager.log_tail(job_id, lines)
