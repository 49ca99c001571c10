import io
import socket
from pathlib import Path

import pandas as pd
import pytest
import yaml
from azure.ai.ml.entities import CommandJob

from lib.azure.automl import AzureAutoML, timeout_minutes
from lib.azure.datasets import AzureDatasets
from lib.azure.endpoints import AzureEndpoints
from lib.azure.models import AzureModels
from lib.azure.workspace import open_azure_workspace
from lib.settings import AzureConfig, Settings
from lib.workspace import (
    AutoMLService,
    EndpointService,
    ModelService,
    WorkspaceError,
)
from tests.support.azure_fakes import (
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    FakeMLClient,
    FakeMlflowClient,
    mlflow_run,
)
from tests.support.azure_fakes_automl import T0, add_trials, request, submit_with_trials


def job_creates(client: FakeMLClient) -> list[tuple]:
    return [c for c in client.jobs.calls if c[0] == "create_or_update"]


def test_implements_the_protocol(automl: AzureAutoML) -> None:
    assert isinstance(automl, AutoMLService)


def test_submit_builds_a_valid_classification_job(
    automl: AzureAutoML, fake_client: FakeMLClient
) -> None:
    job = automl.submit(request())

    [sent] = fake_client.jobs.received  # validated by the SDK's schema and REST serialization
    assert sent.task_type.lower() == "classification"
    assert (sent.target_column_name, sent.compute, sent.experiment_name) == (
        "y",
        "cpu-cluster",
        "bank-automl",
    )
    rest = sent._to_rest_object().properties.task_details
    assert rest.primary_metric == "AUCWeighted"
    assert sent.limits.timeout_minutes == 30
    assert sent.limits.trial_timeout_minutes == 30
    assert sent.limits.max_trials == 20
    assert sent.limits.max_concurrent_trials == 4  # one trial per cluster node
    assert sent.limits.enable_early_termination is True
    algos = [a.value for a in rest.training_settings.allowed_training_algorithms]
    assert algos == ["LightGBM", "XGBoostClassifier"]
    assert rest.training_settings.enable_stack_ensemble is True
    assert rest.training_settings.enable_vote_ensemble is True
    assert rest.validation_data_size == 0.2
    assert sent.training_data.type == "mltable"
    assert sent.training_data.path == "azureml:bank-mltable:1"

    assert (job.kind, job.state, job.compute) == ("automl", "Queued", "cpu-cluster")
    assert job.spec["request"]["target"] == "y"
    assert job.spec["request"]["dataset_version"] == 1
    assert job.spec["request"]["time_budget_s"] == 1800
    assert job.progress["studio_url"].startswith("https://ml.azure.com/runs/")


def test_columns_left_out_are_ignored_by_featurization(
    automl: AzureAutoML, fake_client: FakeMLClient
) -> None:
    job = automl.submit(request(features=["age", "balance"]))

    [sent] = fake_client.jobs.received
    rest = sent._to_rest_object().properties.task_details.featurization_settings
    assert rest.column_name_and_types == {"job": "Ignore"}
    assert job.spec["request"]["features"] == ["age", "balance"]
    assert automl.validate(request(features=["nope"])) != []


def test_the_mltable_holds_the_table_as_opsdeck_read_it(
    automl: AzureAutoML, fake_client: FakeMLClient, datasets: AzureDatasets
) -> None:
    """Azure trains on what the Datasets page showed: tokens missing, numbers as numbers."""
    rows = [
        f'{i},{"?" if i % 7 == 0 else 20 + i % 50},"${1000 + i:,}",{"yes" if i % 3 else "no"}'
        for i in range(60)
    ]
    data = (",age,price,y\n" + "\n".join(rows) + "\n").encode()
    datasets.upload("people", data, "people.csv")
    automl.submit(request(dataset="people", features=["age", "price"]))
    table = fake_client.data.get("people-mltable", "1")
    assert table.type == "mltable"
    [mltable_uri] = [u for u in fake_client.datastore.files if u.endswith("/MLTable")]
    content = yaml.safe_load(fake_client.datastore.files[mltable_uri])
    assert content["paths"] == [{"file": "./data.parquet"}]
    [step] = content["transformations"]
    assert "read_parquet" in step
    folder = mltable_uri.removesuffix("MLTable")
    typed = pd.read_parquet(io.BytesIO(fake_client.datastore.files[folder + "data.parquet"]))
    assert list(typed.columns) == ["column_1", "age", "price", "y"]
    assert typed["age"].isna().sum() == 9 and str(typed["age"].dtype) == "float64"
    assert typed["price"].tolist()[:2] == [1000.0, 1001.0]
    # the column left out by name is the one opsdeck named
    [sent] = fake_client.jobs.received
    rest = sent._to_rest_object().properties.task_details.featurization_settings
    assert rest.column_name_and_types == {"column_1": "Ignore"}
    # The MLTable is not a dataset of its own on the Datasets page.
    assert sorted(d.name for d in datasets.list()) == ["bank", "people"]


def test_the_mltable_reads_the_upload_with_the_operators_tokens(
    automl: AzureAutoML, fake_client: FakeMLClient, datasets: AzureDatasets
) -> None:
    """A token the operator added at upload (`n.a.`) is missing in what Azure trains on too."""
    rows = [
        f"{'n.a.' if i % 5 == 0 else 20 + i % 50},{'yes' if i % 3 else 'no'}" for i in range(60)
    ]
    data = ("age,y\n" + "\n".join(rows) + "\n").encode()
    datasets.upload("survey", data, "survey.csv", missing_tokens=["", "n.a."])
    automl.submit(request(dataset="survey", features=["age"]))
    [mltable_uri] = [u for u in fake_client.datastore.files if u.endswith("/MLTable")]
    folder = mltable_uri.removesuffix("MLTable")
    typed = pd.read_parquet(io.BytesIO(fake_client.datastore.files[folder + "data.parquet"]))
    assert str(typed["age"].dtype) == "float64" and typed["age"].isna().sum() == 12


def test_second_submit_reuses_the_mltable(automl: AzureAutoML, fake_client: FakeMLClient) -> None:
    automl.submit(request())
    automl.submit(request(primary_metric="accuracy"))
    mltables = [c for c in fake_client.data.calls if c[:2] == ("create_or_update", "bank-mltable")]
    assert len(mltables) == 1
    assert len(job_creates(fake_client)) == 2


def test_regression_with_cross_validation(
    automl: AzureAutoML, fake_client: FakeMLClient, datasets: AzureDatasets
) -> None:
    automl.submit(
        request(
            target="balance",
            task="regression",
            primary_metric="rmse",
            validation="cv",
            n_folds=3,
            estimators=["lrl1", "rf", "xgboost"],
            ensemble=False,
            time_budget_s=61,
            max_trials=None,
        )
    )
    [sent] = fake_client.jobs.received
    rest = sent._to_rest_object().properties.task_details
    assert sent.task_type.lower() == "regression"
    assert rest.primary_metric == "NormalizedRootMeanSquaredError"
    assert rest.n_cross_validations.value == 3
    algos = [a.value for a in rest.training_settings.allowed_training_algorithms]
    assert algos == ["LassoLars", "RandomForest", "XGBoostRegressor"]
    assert rest.training_settings.enable_stack_ensemble is False
    assert rest.training_settings.enable_vote_ensemble is False
    assert sent.limits.timeout_minutes == 15  # Azure's minimum
    assert sent.limits.max_trials is None


def test_timeout_covers_the_budget() -> None:
    assert timeout_minutes(60) == 15
    assert timeout_minutes(3600) == 60
    assert timeout_minutes(3601) == 61


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "nope"}, "Target column 'nope' is not in the dataset"),
        ({"primary_metric": "f1_score_weighted"}, "cannot be the primary metric"),
        ({"estimators": ["catboost"]}, "Unknown algorithm"),
        ({"compute": "local"}, "Choose a compute cluster"),
        ({"compute": "gpu-missing"}, "gpu-missing does not exist"),
        ({"compute": "ci-alice"}, "not a cluster"),
        ({"dataset_version": 9}, "Dataset bank v9 does not exist"),
    ],
)
def test_bad_requests_are_refused_before_any_submission(
    automl: AzureAutoML, fake_client: FakeMLClient, changes: dict, message: str
) -> None:
    bad = request(**changes)
    assert any(message in p for p in automl.validate(bad))
    with pytest.raises(WorkspaceError, match=message):
        automl.submit(bad)
    assert job_creates(fake_client) == []
    assert not [c for c in fake_client.data.calls if c[:2] == ("create_or_update", "bank-mltable")]


def test_validate_accepts_a_good_request(automl: AzureAutoML) -> None:
    assert automl.validate(request()) == []


@pytest.mark.parametrize(
    ("azure", "ours"),
    [
        ("NotStarted", "Queued"),
        ("Preparing", "Queued"),
        ("Running", "Running"),
        ("Finalizing", "Running"),
        ("CancelRequested", "Running"),
        ("Completed", "Completed"),
        ("Failed", "Failed"),
        ("Canceled", "Canceled"),
    ],
)
def test_states_follow_azure(
    automl: AzureAutoML, fake_client: FakeMLClient, azure: str, ours: str
) -> None:
    job = automl.submit(request())
    fake_client.jobs.set_status(job.id, azure)
    got = automl.get(job.id)
    assert got.state == ours
    assert (got.error is not None) == (ours == "Failed")
    if ours == "Failed":
        assert "ml.azure.com" in got.error


def test_jobs_lists_only_automl_jobs(automl: AzureAutoML, fake_client: FakeMLClient) -> None:
    first = automl.submit(request())
    fake_client.jobs.add(
        CommandJob(command="echo hi", environment="azureml:env:1", compute="cpu-cluster"),
        "plain_command",
        "Completed",
    )
    second = automl.submit(request(primary_metric="accuracy"))
    assert [j.id for j in automl.jobs()] == [second.id, first.id]


def test_cancel_asks_azure_and_reports_the_new_state(
    automl: AzureAutoML, fake_client: FakeMLClient
) -> None:
    job = automl.submit(request())
    fake_client.jobs.set_status(job.id, "Running")
    assert automl.cancel(job.id).state == "Canceled"
    assert ("begin_cancel", job.id) in fake_client.jobs.calls
    # A finished job is left alone.
    automl.cancel(job.id)
    assert [c for c in fake_client.jobs.calls if c[0] == "begin_cancel"] == [
        ("begin_cancel", job.id)
    ]


def test_unknown_job_is_a_workspace_error(automl: AzureAutoML) -> None:
    with pytest.raises(WorkspaceError, match="Job nope does not exist"):
        automl.get("nope")


def test_trials_and_progress_from_mlflow_child_runs(
    automl: AzureAutoML, fake_client: FakeMLClient, fake_mlflow: FakeMlflowClient
) -> None:
    job_id = submit_with_trials(automl, fake_client, fake_mlflow, "Running")

    trials = automl.trials(job_id)
    assert list(trials["trial"]) == [0, 1, 2, 3, 4]  # the setup run is not a trial
    assert list(trials["estimator"]) == [
        "LightGBM",
        "XGBoostClassifier",
        "LightGBM",
        "VotingEnsemble",
        "XGBoostClassifier",
    ]
    assert list(trials["status"]) == ["Completed"] * 4 + ["Running"]
    assert trials["primary_metric"].tolist()[:4] == [0.91, 0.93, 0.94, 0.95]
    assert trials["best_so_far"].tolist()[:4] == [0.91, 0.93, 0.94, 0.95]
    assert trials.loc[0, "duration_s"] == 45.0
    assert trials.loc[0, "wall_time_s"] == 105.0
    assert trials.loc[0, "config"]["run_preprocessor"] == "MaxAbsScaler"
    assert {"accuracy", "log_loss", "run_id"} <= set(trials.columns)
    assert ("search_runs", ("7",), f"tags.mlflow.parentRunId = '{job_id}'") in fake_mlflow.calls

    progress = automl.get(job_id).progress
    assert progress["trials"] == 5
    assert progress["best_score"] == 0.95
    assert progress["current_estimator"] == "XGBoostClassifier"

    tail = automl.log_tail(job_id)
    assert "ml.azure.com/runs/" in tail
    assert "trial 3 VotingEnsemble: Completed AUC_weighted=0.9500" in tail


def test_leaderboard_sorted_with_per_algorithm_best(
    automl: AzureAutoML, fake_client: FakeMLClient, fake_mlflow: FakeMlflowClient
) -> None:
    job_id = submit_with_trials(automl, fake_client, fake_mlflow)

    board = automl.leaderboard(job_id)
    assert list(board["AUC_weighted"].dropna()) == [0.95, 0.94, 0.93, 0.91]
    assert pd.isna(board["AUC_weighted"].iloc[-1])  # the unscored trial goes last
    assert "primary_metric" not in board.columns

    best = automl.leaderboard(job_id, per_estimator=True)
    assert list(best["estimator"]) == ["VotingEnsemble", "LightGBM", "XGBoostClassifier"]
    assert list(best["AUC_weighted"]) == [0.95, 0.94, 0.93]


def test_regression_leaderboard_uses_our_metric_names_lower_first(
    automl: AzureAutoML, fake_client: FakeMLClient, fake_mlflow: FakeMlflowClient
) -> None:
    job = automl.submit(request(target="balance", task="regression", primary_metric="rmse"))
    fake_mlflow.add(mlflow_run(job.id, start=T0))
    for i, (algo, rmse) in enumerate(
        [("LightGBM", 12.0), ("RandomForest", 9.5), ("LightGBM", 11.0)]
    ):
        fake_mlflow.add(
            mlflow_run(
                f"{job.id}_{i}",
                parent=job.id,
                start=T0 + i,
                end=T0 + 1000 + i,
                metrics={"root_mean_squared_error": rmse, "r2_score": 1 / rmse},
                params={"run_algorithm": algo},
            )
        )
    board = automl.leaderboard(job.id, per_estimator=True)
    assert list(board["estimator"]) == ["RandomForest", "LightGBM"]
    assert list(board["rmse"]) == [9.5, 11.0]


def test_trials_under_a_sweep_child_are_found(
    automl: AzureAutoML, fake_mlflow: FakeMlflowClient
) -> None:
    job = automl.submit(request())
    fake_mlflow.add(mlflow_run(job.id, start=T0))
    fake_mlflow.add(mlflow_run(f"{job.id}_HD", parent=job.id, start=T0))
    fake_mlflow.add(
        mlflow_run(
            f"{job.id}_HD_0",
            parent=f"{job.id}_HD",
            start=T0,
            end=T0 + 1000,
            metrics={"AUC_weighted": 0.9},
            tags={"run_algorithm": "LightGBM"},
        )
    )
    trials = automl.trials(job.id)
    assert (list(trials["trial"]), list(trials["estimator"])) == ([0], ["LightGBM"])


def test_details_from_the_best_child_and_its_artifacts(
    automl: AzureAutoML, fake_client: FakeMLClient, fake_mlflow: FakeMlflowClient
) -> None:
    job_id = submit_with_trials(automl, fake_client, fake_mlflow)
    best = f"{job_id}_3"
    fake_mlflow.artifacts[(best, "confusion_matrix")] = {
        "schema_type": "confusion_matrix",
        "data": {"class_labels": ["no", "yes"], "matrix": [[80, 10], [5, 25]]},
    }
    fake_mlflow.artifacts[(best, "accuracy_table")] = {
        "schema_type": "accuracy_table",
        "data": {
            "class_labels": ["no", "yes"],
            "probability_thresholds": [0.0, 0.5, 1.0],
            "probability_tables": [
                [[90, 30, 0, 0], [80, 5, 25, 10], [0, 0, 30, 90]],
                [[30, 90, 0, 0], [25, 10, 80, 5], [0, 0, 90, 30]],
            ],
        },
    }

    details = automl.details(job_id)
    assert details["best_estimator"] == "VotingEnsemble"
    assert details["run_id"] == best
    assert details["metrics"]["AUC_weighted"] == 0.95
    assert details["confusion"] == {"labels": ["no", "yes"], "matrix": [[80, 10], [5, 25]]}
    yes = [p for p in details["roc"] if p["class"] == "yes"]
    assert [(p["fpr"], p["tpr"]) for p in yes] == [(1.0, 1.0), (10 / 90, 25 / 30), (0.0, 0.0)]
    assert {"recall", "precision", "threshold"} <= set(details["pr"][0])
    assert details["calibration"] == [] and details["feature_importance"] == []
    assert automl.guardrails(job_id) == []


def test_details_without_artifacts_or_best_tag_pick_the_best_metric(
    automl: AzureAutoML, fake_mlflow: FakeMlflowClient
) -> None:
    job = automl.submit(request())
    add_trials(fake_mlflow, job.id, best_tag=False)
    details = automl.details(job.id)
    assert (details["run_id"], details["best_estimator"]) == (f"{job.id}_3", "VotingEnsemble")
    assert details["roc"] == [] and details["confusion"] == {}


def test_missing_tracking_data_is_a_workspace_error_but_get_still_works(
    automl: AzureAutoML, fake_client: FakeMLClient
) -> None:
    job = automl.submit(request())
    with pytest.raises(WorkspaceError, match="MLflow tracking"):
        automl.trials(job.id)
    assert "note" not in automl.get(job.id).progress  # queued: nothing to read yet
    fake_client.jobs.set_status(job.id, "Running")
    got = automl.get(job.id)
    assert got.state == "Running"
    assert "MLflow tracking" in got.progress["note"]
    assert "MLflow tracking" in automl.log_tail(job.id)


def test_open_azure_workspace_wires_every_service_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    settings = Settings(
        home=tmp_path,
        backend="azure",
        backend_reason="test",
        azure=AzureConfig(
            subscription_id=SUBSCRIPTION,
            resource_group=RESOURCE_GROUP,
            workspace_name=WORKSPACE,
            source="test",
        ),
    )
    ws = open_azure_workspace(settings)
    assert isinstance(ws.automl, AzureAutoML) and isinstance(ws.automl, AutoMLService)
    assert isinstance(ws.models, AzureModels) and isinstance(ws.models, ModelService)
    assert isinstance(ws.endpoints, AzureEndpoints) and isinstance(ws.endpoints, EndpointService)
    assert not ws.extras["ml_client"].built


def test_automatic_validation_leaves_the_choice_to_azure(
    automl: AzureAutoML, fake_client: FakeMLClient
) -> None:
    automl.submit(request(validation="auto"))
    [sent] = fake_client.jobs.received
    rest = sent._to_rest_object().properties.task_details
    # No validation settings: Azure AutoML picks CV or a holdout by the data's size.
    assert rest.validation_data_size is None
    assert rest.n_cross_validations is None
