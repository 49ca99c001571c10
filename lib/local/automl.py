"""Local AutoML service: validates and queues jobs, reads trials, leaderboards and details."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from lib.automl_rules import TRIAL_COLUMNS, validate_request
from lib.local.datasets import LocalDatasets
from lib.local.guardrails import no_features_left
from lib.local.jobs import JobManager
from lib.metrics import LOWER_IS_BETTER
from lib.workspace import AutoMLRequest, Job, WorkspaceError


class LocalAutoML:
    def __init__(self, jobs: JobManager, datasets: LocalDatasets) -> None:
        self.jobs_manager = jobs
        self.datasets = datasets

    def validate(self, request: AutoMLRequest) -> list[str]:
        try:
            frame = self.datasets.load(request.dataset, request.dataset_version)
        except WorkspaceError as exc:
            return [str(exc)]
        problems = validate_request(request, frame)
        if not problems and request.target in frame.columns:
            nothing = no_features_left(frame, request.target, request.features)
            if nothing:
                problems.append(nothing)
        return problems

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
