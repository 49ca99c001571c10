"""MLflow tracking and registry under the workspace home (never relative to the cwd)."""

from __future__ import annotations

from pathlib import Path

TRACKING_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"


def tracking_uri(home: Path) -> str:
    return f"sqlite:///{(Path(home) / TRACKING_FILE).resolve()}"


def artifact_root(home: Path) -> Path:
    path = (Path(home) / ARTIFACT_DIR).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def client(home: Path):  # noqa: ANN201 - mlflow is imported lazily, it is slow to import
    """An MlflowClient bound to this home's store."""
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(home)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)
