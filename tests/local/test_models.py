"""The local model registry: a completed job's model registered as MLflow versions under the home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.local import jobs as jobs_module
from lib.local import tracking
from lib.local.jobs import JobManager
from lib.local.models import LocalModels
from lib.local.store import Store
from lib.workspace import WorkspaceError

FEATURE_SPEC = [{"name": "age", "kind": "numeric", "dtype": "int64"}]


@pytest.fixture
def manager(hermetic_env: Path) -> JobManager:
    return JobManager(Store(hermetic_env), slots=1)


@pytest.fixture
def models(manager: JobManager) -> LocalModels:
    return LocalModels(manager.store, manager)


def finished_job(manager: JobManager, state: str = "Completed", **result: object) -> str:
    """A job row in a final state with `result`, as the runner leaves it."""
    job = manager.submit("sleep", "done", {}, start=False)
    manager.store.connect().execute(
        "UPDATE jobs SET state=?, result=?, ended=? WHERE id=?",
        (state, json.dumps(result), jobs_module.now_iso(), job.id),
    )
    return job.id


def logged_model(home: Path) -> str:
    """Log a small LightGBM pyfunc model as a run in the home's tracking store; its runs:/ URI."""
    import mlflow
    from mlflow.models import infer_signature

    from tests.local.scoring_models import FastLightGBMModel, make_frame, train_booster

    uri = tracking.tracking_uri(home)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment(
        "model-tests", artifact_location=tracking.artifact_root(home).as_uri()
    )
    X, y = make_frame()
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.pyfunc.log_model(
            name="model",
            python_model=FastLightGBMModel(train_booster(X, y), ["no", "yes"]),
            signature=infer_signature(X, y),
            pip_requirements=["lightgbm"],
        )
    return f"runs:/{run.info.run_id}/model"


def test_an_empty_home_has_no_models(models: LocalModels) -> None:
    assert models.list() == []
    with pytest.raises(WorkspaceError, match="not registered"):
        models.get("nothing")


def test_only_a_completed_job_with_a_model_registers(
    manager: JobManager, models: LocalModels
) -> None:
    failed = finished_job(manager, "Failed", model_uri="runs:/x/model")
    with pytest.raises(WorkspaceError, match="only completed jobs"):
        models.register(failed, "bank-model")
    empty = finished_job(manager)
    with pytest.raises(WorkspaceError, match="no model"):
        models.register(empty, "bank-model")
    with pytest.raises(WorkspaceError):
        models.register(empty, "bad name!")
    with pytest.raises(WorkspaceError, match="does not exist"):
        models.register("no-such-job", "bank-model")


@pytest.mark.slow
def test_register_versions_with_metrics_schema_and_compiled_model(
    manager: JobManager, models: LocalModels, hermetic_env: Path
) -> None:
    model_uri = logged_model(hermetic_env)
    first = finished_job(
        manager,
        model_uri=model_uri,
        best_metrics={"AUC_weighted": 0.91, "accuracy": 0.88},
        feature_spec=FEATURE_SPEC,
        best_estimator="lgbm",
        classes=["no", "yes"],
        task="classification",
    )
    compiled = manager.job_dir(first) / "fastpath"
    compiled.mkdir()
    (compiled / "verification.json").write_text("{}")

    v1 = models.register(first, "bank-model", description="first try")
    assert (v1.name, v1.version, v1.source_job) == ("bank-model", 1, first)
    assert v1.metrics == {"AUC_weighted": 0.91, "accuracy": 0.88}
    assert v1.description == "first try" and v1.uri == "models:/bank-model/1"
    assert models.feature_spec("bank-model", 1) == FEATURE_SPEC
    assert models.info("bank-model", 1)["best_estimator"] == "lgbm"
    assert models.fastpath_dir("bank-model", 1) == models.root / "bank-model" / "v1" / "fastpath"

    second = finished_job(manager, model_uri=model_uri, best_metrics={"AUC_weighted": 0.93})
    v2 = models.register(second, "bank-model")
    assert v2.version == 2 and v2.source_job == second
    assert models.fastpath_dir("bank-model", 2) is None
    assert models.feature_spec("bank-model", 2) == []
    assert [(m.name, m.version) for m in models.list()] == [("bank-model", 2), ("bank-model", 1)]
    assert models.get("bank-model").version == 2
    assert models.get("bank-model", 1).metrics["accuracy"] == 0.88
    with pytest.raises(WorkspaceError, match="v3"):
        models.get("bank-model", 3)
    with pytest.raises(WorkspaceError, match="no recorded input schema"):
        models.feature_spec("bank-model", 3)
