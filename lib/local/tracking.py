"""MLflow tracking and registry under the workspace home (never relative to the cwd)."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Iterator
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


def ensure_store(home: Path) -> None:
    """Create the home's tracking database if it is missing, from a per-machine template.

    NB: MLflow builds a new SQLite store by replaying every schema migration, 7-18 s on a
    busy 2-core machine; inside an AutoML job that time would come out of its budget. The
    migrated empty schema is built once per MLflow version and copied from then on.
    """
    target = Path(home) / TRACKING_FILE
    if target.exists():
        return
    template = _template()
    if template is None:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".mlflow-", suffix=".db")
    os.close(fd)
    try:
        shutil.copyfile(template, tmp)
        # A hard link never replaces a store another process created meanwhile.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, target)
    finally:
        os.unlink(tmp)


def _template() -> Path | None:
    """The migrated, empty tracking schema of the installed MLflow (built on first use)."""
    try:
        version = importlib.metadata.version("mlflow")
    except importlib.metadata.PackageNotFoundError:
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "opsdeck"
    template = cache / f"mlflow-{version}.db"
    if template.exists():
        return template
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f"mlflow-{version}.lock"):
        if not template.exists():
            fd, tmp = tempfile.mkstemp(dir=cache, prefix=".mlflow-", suffix=".db")
            os.close(fd)
            os.unlink(tmp)
            try:
                _migrate(f"sqlite:///{tmp}")
                os.replace(tmp, template)
            except Exception:  # noqa: BLE001 - MLflow then builds the store itself, slowly
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                return None
    return template


def _migrate(uri: str) -> None:
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine_with_retry

    engine = create_sqlalchemy_engine_with_retry(uri)
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
