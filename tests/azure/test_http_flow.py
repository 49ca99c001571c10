"""The Azure loop through the SDKs' own HTTP: upload → AutoML → trials → register → deploy → keys
→ score → logs.

Every Azure client (MLClient, the MLflow tracking client, blob storage, LogsQueryClient) sends
its real requests to one fake transport (`tests.support.azure_transport`); the answers are shaped
like the service's (`tests.support.azure_service` says where each shape comes from). What the
tests assert is what left the SDK: URLs, bodies, auth headers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lib.appinsights import TelemetryQuery
from lib.azure.automl.tracking import ML_SCOPE
from lib.scoring import score
from lib.workspace import AutoMLRequest, Job, WorkspaceError
from tests.azure.conftest import HttpWorkspace
from tests.support.azure_fakes_automl import bank_csv
from tests.support.azure_service import WORKSPACE_PATH
from tests.support.azure_serving import ScoringEndpoint
from tests.support.azure_transport import TOKEN, Sent, requests_session
from tests.support.waiting import wait_for

COLUMNS = ["age", "job", "balance"]


def sent_to(h: HttpWorkspace, method: str, path_part: str) -> list[Sent]:
    return [s for s in h.transport.sent if s.method == method and path_part in s.path]


def upload_and_submit(h: HttpWorkspace) -> Job:
    h.service.add_cluster("cpu-cluster")
    h.ws.datasets.upload("bank", bank_csv(sep=","), "bank.csv", "Bank marketing sample")
    request = AutoMLRequest(
        dataset="bank",
        dataset_version=1,
        target="y",
        compute="cpu-cluster",
        time_budget_s=900,
        experiment_name="bank-automl",
    )
    return h.ws.automl.submit(request)


def record_trials(h: HttpWorkspace, job_id: str) -> None:
    """What AutoML leaves in the workspace's tracking: a parent, a setup run, three trials."""
    h.service.set_job_status(job_id, "Completed")
    h.service.add_run(job_id, tags={"automl_best_child_run_id": f"{job_id}_2"})
    h.service.add_run(f"{job_id}_setup", parent=job_id)
    trials = [("LightGBM", 0.91, 0.90), ("XGBoostClassifier", 0.93, 0.91)]
    trials.append(("VotingEnsemble", 0.94, 0.92))
    for i, (algorithm, auc, accuracy) in enumerate(trials):
        h.service.add_run(
            f"{job_id}_{i}",
            parent=job_id,
            metrics={"AUC_weighted": auc, "accuracy": accuracy, "log_loss": 0.3},
            tags={"run_algorithm": algorithm, "iteration": str(i)},
            params={"run_preprocessor": "MaxAbsScaler"},
        )


def test_the_whole_loop_through_the_sdks(azure_http: HttpWorkspace) -> None:
    h = azure_http
    job = upload_and_submit(h)

    # Upload: the file went to the datastore, the asset points at it.
    blob = next(s for s in sent_to(h, "PUT", "/bank.csv") if "comp" not in s.query)
    assert blob.body == bank_csv(sep=",")
    data_put = sent_to(h, "PUT", "/data/bank/versions/1")[0].json()["properties"]
    assert data_put["dataType"] == "uri_file"
    assert data_put["dataUri"].endswith("/bank.csv")

    # Submit: an AutoML classification job over the companion MLTable, on the cluster.
    assert job.state == "Queued" and job.compute == "cpu-cluster"
    job_put = sent_to(h, "PUT", f"/jobs/{job.id}")[0].json()["properties"]
    assert job_put["jobType"] == "AutoML"
    task = job_put["taskDetails"]
    assert task["taskType"] == "Classification"
    assert task["targetColumnName"] == "y"
    assert task["primaryMetric"] == "AUCWeighted"
    assert task["trainingData"]["jobInputType"] == "mltable"
    assert task["trainingData"]["uri"].endswith("/data/bank-mltable/versions/1")
    assert job_put["computeId"].endswith("/computes/cpu-cluster")
    assert job_put["experimentName"] == "bank-automl"

    # Trials: read from the workspace's MLflow over REST, no azureml-mlflow plugin.
    record_trials(h, job.id)
    board = h.ws.automl.leaderboard(job.id)
    assert board["estimator"].tolist() == ["VotingEnsemble", "XGBoostClassifier", "LightGBM"]
    assert board["AUC_weighted"].tolist() == [0.94, 0.93, 0.91]
    search = sent_to(h, "POST", "/api/2.0/mlflow/runs/search")[0]
    assert search.host == "westeurope.api.azureml.ms"
    assert search.path.startswith(f"/mlflow/v1.0{WORKSPACE_PATH}/")
    assert search.json()["filter"] == f"tags.mlflow.parentRunId = '{job.id}'"
    assert search.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (ML_SCOPE,) in h.credential.scopes

    # Register: the best child's MLflow model output becomes an mlflow_model asset.
    model = h.ws.models.register(job.id, "bank-model")
    assert (model.name, model.version) == ("bank-model", 1)
    assert model.metrics["AUC_weighted"] == 0.94
    model_put = sent_to(h, "PUT", "/models/bank-model/versions/1")[0].json()["properties"]
    assert model_put["modelType"] == "mlflow_model"
    assert model_put["modelUri"] == (
        f"azureml://jobs/{job.id}_2/outputs/artifacts/paths/outputs/mlflow-model/"
    )

    # Deploy: key-auth endpoint, a no-code MLflow deployment, then all traffic to it.
    endpoint = h.ws.deploy_model(model.name, model.version)
    assert endpoint.state == "Creating"
    wait_for(lambda: h.ws.endpoints.get("bank-model").state == "Succeeded", timeout=20)
    live = h.ws.endpoints.get("bank-model")
    assert (live.request_shape, live.probabilities) == ("input_data", False)
    endpoint_put = sent_to(h, "PUT", "/onlineEndpoints/bank-model")
    assert endpoint_put[0].json()["properties"]["authMode"] == "Key"
    deployment = sent_to(h, "PUT", "/onlineEndpoints/bank-model/deployments/blue")[0].json()
    props = deployment["properties"]
    assert props["model"].endswith("/models/bank-model/versions/1")
    assert props["appInsightsEnabled"] is True
    assert props["environmentVariables"] == {"SERVICE_NAME": "bank-model/blue"}
    assert "codeConfiguration" not in props or props["codeConfiguration"] is None
    assert endpoint_put[-1].json()["properties"]["traffic"] == {"blue": 100}

    # Keys, then a score in the shape the deployment accepts.
    primary, secondary = h.ws.endpoints.keys("bank-model")
    assert (primary, secondary) == h.service.keys
    h.service.scoring = ScoringEndpoint("mlflow", COLUMNS, h.service.keys, signal="balance")
    records = [
        {"age": 41, "job": "admin", "balance": 820.0},
        {"age": 30, "job": "services", "balance": 10.0},
    ]
    result = score(
        live.scoring_uri,
        primary,
        records,
        shape=live.request_shape,
        session=requests_session(h.service),
    )
    assert result.predictions == ["yes", "no"]
    assert h.service.scoring.bodies[-1]["input_data"]["columns"] == COLUMNS

    # Logs: one KQL query to the Log Analytics workspace, rows back as a frame.
    h.service.log_tables = lambda _query: [
        {
            "TimeGenerated": "2025-03-01T10:00:00.5Z",
            "OperationId": "op-1",
            "Name": "/score",
            "Url": live.scoring_uri,
            "ResultCode": "200",
            "DurationMs": 12.5,
            "Success": True,
            "Endpoint": "bank-model",
            "ModelVersion": "",
            "Rows": None,
        }
    ]
    frame = h.ws.telemetry.requests(TelemetryQuery.last(timedelta(hours=1), "bank-model"))
    assert frame["ResultCode"].tolist() == ["200"] and frame["DurationMs"].tolist() == [12.5]
    sent = h.transport.requests_to("api.loganalytics.io")[-1]
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert '| where Endpoint == "bank-model"' in sent.json()["query"]
    assert h.service.unexpected == []


def test_best_model_details_read_the_trial_artifacts(azure_http: HttpWorkspace) -> None:
    h = azure_http
    job = upload_and_submit(h)
    record_trials(h, job.id)
    confusion = {"data": {"class_labels": ["no", "yes"], "matrix": [[80, 5], [7, 28]]}}
    h.service.artifacts[(f"{job.id}_2", "confusion_matrix")] = _json(confusion)
    details = h.ws.automl.details(job.id)
    assert details["best_estimator"] == "VotingEnsemble"
    assert details["confusion"] == {"labels": ["no", "yes"], "matrix": [[80, 5], [7, 28]]}
    assert details["roc"] == []  # no accuracy_table was logged: no curve, no error
    content = sent_to(h, "GET", "/artifacts/contentinfo")
    assert {s.query["path"] for s in content} == {"confusion_matrix", "accuracy_table"}
    storage = [s for s in h.transport.sent if "/ExperimentRun/" in s.path]
    # The pre-signed storage URL is fetched without the user's token.
    assert storage and all("Authorization" not in s.headers for s in storage)


def test_a_job_the_sdk_cannot_parse_is_skipped(azure_http: HttpWorkspace) -> None:
    h = azure_http
    job = upload_and_submit(h)
    h.service.put(
        f"{WORKSPACE_PATH}/jobs/from-the-future",
        "jobs",
        # An AutoML job whose task the SDK cannot load: jobs.list() yields None for it.
        {"jobType": "AutoML", "status": "Running", "taskDetails": {"taskType": "Unheard"}},
    )
    assert [j.id for j in h.ws.automl.jobs()] == [job.id]
    assert job.id in [j.id for j in h.ws.compute.jobs()]
    assert "from-the-future" not in [j.id for j in h.ws.compute.jobs()]


def test_a_racing_upload_takes_the_next_version(azure_http: HttpWorkspace) -> None:
    h = azure_http
    h.ws.datasets.upload("bank", bank_csv(sep=","), "bank.csv")
    real_list = h.service.arm_data

    def hide_v1_once(sent: Sent, base: str, parts: list[str]) -> Any:
        # The version listing misses v1, as when another upload registers it in between.
        if sent.method == "GET" and parts == ["bank", "versions"] and not hidden:
            hidden.append(True)
            return h.service.arm_data(sent, base, ["nothing-here", "versions"])
        return real_list(sent, base, parts)

    hidden: list[bool] = []
    h.service.arm_data = hide_v1_once  # type: ignore[method-assign]
    dv = h.ws.datasets.upload("bank", bank_csv(rows=60, sep=","), "bank.csv")
    assert dv.version == 2
    refused = sent_to(h, "PUT", "/data/bank/versions/1")
    assert len(refused) == 2  # the first registration, then the refused racing one


def test_sign_in_failure_at_the_first_call_says_how_to_sign_in(
    azure_http: HttpWorkspace,
) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    def no_token(*_: Any, **__: Any) -> Any:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    azure_http.credential.get_token = no_token  # type: ignore[method-assign]
    azure_http.credential.get_token_info = no_token  # type: ignore[method-assign]
    with pytest.raises(WorkspaceError, match="az login"):
        azure_http.ws.datasets.list()
    with pytest.raises(WorkspaceError, match="az login"):
        azure_http.ws.telemetry.requests(TelemetryQuery.last(timedelta(hours=1)))


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()
