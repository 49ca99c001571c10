"""The workspace's MLflow tracking over REST (`WorkspaceTracking`), at the HTTP transport."""

from __future__ import annotations

import pytest

from lib.azure.automl.tracking import ML_SCOPE, WorkspaceTracking, parent_and_trials, rest_base
from lib.workspace import WorkspaceError
from tests.support.azure_service import TRACKING_URI, WORKSPACE_PATH, FakeAzureML
from tests.support.azure_transport import TOKEN, FakeCredential, FakeTransport, Reply


@pytest.fixture
def service() -> FakeAzureML:
    return FakeAzureML()


def tracking(service: FakeAzureML) -> tuple[WorkspaceTracking, FakeTransport, FakeCredential]:
    transport, credential = FakeTransport(service), FakeCredential()
    return WorkspaceTracking.connect(TRACKING_URI, credential, transport), transport, credential


def test_the_tracking_uri_becomes_the_rest_base() -> None:
    assert (
        rest_base(TRACKING_URI) == f"https://westeurope.api.azureml.ms/mlflow/v1.0{WORKSPACE_PATH}"
    )
    with pytest.raises(WorkspaceError, match="cannot read"):
        rest_base("file:///tmp/mlruns")


def test_runs_are_mlflow_entities_signed_in_for_azure_ml(service: FakeAzureML) -> None:
    service.add_run("job1", tags={"automl_best_child_run_id": "job1_0"})
    service.add_run(
        "job1_0", parent="job1", metrics={"AUC_weighted": 0.93}, tags={"iteration": "0"}
    )
    client, transport, credential = tracking(service)
    parent, trials = parent_and_trials(client, "job1")
    assert parent.data.tags["automl_best_child_run_id"] == "job1_0"
    assert [(n, r.data.metrics["AUC_weighted"]) for n, r in trials] == [(0, 0.93)]
    assert all(s.headers["Authorization"] == f"Bearer {TOKEN}" for s in transport.sent)
    assert credential.scopes == [(ML_SCOPE,)]  # one token, reused


def test_search_follows_the_server_pages(service: FakeAzureML) -> None:
    service.add_run("job1")
    for i in range(7):
        service.add_run(f"job1_{i}", parent="job1")
    client, transport, _ = tracking(service)
    runs = client.search_runs(["7"], "tags.mlflow.parentRunId = 'job1'", max_results=5)
    assert len(runs) == 5
    all_runs = client.search_runs(["7"], "tags.mlflow.parentRunId = 'job1'")
    assert sorted(r.info.run_id for r in all_runs) == sorted(f"job1_{i}" for i in range(7))
    # Pages of at most 500 were asked for; the fake's paging is driven by the page token.
    bodies = [s.json() for s in transport.sent if s.path.endswith("/runs/search")]
    assert bodies[0]["max_results"] == 5 and "page_token" not in bodies[0]


def test_paging_with_a_small_page(service: FakeAzureML, monkeypatch) -> None:  # noqa: ANN001
    import lib.azure.automl.tracking as tracking_module

    monkeypatch.setattr(tracking_module, "SEARCH_PAGE", 3)
    service.add_run("job1")
    for i in range(7):
        service.add_run(f"job1_{i}", parent="job1")
    client, transport, _ = tracking(service)
    runs = client.search_runs(["7"], "tags.mlflow.parentRunId = 'job1'")
    assert len(runs) == 7
    tokens = [s.json().get("page_token") for s in transport.sent if s.path.endswith("/search")]
    assert tokens == [None, "3", "6"]


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (
            Reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run 'x' not found"}),
            "HTTP 404, RESOURCE_DOES_NOT_EXIST.*Run 'x' not found",
        ),
        (Reply(403, {}), "HTTP 403.*may not read"),
        (Reply(400, b"bad filter syntax"), "HTTP 400.*bad filter syntax"),
    ],
)
def test_tracking_errors_carry_the_server_message(reply: Reply, words: str) -> None:
    transport = FakeTransport(lambda _sent: reply)
    client = WorkspaceTracking.connect(TRACKING_URI, FakeCredential(), transport)
    with pytest.raises(WorkspaceError, match=words):
        client.get_run("x")


def test_an_artifact_that_was_not_logged_is_none(service: FakeAzureML) -> None:
    from lib.azure.automl.tracking import json_artifact

    service.add_run("job1_0")
    client, _, _ = tracking(service)
    assert json_artifact(client, "job1_0", "accuracy_table") is None
    service.artifacts[("job1_0", "accuracy_table")] = b'{"data": {"class_labels": ["a"]}}'
    assert json_artifact(client, "job1_0", "accuracy_table") == {"data": {"class_labels": ["a"]}}
