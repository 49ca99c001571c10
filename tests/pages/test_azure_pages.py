"""Every page on the Azure backend, with Azure replaced at the HTTP transport.

The app runs as configured from `AZURE_*` variables; only the last hop changes: every SDK client
(MLClient, MLflow tracking, blob storage, LogsQueryClient) sends through one fake transport to
`tests.support.azure_service`, and scoring requests go to Azure's MLflow scoring-script contract
(`tests.support.azure_serving`). So each page exercises the SDKs' own request building and
response parsing for the calls it makes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import requests

import lib.azure.workspace as azure_workspace
from lib.workspace import AutoMLRequest, Workspace
from tests.pages.conftest import button, open_page
from tests.support.azure_fakes_automl import bank_csv
from tests.support.azure_service import (
    LA_WORKSPACE,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    FakeAzureML,
)
from tests.support.azure_serving import ScoringEndpoint
from tests.support.azure_transport import (
    FakeCredential,
    FakeTransport,
    HandlerAdapter,
    Sent,
    route_storage_through,
)
from tests.support.waiting import wait_for

COLUMNS = ["age", "job", "balance"]


@dataclass
class AzureHttp:
    service: FakeAzureML
    transport: FakeTransport
    scoring: HandlerAdapter

    def sent(self, method: str, path_part: str) -> list[Sent]:
        return [s for s in self.transport.sent if s.method == method and path_part in s.path]


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> AzureHttp:
    """The app on the Azure backend, with Azure behind a fake transport."""
    service = FakeAzureML()
    transport = FakeTransport(service)
    credential = FakeCredential()
    route_storage_through(transport, monkeypatch)
    monkeypatch.delenv("OPSDECK_BACKEND", raising=False)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", RESOURCE_GROUP)
    monkeypatch.setenv("AZURE_ML_WORKSPACE", WORKSPACE)
    monkeypatch.setenv("AZURE_LOG_ANALYTICS_WORKSPACE_ID", LA_WORKSPACE)
    real = azure_workspace.open_azure_workspace
    monkeypatch.setattr(
        azure_workspace,
        "open_azure_workspace",
        lambda settings: real(
            settings, credential_factory=lambda _config: credential, transport=transport
        ),
    )
    # lib.scoring speaks plain `requests`: the endpoints' scoring URIs answer from the fake too.
    scoring = HandlerAdapter(service)
    real_adapter = requests.Session.get_adapter

    def adapter_for(session: requests.Session, url: str) -> Any:
        if ".inference.ml.azure.com" in url:
            return scoring
        return real_adapter(session, url)

    monkeypatch.setattr(requests.Session, "get_adapter", adapter_for)
    from lib.ui import _open_workspace

    _open_workspace.clear()
    yield AzureHttp(service, transport, scoring)
    _open_workspace.clear()


def workspace() -> Workspace:
    from lib.ui import workspace as ui_workspace

    return ui_workspace()


def completed_job(azure: AzureHttp) -> str:
    """A dataset, an AutoML job run to completion and its recorded trials."""
    azure.service.add_cluster("cpu-cluster")
    ws = workspace()
    ws.datasets.upload("bank", bank_csv(sep=","), "bank.csv", "Bank marketing sample")
    job = ws.automl.submit(
        AutoMLRequest(dataset="bank", dataset_version=1, target="y", compute="cpu-cluster")
    )
    azure.service.set_job_status(job.id, "Completed")
    azure.service.add_run(job.id, tags={"automl_best_child_run_id": f"{job.id}_1"})
    for i, (algorithm, auc) in enumerate([("LightGBM", 0.91), ("VotingEnsemble", 0.94)]):
        azure.service.add_run(
            f"{job.id}_{i}",
            parent=job.id,
            metrics={"AUC_weighted": auc, "accuracy": auc - 0.02},
            tags={"run_algorithm": algorithm, "iteration": str(i)},
        )
    return job.id


def live_endpoint(azure: AzureHttp) -> str:
    """A registered model deployed to an endpoint that has finished provisioning."""
    job_id = completed_job(azure)
    ws = workspace()
    model, endpoint = ws.register_and_deploy(job_id, "bank-model")
    wait_for(lambda: ws.endpoints.get(endpoint.name).state == "Succeeded", timeout=20)
    azure.service.scoring = ScoringEndpoint("mlflow", COLUMNS, azure.service.keys, "balance")
    return endpoint.name


def test_sidebar_says_azure_and_why(azure: AzureHttp) -> None:
    at = open_page()
    text = " ".join(m.value for m in at.sidebar.markdown) + " ".join(
        c.value for c in at.sidebar.caption
    )
    assert "Azure ML" in text
    assert "AZURE_* environment variables" in text
    assert azure.service.unexpected == []


def test_home_shows_the_workspace(azure: AzureHttp) -> None:
    live_endpoint(azure)
    at = open_page()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == []
    page_text = " ".join(m.value for m in at.markdown) + " ".join(str(m.value) for m in at.metric)
    assert "bank-model" in page_text
    assert azure.service.unexpected == []


def test_home_says_when_azure_cannot_be_reached(azure: AzureHttp, monkeypatch) -> None:
    from azure.core.exceptions import ServiceRequestError

    def unreachable(_sent: Sent) -> Any:
        raise ServiceRequestError("Failed to resolve 'management.azure.com'")

    monkeypatch.setattr(azure.transport, "handler", unreachable)
    at = open_page()
    assert not at.exception
    assert any("Could not reach Azure" in e.value for e in at.error)


def test_datasets_upload_on_azure(azure: AzureHttp) -> None:
    at = open_page("datasets.py")
    at.file_uploader(key="datasets_upload").set_value(
        ("p.csv", b"a,b,y\n1,2,no\n3,4,yes\n", "text/csv")
    )
    button(at, "Register dataset").click().run()
    assert not at.exception, at.exception
    assert any("Registered **p v1**" in s.value for s in at.success)
    put = azure.sent("PUT", "/data/p/versions/1")[0].json()["properties"]
    assert put["dataType"] == "uri_file" and put["dataUri"].endswith("/p.csv")
    assert azure.service.unexpected == []


def test_compute_page_lists_and_creates_clusters(azure: AzureHttp) -> None:
    azure.service.add_cluster("cpu-cluster", max_nodes=4)
    at = open_page("compute.py")
    assert not at.exception, at.exception
    assert any("cpu-cluster" in h.value for h in at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Min / max"] == "0 / 4"
    at.text_input(key="compute_new_name").set_value("gpu-2")
    button(at, "Create cluster").click().run()
    assert not at.exception, at.exception
    created = azure.sent("PUT", "/computes/gpu-2")[0].json()["properties"]
    assert created["computeType"] == "AmlCompute"
    assert any("gpu-2" in s.label for s in at.status)
    assert azure.service.unexpected == []


def test_automl_submit_on_azure_builds_a_job_on_the_chosen_cluster(azure: AzureHttp) -> None:
    azure.service.add_cluster("cpu-cluster", max_nodes=2)
    rows = b"".join(
        f"{20 + i % 40};j{i % 3};{'yes' if i % 3 else 'no'}\n".encode() for i in range(120)
    )
    workspace().datasets.upload("bank", b"age;job;y\n" + rows, "bank.csv")
    at = open_page("automl.py")
    assert at.selectbox(key="automl_compute").value == "cpu-cluster"
    button(at, "Submit AutoML run").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == []
    job = azure.sent("PUT", "/jobs/")[0].json()["properties"]
    assert job["jobType"] == "AutoML" and job["computeId"].endswith("/computes/cpu-cluster")
    assert job["taskDetails"]["targetColumnName"] == "y"
    assert azure.service.unexpected == []


def test_automl_leaderboard_and_register_on_azure(azure: AzureHttp) -> None:
    job_id = completed_job(azure)
    at = open_page("automl.py")
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == []
    board = at.dataframe(key="automl_leaderboard").value
    assert board["estimator"].tolist()[0] == "VotingEnsemble"
    button(at, "Register model").click().run()
    assert not at.exception, at.exception
    assert any("Registered **" in s.value for s in at.success)
    model = azure.sent("PUT", "/versions/1")[-1].json()["properties"]
    assert model["modelType"] == "mlflow_model"
    assert model["modelUri"].startswith(f"azureml://jobs/{job_id}_1/outputs/artifacts/")
    assert azure.service.unexpected == []


def test_models_page_lists_the_registered_model(azure: AzureHttp) -> None:
    job_id = completed_job(azure)
    workspace().models.register(job_id, "bank-model")
    at = open_page("models.py")
    assert not at.exception, at.exception
    table = at.dataframe(key="models_table").value
    assert "bank-model" in table.to_string()
    assert azure.service.unexpected == []


def test_endpoints_page_shows_the_live_endpoint(azure: AzureHttp) -> None:
    live_endpoint(azure)
    at = open_page("endpoints.py")
    assert not at.exception, at.exception
    table = at.dataframe(key="endpoints_table").value
    assert "bank-model" in table.to_string()
    assert azure.service.unexpected == []


def test_score_page_sends_what_the_mlflow_deployment_accepts(azure: AzureHttp) -> None:
    live_endpoint(azure)
    at = open_page("score.py")
    assert not at.exception, at.exception
    assert any("labels only" in c.value for c in at.caption)
    body = json.loads(at.text_area(key="score_json").value)
    assert set(body) == {"input_data"}
    at.number_input(key="score_f_balance").set_value(900.0)
    at.button(key="FormSubmitter:score_form-Score").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == []
    assert {m.label: m.value for m in at.metric}["Prediction"] == "yes"
    sent = azure.service.scoring.bodies[-1]
    assert set(sent) == {"input_data"} and sent["input_data"]["columns"] == COLUMNS
    assert azure.scoring.sent[-1].headers["Authorization"] == "Bearer primary-key-0000"


def test_logs_page_on_azure_reads_aggregates_from_log_analytics(azure: AzureHttp) -> None:
    answers = {
        "| project Requests, Failed, MeanMs": [
            {"Requests": 4, "Failed": 1, "MeanMs": 11.5, "p50": 10.0, "p95": 13.0, "p99": 13.0}
        ],
        "| order by Requests desc": [
            {"ResultCode": "200", "Requests": 3},
            {"ResultCode": "500", "Requests": 1},
        ],
    }

    def answer(query: str) -> list[dict[str, Any]]:
        return next((rows for marker, rows in answers.items() if marker in query), [])

    azure.service.log_tables = answer  # type: ignore[method-assign]
    at = open_page("logs.py")
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == []
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "4"
    queries = [q["query"] for q in azure.service.log_queries]
    assert all(q.startswith(("AppRequests\n", "AppTraces\n")) for q in queries)
    assert any("percentiles(DurationMs, 50, 95, 99)" in q for q in queries)
    # Raw tables are limited pages, never the whole window.
    raw = [q for q in queries if "| summarize" not in q]
    assert raw and all("| top " in q for q in raw)
    # The Query tab shows KQL, not SQL.
    assert any(c.value.startswith("AppRequests") for c in at.code)
    assert azure.service.unexpected == []


def test_benchmarks_page_offers_the_azure_endpoint(azure: AzureHttp) -> None:
    live_endpoint(azure)
    at = open_page("benchmarks.py")
    assert not at.exception, at.exception
    assert at.selectbox(key="bench_target").value == "bank-model"
    assert any(".inference.ml.azure.com/score" in c.value for c in at.caption)
    assert azure.service.unexpected == []


def test_pipelines_page_renders_on_azure(azure: AzureHttp) -> None:
    workspace().datasets.upload("bank", bank_csv(sep=","), "bank.csv")
    at = open_page("pipelines.py")
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == []
    assert azure.service.unexpected == []
