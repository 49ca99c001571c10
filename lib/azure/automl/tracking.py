"""The workspace's MLflow tracking, where AutoML records its trials.

The AutoML job is the parent run and every trial a child run (`tags.mlflow.parentRunId`). The
MLflow client is injectable; the default one needs the `azureml-mlflow` plugin.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lib.azure.client import MLClientSource, azure_call
from lib.errors import WorkspaceError

MlflowClientSource = Callable[[], Any]

MAX_CHILD_RUNS = 1000


@contextmanager
def mlflow_call(action: str) -> Iterator[None]:
    """Run MLflow tracking calls, re-raising their errors as WorkspaceError."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except WorkspaceError:
        raise
    except MlflowException as exc:
        raise WorkspaceError(
            f"Could not {action} from the workspace's MLflow tracking: {exc.message}"
        ) from exc


def default_mlflow_client(ml_client: MLClientSource) -> Any:
    """An MlflowClient on the workspace's tracking URI (needs the azureml-mlflow plugin)."""
    try:
        import azureml.mlflow  # noqa: F401 - registers the azureml:// tracking scheme
    except ImportError:
        raise WorkspaceError(
            "Reading AutoML trials needs the azureml-mlflow package (pip install azureml-mlflow), "
            "which lets MLflow talk to the workspace's tracking server."
        ) from None
    from mlflow.tracking import MlflowClient

    ml = ml_client()
    with azure_call("read the workspace's MLflow tracking URI"):
        uri = ml.workspaces.get(ml.workspace_name).mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def iteration(run: Any, parent: str) -> int | None:
    """The trial number of a child run; None for children that are not trials."""
    raw = run.data.tags.get("iteration", run.data.params.get("iteration"))
    if raw is not None and str(raw).isdigit():
        return int(raw)
    # Child runs are named <parent>_<iteration>; <parent>_setup and the like are not trials.
    suffix = run.info.run_id[len(parent) + 1 :] if run.info.run_id.startswith(parent) else ""
    return int(suffix) if suffix.isdigit() else None


def child_runs(client: Any, parent_id: str, experiment_id: str) -> list[Any]:
    """Every child run of `parent_id`, through a HyperDrive sweep child when there is one."""
    with mlflow_call(f"list the trials of {parent_id}"):
        runs = list(
            client.search_runs(
                experiment_ids=[experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                max_results=MAX_CHILD_RUNS,
            )
        )
    nested = [r for r in runs if r.info.run_id == f"{parent_id}_HD"]
    for sweep in nested:
        # Some AutoML versions run the trials under a HyperDrive child of the parent.
        runs.extend(child_runs(client, sweep.info.run_id, experiment_id))
    return runs


def get_run(client: Any, run_id: str) -> Any:
    with mlflow_call(f"read run {run_id}"):
        return client.get_run(run_id)


def parent_and_trials(client: Any, job_id: str) -> tuple[Any, list[tuple[int, Any]]]:
    """The job's parent run and its trial runs as (iteration, run), in trial order."""
    if "'" in job_id:
        raise WorkspaceError(f"{job_id!r} is not a job name.")
    parent = get_run(client, job_id)
    trials = []
    for run in child_runs(client, job_id, parent.info.experiment_id):
        number = iteration(run, run.data.tags.get("mlflow.parentRunId", job_id))
        if number is not None:
            trials.append((number, run))
    trials.sort(key=lambda t: (t[0], t[1].info.start_time or 0))
    return parent, trials


def json_artifact(client: Any, run_id: str, name: str) -> dict[str, Any] | None:
    """A JSON artifact of a run, or None when Azure did not log it."""
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="opsdeck-artifact-") as tmp:
        try:
            path = Path(client.download_artifacts(run_id, name, tmp))
            if path.is_dir():
                path = next((p for p in sorted(path.rglob("*")) if p.is_file()), path)
            return json.loads(path.read_text())
        except (MlflowException, OSError, ValueError):
            return None
