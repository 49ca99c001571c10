"""A fake of the workspace's MLflow tracking client, answering with real mlflow entities."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST


def mlflow_run(
    run_id: str,
    *,
    parent: str | None = None,
    experiment_id: str = "7",
    status: str = "FINISHED",
    start: int = 1_700_000_000_000,
    end: int | None = None,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> Run:
    """A run as the workspace's MLflow tracking returns it (real mlflow entities)."""
    all_tags = dict(tags or {})
    if parent is not None:
        all_tags["mlflow.parentRunId"] = parent
    info = RunInfo(
        run_id=run_id,
        experiment_id=experiment_id,
        user_id="operator",
        status=status,
        start_time=start,
        end_time=end,
        lifecycle_stage="active",
        run_name=run_id,
    )
    data = RunData(
        metrics=[Metric(k, float(v), start, 0) for k, v in (metrics or {}).items()],
        params=[Param(k, str(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in all_tags.items()],
    )
    return Run(run_info=info, run_data=data)


class FakeMlflowClient:
    """Stands in for the workspace's `MlflowClient`: get_run, search_runs, download_artifacts."""

    PARENT_FILTER = re.compile(r"^tags\.mlflow\.parentRunId = '([^']+)'$")

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.artifacts: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[Any, ...]] = []

    def add(self, run: Run) -> Run:
        self.runs[run.info.run_id] = run
        return run

    def get_run(self, run_id: str) -> Run:
        self.calls.append(("get_run", run_id))
        if run_id not in self.runs:
            raise MlflowException(f"Run '{run_id}' not found", RESOURCE_DOES_NOT_EXIST)
        return self.runs[run_id]

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        max_results: int = 1000,
        **_: Any,
    ) -> list[Run]:
        self.calls.append(("search_runs", tuple(experiment_ids), filter_string))
        match = self.PARENT_FILTER.match(filter_string)
        if match is None:
            raise MlflowException(f"Unsupported filter {filter_string!r}", INVALID_PARAMETER_VALUE)
        return [
            r
            for r in self.runs.values()
            if r.info.experiment_id in experiment_ids
            and r.data.tags.get("mlflow.parentRunId") == match.group(1)
        ][:max_results]

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        self.calls.append(("download_artifacts", run_id, path))
        if (run_id, path) not in self.artifacts:
            raise MlflowException(f"No artifact {path} in run {run_id}", RESOURCE_DOES_NOT_EXIST)
        target = Path(dst_path or ".", path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.artifacts[(run_id, path)]))
        return str(target)
