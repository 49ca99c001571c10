"""One contract, two backends: the same service assertions on the local and the Azure workspace.

The local workspace is the real one on this test's home; the Azure workspace is the real one
with Azure replaced at the HTTP transport (`tests.support.azure_service`), so the SDKs build and
parse every request. Both are opened through the composition root, `lib.backend.open_workspace`.
Only what both do quickly is covered here: no training, no processes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import lib.azure.workspace as azure_workspace
from lib.appinsights import TelemetryQuery
from lib.backend import open_workspace
from lib.workspace import (
    AutoMLRequest,
    AutoMLService,
    BenchmarkService,
    ComputeService,
    DatasetService,
    EndpointService,
    ModelService,
    MonitoringService,
    PipelineService,
    TelemetryService,
    Workspace,
    WorkspaceError,
)
from tests.support.azure_fakes_automl import bank_csv
from tests.support.azure_service import (
    LA_WORKSPACE,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    FakeAzureML,
)
from tests.support.azure_transport import FakeCredential, FakeTransport, route_storage_through

# Missing values three ways: an empty numeric cell, an empty text cell and an "NA" token.
SMALL_CSV = b"age,job,balance,y\n30,admin,100,no\n41,,2500.5,yes\n,tech,-20,no\n52,admin,NA,yes\n"
COLUMNS = ["age", "job", "balance", "y"]

PROTOCOLS = {
    "datasets": DatasetService,
    "compute": ComputeService,
    "automl": AutoMLService,
    "models": ModelService,
    "endpoints": EndpointService,
    "benchmarks": BenchmarkService,
    "telemetry": TelemetryService,
    "pipelines": PipelineService,
    "monitoring": MonitoringService,
}
# Every backend offers these; the others may be None.
REQUIRED = ("datasets", "compute", "automl", "models", "endpoints", "benchmarks", "telemetry")


@dataclass
class Backend:
    """A workspace and the compute an AutoML request names on it."""

    ws: Workspace
    compute: str


@pytest.fixture(params=["local", "azure"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """The workspace `open_workspace` opens from the environment, on each backend."""
    if request.param == "local":
        yield Backend(open_workspace(), compute="local")
        return
    service = FakeAzureML()
    service.add_cluster("cpu-cluster")
    transport = FakeTransport(service)
    credential = FakeCredential()
    route_storage_through(transport, monkeypatch)
    monkeypatch.setenv("OPSDECK_BACKEND", "azure")
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
    yield Backend(open_workspace(), compute="cpu-cluster")


def test_the_composition_root_opens_the_configured_backend(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    assert backend.ws.kind == request.node.callspec.params["backend"]


def test_every_service_satisfies_its_protocol(backend: Backend) -> None:
    for name in REQUIRED:
        assert getattr(backend.ws, name) is not None, f"{backend.ws.kind} has no {name} service"
    for name, protocol in PROTOCOLS.items():
        service = getattr(backend.ws, name)
        if service is not None:
            assert isinstance(service, protocol), f"{backend.ws.kind} {name} is not a {protocol}"


def test_a_dataset_round_trip(backend: Backend) -> None:
    datasets = backend.ws.datasets
    v1 = datasets.upload("bank", SMALL_CSV, "bank.csv", "first")
    assert (v1.name, v1.version, v1.rows, v1.columns) == ("bank", 1, 4, 4)
    assert (v1.file_name, v1.file_format, v1.column_names) == ("bank.csv", "csv", COLUMNS)
    assert v1.size_bytes == len(SMALL_CSV)
    v2 = datasets.upload("bank", SMALL_CSV + b"60,tech,5,no\n", "bank.csv", "second")
    assert (v2.version, v2.rows) == (2, 5)

    [listed] = datasets.list()
    assert (listed.name, listed.latest_version, listed.versions) == ("bank", 2, 2)
    assert (listed.rows, listed.columns, listed.description) == (5, 4, "second")
    assert [v.version for v in datasets.versions("bank")] == [2, 1]
    assert datasets.get("bank").version == 2
    assert (datasets.get("bank", 1).rows, datasets.get("bank", 1).description) == (4, "first")
    assert datasets.download("bank", 1) == ("bank.csv", SMALL_CSV)

    preview = datasets.preview("bank", 1, rows=2)
    expected = pd.DataFrame(
        {
            "age": [30.0, 41.0],
            "job": ["admin", None],
            "balance": [100.0, 2500.5],
            "y": ["no", "yes"],
        }
    )
    assert list(preview.columns) == COLUMNS
    assert preview["age"].tolist() == expected["age"].tolist()
    assert preview["balance"].tolist() == expected["balance"].tolist()
    assert preview["y"].tolist() == expected["y"].tolist()
    assert preview["job"].iloc[0] == "admin" and pd.isna(preview["job"].iloc[1])


def test_the_profile_agrees_on_columns_kinds_and_missing_values(backend: Backend) -> None:
    backend.ws.datasets.upload("bank", SMALL_CSV, "bank.csv")
    profile = backend.ws.datasets.profile("bank").set_index("column")
    assert list(profile.index) == COLUMNS
    assert profile["kind"].to_dict() == {
        "age": "numeric",
        "job": "text",
        "balance": "numeric",
        "y": "text",
    }
    assert profile["missing_pct"].to_dict() == {"age": 25.0, "job": 25.0, "balance": 25.0, "y": 0.0}
    assert (profile.loc["balance", "min"], profile.loc["balance", "max"]) == (-20.0, 2500.5)


@pytest.mark.parametrize("name", ["bad name", "", "-leading-dash", "a" * 101, "ünïcode"])
def test_a_bad_dataset_name_is_refused_with_the_rule(backend: Backend, name: str) -> None:
    with pytest.raises(WorkspaceError, match="Dataset name must start with a letter or digit"):
        backend.ws.datasets.upload(name, SMALL_CSV, "bank.csv")
    assert backend.ws.datasets.list() == []


def test_a_missing_dataset_is_a_workspace_error(backend: Backend) -> None:
    backend.ws.datasets.upload("bank", SMALL_CSV, "bank.csv")
    with pytest.raises(WorkspaceError):
        backend.ws.datasets.get("bank", 7)
    with pytest.raises(WorkspaceError):
        backend.ws.datasets.get("nothing-here")


def test_automl_validation_names_the_same_problems(backend: Backend) -> None:
    backend.ws.datasets.upload("bank", bank_csv(sep=","), "bank.csv")
    good = AutoMLRequest(dataset="bank", dataset_version=1, target="y", compute=backend.compute)
    assert backend.ws.automl.validate(good) == []

    no_target = AutoMLRequest(
        dataset="bank", dataset_version=1, target="nope", compute=backend.compute
    )
    assert backend.ws.automl.validate(no_target) == ["Target column 'nope' is not in the dataset."]
    wrong_metric = AutoMLRequest(
        dataset="bank",
        dataset_version=1,
        target="y",
        primary_metric="r2_score",
        compute=backend.compute,
    )
    # The shared rule comes first; Azure may add why its own service refuses the metric.
    problems = backend.ws.automl.validate(wrong_metric)
    assert problems[0].startswith("r2_score is not a classification metric"), problems
    with pytest.raises(WorkspaceError, match="Target column 'nope'"):
        backend.ws.automl.submit(no_target)
    assert backend.ws.automl.jobs() == []


def test_automl_validation_of_a_missing_dataset_is_a_problem_not_a_crash(backend: Backend) -> None:
    request = AutoMLRequest(dataset="ghost", dataset_version=1, target="y", compute=backend.compute)
    problems = backend.ws.automl.validate(request)
    assert problems and "ghost" in problems[0]


def test_telemetry_query_text_shows_the_query(backend: Backend) -> None:
    until = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    query = TelemetryQuery(
        endpoint="bank-ep", since=until - timedelta(hours=1), until=until, limit=7
    )
    requests_text = backend.ws.telemetry.query_text("requests", query)
    assert "AppRequests" in requests_text and "bank-ep" in requests_text
    assert re.search(r"\b7\b", requests_text), requests_text  # the limit
    traces_text = backend.ws.telemetry.query_text("traces", None)
    assert "AppTraces" in traces_text and "bank-ep" not in traces_text
    with pytest.raises(ValueError, match="unknown telemetry kind"):
        backend.ws.telemetry.query_text("metrics", query)
