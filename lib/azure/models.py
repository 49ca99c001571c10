"""Azure models: the best AutoML trial's MLflow model registered as an `mlflow_model` asset.

An MLflow model deploys to a managed online endpoint without a scoring script or environment.
Tags on the model version carry what pages show (source job, best run, algorithm, metrics) and
the training dataset, from which `feature_spec` learns categories, ranges and examples.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Model as AzureModel
from azure.core.exceptions import AzureError, ResourceNotFoundError

from lib.azure.automl import AzureAutoML
from lib.azure.client import MLClientSource, azure_call
from lib.azure.datasets import AzureDatasets
from lib.azure.values import created_at
from lib.errors import WorkspaceError
from lib.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from lib.model_signature import learn_feature_spec, merge_feature_spec, signature_columns
from lib.names import validate_model_name
from lib.workspace import Model

FetchMLmodel = Callable[[AzureModel], str]

METRIC_TAG = "metric."
# The folder AutoML writes a trial's MLflow model to, as a job output path (the SDK's
# JOB_URI_FORMAT `azureml://jobs/<job>/outputs/<output>/paths/<path>`; `artifacts` is the
# default output, holding what the run wrote under outputs/).
MLFLOW_MODEL_PATH = "azureml://jobs/{run_id}/outputs/artifacts/paths/outputs/mlflow-model/"
# Metrics copied into tags: the ones pages compare, not the dozens AutoML logs.
TAGGED_METRICS = frozenset(CLASSIFICATION_METRICS) | frozenset(REGRESSION_METRICS)


def to_model(entity: AzureModel) -> Model:
    """Map a model asset version to the domain type."""
    tags = dict(entity.tags or {})
    metrics = {}
    for key, value in tags.items():
        if key.startswith(METRIC_TAG):
            try:
                metrics[key[len(METRIC_TAG) :]] = float(value)
            except ValueError:
                continue
    return Model(
        name=str(entity.name),
        version=int(str(entity.version)),
        source_job=tags.get("opsdeck.job") or getattr(entity, "job_name", None),
        run_id=tags.get("opsdeck.run_id", ""),
        uri=f"azureml:{entity.name}:{entity.version}",
        created=created_at(entity),
        metrics=metrics,
        description=entity.description or "",
        tags={k: v for k, v in tags.items() if not k.startswith(METRIC_TAG)},
    )


def download_mlmodel(ml_client: MLClientSource, model: AzureModel) -> str:
    """The text of a registered MLflow model's `MLmodel` file, downloaded with the SDK."""
    with tempfile.TemporaryDirectory(prefix="opsdeck-model-") as tmp:
        with azure_call(f"download model {model.name} v{model.version}"):
            ml_client().models.download(
                name=str(model.name), version=str(model.version), download_path=tmp
            )
        found = sorted(Path(tmp).rglob("MLmodel"))
        if not found:
            raise WorkspaceError(f"Model {model.name} v{model.version} has no MLmodel file.")
        return found[0].read_text()


class AzureModels:
    """ModelService over `ml_client.models`, registering from AutoML jobs' best trials."""

    def __init__(
        self,
        ml_client: MLClientSource,
        automl: AzureAutoML,
        datasets: AzureDatasets | None = None,
        fetch_mlmodel: FetchMLmodel | None = None,
    ) -> None:
        self.ml_client = ml_client
        self.automl = automl
        self.datasets = datasets or automl.datasets
        self.fetch_mlmodel = fetch_mlmodel or (lambda model: download_mlmodel(ml_client, model))

    def build_model(self, job_id: str, name: str, description: str = "") -> AzureModel:
        """The model entity for a completed job's best trial (not yet registered)."""
        name = validate_model_name(name)
        job = self.automl.get(job_id)
        if job.state != "Completed":
            raise WorkspaceError(f"Job {job_id} is {job.state}; only completed jobs have a model.")
        best = self.automl.best_trial(job_id)
        request = job.spec.get("request", {})
        tags = {
            "opsdeck.job": job_id,
            "opsdeck.run_id": best["run_id"],
            "opsdeck.estimator": best["estimator"],
            "opsdeck.task": str(request.get("task", "")),
            "opsdeck.dataset": str(request.get("dataset", "")),
            "opsdeck.dataset_version": str(request.get("dataset_version", "")),
            "opsdeck.target": str(request.get("target", "")),
        }
        tags.update(
            {
                f"{METRIC_TAG}{k}": repr(float(v))
                for k, v in best["metrics"].items()
                if k in TAGGED_METRICS
            }
        )
        return AzureModel(
            name=name,
            path=MLFLOW_MODEL_PATH.format(run_id=best["run_id"]),
            type=AssetTypes.MLFLOW_MODEL,
            description=description,
            tags={k: v for k, v in tags.items() if v != ""},
        )

    def register(self, job_id: str, name: str, description: str = "") -> Model:
        """Register a completed job's best trial as the next version of `name`."""
        model = self.build_model(job_id, name, description)
        with azure_call(f"register model {model.name}"):
            created = self.ml_client().models.create_or_update(model)
        return to_model(created)

    def _versions(self, name: str) -> list[Model]:
        with azure_call(f"list the versions of model {name}"):
            try:
                entities = list(self.ml_client().models.list(name=name))
            except ResourceNotFoundError:
                return []
        return [to_model(e) for e in entities if str(e.version).isdigit()]

    def list(self) -> list[Model]:
        """Every numbered version of every model, by name then newest first."""
        with azure_call("list models"):
            containers = list(self.ml_client().models.list())
        models = [m for c in containers for m in self._versions(str(c.name))]
        return sorted(models, key=lambda m: (m.name, -m.version))

    def _entity(self, name: str, version: int) -> AzureModel:
        label = f"{name} v{version}"
        with azure_call(f"get model {label}", not_found=f"Model {label} is not registered."):
            return self.ml_client().models.get(name=name, version=str(int(version)))

    def get(self, name: str, version: int | None = None) -> Model:
        if version is not None:
            return to_model(self._entity(name, version))
        versions = self._versions(name)
        if not versions:
            raise WorkspaceError(f"Model {name} is not registered.")
        return max(versions, key=lambda m: m.version)

    def _training_spec(self, tags: dict[str, str]) -> list[dict[str, Any]]:
        """Feature spec learnt from the model's training dataset (empty when unknown)."""
        dataset, version, target = (
            tags.get("opsdeck.dataset"),
            tags.get("opsdeck.dataset_version", ""),
            tags.get("opsdeck.target"),
        )
        if not dataset or not version.isdigit() or not target:
            return []
        frame = self.datasets.load(dataset, int(version))
        return learn_feature_spec(frame.drop(columns=[target], errors="ignore"))

    def feature_spec(self, name: str, version: int) -> list[dict[str, Any]]:
        """Input columns from the MLmodel signature, with categories and ranges from training data."""
        entity = self._entity(name, version)
        try:
            columns = signature_columns(self.fetch_mlmodel(entity))
            signature_error = "" if columns else "its MLmodel file has no column signature"
        except (WorkspaceError, AzureError, OSError) as exc:
            columns, signature_error = [], str(exc)
        try:
            learnt = self._training_spec(dict(entity.tags or {}))
        except WorkspaceError:
            learnt = []
        if not columns:
            if learnt:
                return learnt
            raise WorkspaceError(
                f"The input schema of model {name} v{version} is unknown: {signature_error}, and "
                "the model names no training dataset of this workspace."
            )
        return merge_feature_spec(columns, learnt)
