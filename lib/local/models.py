"""Local model registry: MLflow registered models under the workspace home."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lib.files import atomic_write
from lib.local import tracking
from lib.local.jobs import JobManager
from lib.local.store import Store
from lib.names import validate_model_name
from lib.workspace import Model, WorkspaceError


class LocalModels:
    def __init__(self, store: Store, jobs: JobManager) -> None:
        self.store = store
        self.jobs = jobs
        self.root = store.artifacts("models")

    def _client(self):  # noqa: ANN202
        return tracking.client(self.store.home)

    def register(self, job_id: str, name: str, description: str = "") -> Model:
        """Register a completed job's best model as the next version of `name`."""
        name = validate_model_name(name)
        job = self.jobs.get(job_id)
        if job.state != "Completed":
            raise WorkspaceError(f"Job {job_id} is {job.state}; only completed jobs have a model.")
        result = self.jobs.result(job_id)
        model_uri = result.get("model_uri")
        if not model_uri:
            raise WorkspaceError(f"Job {job_id} produced no model.")
        import mlflow

        uri = tracking.tracking_uri(self.store.home)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        client = self._client()
        mv = mlflow.register_model(model_uri, name, tags={"opsdeck.job": job_id})
        if description:
            client.update_model_version(name, mv.version, description=description)
        metrics = result.get("best_metrics", {})
        for key, value in metrics.items():
            client.set_model_version_tag(name, mv.version, f"metric.{key}", str(value))
        folder = self.root / name / f"v{mv.version}"
        compiled = self.jobs.job_dir(job_id) / "fastpath"
        if compiled.is_dir():
            shutil.copytree(compiled, folder / "fastpath", dirs_exist_ok=True)
        atomic_write(
            folder / "feature_spec.json",
            json.dumps(result.get("feature_spec", []), default=str).encode(),
        )
        atomic_write(
            folder / "info.json",
            json.dumps(
                {
                    "job_id": job_id,
                    "best_estimator": result.get("best_estimator"),
                    "metrics": metrics,
                    "classes": result.get("classes"),
                    "task": result.get("task"),
                    "model_uri": model_uri,
                },
                default=str,
            ).encode(),
        )
        return self.get(name, int(mv.version))

    def _to_model(self, mv: Any) -> Model:
        tags = dict(mv.tags or {})
        metrics = {k[7:]: float(v) for k, v in tags.items() if k.startswith("metric.")}
        return Model(
            name=mv.name,
            version=int(mv.version),
            source_job=tags.get("opsdeck.job"),
            run_id=mv.run_id or "",
            uri=f"models:/{mv.name}/{mv.version}",
            created=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
            metrics=metrics,
            description=mv.description or "",
            tags={k: v for k, v in tags.items() if not k.startswith("metric.")},
        )

    def list(self) -> list[Model]:
        if not (self.store.home / tracking.TRACKING_FILE).exists():
            return []
        versions = self._client().search_model_versions(max_results=1000)
        models = [self._to_model(mv) for mv in versions]
        return sorted(models, key=lambda m: (m.name, -m.version))

    def get(self, name: str, version: int | None = None) -> Model:
        candidates = [m for m in self.list() if m.name == name]
        if version is not None:
            candidates = [m for m in candidates if m.version == int(version)]
        if not candidates:
            label = name if version is None else f"{name} v{version}"
            raise WorkspaceError(f"Model {label} is not registered.")
        return max(candidates, key=lambda m: m.version)

    def feature_spec(self, name: str, version: int) -> list[dict[str, Any]]:
        path = self.root / name / f"v{version}" / "feature_spec.json"
        if not path.exists():
            raise WorkspaceError(f"Model {name} v{version} has no recorded input schema.")
        return json.loads(path.read_text())

    def fastpath_dir(self, name: str, version: int) -> Path | None:
        """The compiled, verified numpy model of a version, if it has one."""
        path = self.root / name / f"v{version}" / "fastpath"
        return path if (path / "verification.json").exists() else None

    def info(self, name: str, version: int) -> dict[str, Any]:
        path = self.root / name / f"v{version}" / "info.json"
        return json.loads(path.read_text()) if path.exists() else {}
