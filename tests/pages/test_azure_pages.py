"""Pages on the Azure backend: MLClient replaced at its operations (tests/support fakes)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.ai.ml.entities import AmlCompute

import lib.azure.workspace as azure_workspace
from tests.pages.conftest import button, open_page
from tests.support.azure_fakes import new_fake_client
from tests.support.azure_fakes_logs import FakeLogsClient

LA_WORKSPACE = "11111111-2222-3333-4444-555555555555"
LOGGED_REQUESTS = [
    {
        "TimeGenerated": "2025-03-01T10:00:00Z",
        "OperationId": f"op{i}",
        "Name": "/score",
        "Url": "https://ep-bank.westeurope.inference.ml.azure.com/score",
        "ResultCode": "500" if i == 0 else "200",
        "DurationMs": 10.0 + i,
        "Success": i != 0,
        "Endpoint": "ep-bank",
    }
    for i in range(4)
]


@pytest.fixture
def azure_backend(monkeypatch):
    """Settings that pick Azure, and a workspace whose MLClient is the fake."""
    fake_client = new_fake_client()
    monkeypatch.delenv("OPSDECK_BACKEND", raising=False)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "rg")
    monkeypatch.setenv("AZURE_ML_WORKSPACE", "ws")
    monkeypatch.setenv("AZURE_LOG_ANALYTICS_WORKSPACE_ID", LA_WORKSPACE)
    fake_client.logs = FakeLogsClient(LOGGED_REQUESTS)
    real = azure_workspace.open_azure_workspace
    monkeypatch.setattr(
        azure_workspace,
        "open_azure_workspace",
        lambda settings: real(
            settings,
            ml_client=fake_client,
            fetch_bytes=fake_client.datastore.fetch,
            logs_client=lambda _config: fake_client.logs,
        ),
    )
    from lib.ui import _open_workspace

    _open_workspace.clear()
    yield fake_client
    _open_workspace.clear()


def test_sidebar_says_azure_and_why(azure_backend) -> None:
    at = open_page()
    text = " ".join(m.value for m in at.sidebar.markdown) + " ".join(
        c.value for c in at.sidebar.caption
    )
    assert "Azure ML" in text
    assert "AZURE_* environment variables" in text


def test_datasets_upload_on_azure(azure_backend) -> None:
    at = open_page("datasets.py")
    at.file_uploader(key="datasets_upload").set_value(
        ("p.csv", b"a,b,y\n1,2,no\n3,4,yes\n", "text/csv")
    )
    button(at, "Register dataset").click().run()
    assert not at.exception
    assert any("Registered **p v1**" in s.value for s in at.success)
    assert [d.type for d in azure_backend.data.received] == ["uri_file"]


def test_compute_page_lists_and_creates_clusters(azure_backend) -> None:
    azure_backend.compute.add(
        AmlCompute(name="cpu-cluster", size="STANDARD_DS3_V2", min_instances=0, max_instances=4),
        nodes=["running"],
    )
    at = open_page("compute.py")
    assert not at.exception
    assert any("cpu-cluster" in h.value for h in at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Min / max"] == "0 / 4"
    at.text_input(key="compute_new_name").set_value("gpu-2")
    button(at, "Create cluster").click().run()
    assert not at.exception
    assert "gpu-2" in azure_backend.compute.entities
    assert any("gpu-2" in s.label for s in at.status)


def test_automl_submit_on_azure_builds_a_job_on_the_chosen_cluster(azure_backend) -> None:
    azure_backend.compute.add(
        AmlCompute(name="cpu-cluster", size="STANDARD_DS3_V2", min_instances=0, max_instances=2)
    )
    rows = b"".join(
        f"{20 + i % 40};j{i % 3};{'yes' if i % 3 else 'no'}\n".encode() for i in range(120)
    )
    at = open_page("datasets.py")
    at.file_uploader(key="datasets_upload").set_value(
        ("bank.csv", b"age;job;y\n" + rows, "text/csv")
    )
    button(at, "Register dataset").click().run()
    assert not at.exception
    at = open_page("automl.py")
    assert at.selectbox(key="automl_compute").value == "cpu-cluster"
    button(at, "Submit AutoML run").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == []
    # Without azureml-mlflow the trials cannot be read: the page says so instead of failing.
    assert any("azureml-mlflow" in w.value for w in at.warning)
    job = azure_backend.jobs.received[-1]
    assert job.type == "automl" and job.compute == "cpu-cluster"
    assert job.target_column_name == "y"


def test_home_says_when_azure_cannot_be_reached(azure_backend, monkeypatch) -> None:
    from lib.workspace import WorkspaceError

    def unreachable(*_, **__):
        raise WorkspaceError("Azure ML cannot be reached (ServiceRequestError).")

    monkeypatch.setattr(azure_backend.data, "list", unreachable)
    at = open_page()
    assert not at.exception
    assert any("cannot be reached" in e.value for e in at.error)


def test_logs_page_on_azure_reads_log_analytics(azure_backend) -> None:
    at = open_page("logs.py")
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == []
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "4" and metrics["Failed"] == "1"
    queries = [q for _, q, _ in azure_backend.logs.calls]
    assert [q.splitlines()[0] for q in queries] == ["AppRequests", "AppTraces"]
    assert "| top 200 by TimeGenerated desc" in queries[1]
    # The Query tab shows the KQL that was sent.
    assert queries[0] in [c.value for c in at.code]
    start, end = azure_backend.logs.calls[0][2]
    assert end - start == timedelta(hours=1)
