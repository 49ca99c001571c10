"""Azure telemetry: KQL builders, result tables to frames, and error mapping, all offline.

`LogsQueryClient` is replaced at its boundary by `FakeLogsClient`, which answers with the SDK's own
result objects. The last group drives the real `LogsQueryClient` through a fake HTTP transport, so
the SDK itself parses the service's JSON answers and error bodies (fakes in tests/support).
"""

from __future__ import annotations

import inspect
import json
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.monitor.query import (
    LogsQueryClient,
    LogsQueryError,
    LogsQueryPartialResult,
    LogsQueryResult,
    LogsQueryStatus,
)

from lib.appinsights import REQUEST_COLUMNS, TRACE_COLUMNS, TelemetryQuery
from lib.azure import telemetry as tm
from lib.azure.telemetry import AzureTelemetry, kql, kql_string
from lib.local.telemetry import (
    RequestRecord,
    TelemetryWriter,
    read_requests,
    read_traces,
)
from lib.settings import AzureConfig
from lib.workspace import TelemetryService, WorkspaceError
from tests.support.azure_fakes_logs import (
    FakeCredential,
    FakeLogsClient,
    LogAnalyticsAdapter,
    projected_columns,
    wire_table,
)

LA_WORKSPACE = "11111111-2222-3333-4444-555555555555"
CONFIG = AzureConfig(
    subscription_id="00000000-0000-0000-0000-000000000000",
    resource_group="rg-opsdeck",
    workspace_name="ws-opsdeck",
    log_analytics_workspace_id=LA_WORKSPACE,
)
REQUEST_ROWS = [
    {
        "TimeGenerated": "2025-03-01T10:00:00.1234567Z",
        "OperationId": "a1",
        "Name": "/score",
        "Url": "https://ep-bank.westeurope.inference.ml.azure.com/score",
        "ResultCode": "200",
        "DurationMs": 41.5,
        "Success": True,
        "Endpoint": "ep-bank",
        "Deployment": "green",
        "ModelVersion": "",
        "Rows": None,
    },
    {
        "TimeGenerated": "2025-03-01T10:00:01Z",
        "OperationId": "a2",
        "Name": "/score",
        "Url": "https://ep-bank.westeurope.inference.ml.azure.com/score",
        "ResultCode": "422",
        "DurationMs": 3,
        "Success": None,
        "Endpoint": "ep-bank",
        # A server that named no deployment (`SERVICE_NAME` without "/"): KQL's tostring(null).
        "Deployment": "",
        "ModelVersion": "",
        "Rows": None,
    },
]
TRACE_ROWS = [
    {
        "TimeGenerated": "2025-03-01T10:00:00Z",
        "Message": "00000000-0000-0000-0000-000000000000,Model loaded",
        "SeverityLevel": 1,
        "Endpoint": "ep-bank",
    },
    {
        "TimeGenerated": "2025-03-01T10:00:02Z",
        "Message": "a2,Input has 3 unknown columns",
        "SeverityLevel": 3,
        "Endpoint": "ep-bank",
    },
]


def service(fake: FakeLogsClient, config: AzureConfig = CONFIG) -> AzureTelemetry:
    return AzureTelemetry(config, client_factory=lambda _config: fake)


@pytest.fixture
def local_frames(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frames from the local store, whose columns and dtypes the Azure frames must match."""
    writer = TelemetryWriter(tmp_path / "telemetry.db", endpoint="ep-bank")
    now = time.time()
    writer.record_request(
        RequestRecord(now, "op", "/score", "http://x/score", 200, 2.0, "e", "1", 3)
    )
    writer.record_request(
        RequestRecord(now, "op", "/score", "http://x/score", 500, 2.0, "e", "1", None)
    )
    writer.record_trace("hello")
    writer.close()
    return read_requests(tmp_path / "telemetry.db"), read_traces(tmp_path / "telemetry.db")


# ----------------------------------------------------------------------------- KQL


ROLE_LINES = (
    '| extend Role = coalesce(AppRoleName, tostring(Properties["Service Name"]))\n'
    '| extend Endpoint = tostring(split(Role, "/")[0]), '
    'Deployment = tostring(split(Role, "/")[1])\n'
)


def test_requests_kql_all_rows() -> None:
    assert kql("requests") == (
        "AppRequests\n"
        + ROLE_LINES
        + '| extend ResultCode = coalesce(tostring(Properties["resultCode"]), ResultCode), '
        'Success = coalesce(tobool(tostring(Properties["success"])), Success), '
        'Url = coalesce(tostring(Properties["url"]), Url), '
        'DurationMs = coalesce(totimespan(tostring(Properties["duration"])) / 1ms, DurationMs)\n'
        "| order by TimeGenerated asc\n"
        "| project TimeGenerated, OperationId, Name, Url, ResultCode, DurationMs, Success, "
        'Endpoint, Deployment, ModelVersion = "", Rows = long(null)'
    )


def test_requests_kql_endpoint_and_limit() -> None:
    lines = kql("requests", TelemetryQuery("ep-bank", limit=50)).splitlines()
    assert lines[0] == "AppRequests"
    assert lines[3] == '| where Endpoint == "ep-bank"'
    # The server's real outcome replaces the standard columns before rows are picked.
    assert lines[4].startswith("| extend ResultCode = ")
    assert lines[5:7] == ["| top 50 by TimeGenerated desc", "| order by TimeGenerated asc"]
    assert (
        projected_columns(kql("requests", TelemetryQuery("ep-bank", limit=50))) == REQUEST_COLUMNS
    )


@pytest.mark.parametrize(
    ("endpoint", "limit", "where", "top"),
    [
        (None, None, False, False),
        ("ep", None, True, False),
        (None, 10, False, True),
        ("ep", 0, True, True),
    ],
)
def test_traces_kql_combinations(
    endpoint: str | None, limit: int | None, where: bool, top: bool
) -> None:
    query = kql("traces", TelemetryQuery(endpoint, limit=limit))
    assert query.startswith("AppTraces\n" + ROLE_LINES)
    assert ("| where Endpoint == " in query) is where
    assert (f"| top {limit} by TimeGenerated desc" in query) is top
    # Newest rows are picked first, then shown oldest first.
    assert query.index("| order by TimeGenerated asc") > query.find("| top")
    assert projected_columns(query) == TRACE_COLUMNS
    assert query.endswith("| project TimeGenerated, Message, SeverityLevel, Endpoint")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown telemetry kind"):
        kql("metrics")


@pytest.mark.parametrize(
    ("name", "literal"),
    [
        ("plain-ep", '"plain-ep"'),
        ('x" or 1==1 //', '"x\\" or 1==1 //"'),
        ("back\\slash", '"back\\\\slash"'),
        ('tail\\"', '"tail\\\\\\""'),
        ("it's", '"it\'s"'),
    ],
)
def test_kql_string_escapes(name: str, literal: str) -> None:
    assert kql_string(name) == literal
    assert f"| where Endpoint == {literal}\n" in kql("requests", TelemetryQuery(name))


def kql_unquote(literal: str) -> str:
    """Read a double-quoted KQL literal back, the way Kusto does (\\\\ and \\" escapes)."""
    assert literal[0] == '"' and literal[-1] == '"'
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            out.append(body[i + 1])
            i += 2
            continue
        assert ch != '"', f"unescaped quote ends the literal early: {literal}"
        out.append(ch)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("name", ['a"b', "a\\", '\\"; AppTraces | take 1', '"""', '\\\\"\\'])
def test_kql_string_round_trips(name: str) -> None:
    assert kql_unquote(kql_string(name)) == name


@pytest.mark.parametrize("name", ["ep\nAppTraces", "ep\r", "a\tb", "nul\x00", "del\x7f"])
def test_kql_string_refuses_control_characters(name: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        kql("requests", TelemetryQuery(name))


def test_query_text_matches_builders() -> None:
    telemetry = AzureTelemetry(CONFIG, client_factory=lambda _c: FakeLogsClient())
    query = TelemetryQuery("ep", since=datetime(2025, 3, 1, tzinfo=UTC), limit=20)
    assert telemetry.query_text("requests", query) == kql("requests", query)
    assert telemetry.query_text("traces") == kql("traces")
    with pytest.raises(ValueError, match="unknown telemetry kind"):
        telemetry.query_text("metrics")


@pytest.mark.parametrize("method", ["requests", "traces", "query_text"])
def test_methods_take_what_the_protocol_declares(method: str) -> None:
    declared = inspect.signature(getattr(TelemetryService, method)).parameters
    implemented = inspect.signature(getattr(AzureTelemetry, method)).parameters
    assert list(implemented) == list(declared)


# ----------------------------------------------------------------------------- frames


def test_requests_frame_columns_and_dtypes(local_frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    fake = FakeLogsClient(REQUEST_ROWS)
    query = TelemetryQuery("ep-bank", limit=100)
    frame = service(fake).requests(query)
    assert fake.last_query == kql("requests", query)
    assert list(frame.columns) == REQUEST_COLUMNS
    pd.testing.assert_series_equal(frame.dtypes, local_frames[0].dtypes)
    assert frame["TimeGenerated"].iloc[0] == pd.Timestamp("2025-03-01T10:00:00.123456Z")
    assert frame["ResultCode"].tolist() == ["200", "422"]
    assert frame["DurationMs"].tolist() == [41.5, 3.0]
    # A null Success (outcome only in Properties, unparsed) falls back to the result code.
    assert frame["Success"].tolist() == [True, False]
    assert frame["Endpoint"].tolist() == ["ep-bank", "ep-bank"]
    assert frame["Deployment"].tolist() == ["green", ""]
    assert frame["ModelVersion"].isna().all()
    assert frame["Rows"].isna().all()
    assert "warning" not in frame.attrs


def test_traces_frame_columns_and_dtypes(local_frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    fake = FakeLogsClient(TRACE_ROWS)
    frame = service(fake).traces(TelemetryQuery("ep-bank"))
    assert fake.last_query == kql("traces", TelemetryQuery("ep-bank"))
    assert list(frame.columns) == TRACE_COLUMNS
    pd.testing.assert_series_equal(frame.dtypes, local_frames[1].dtypes)
    assert frame["SeverityLevel"].tolist() == [1, 3]
    assert frame["Message"].iloc[1] == "a2,Input has 3 unknown columns"


def test_empty_result_keeps_columns_and_dtypes(
    local_frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    telemetry = service(FakeLogsClient([]))
    requests_frame, traces_frame = telemetry.requests(), telemetry.traces()
    assert requests_frame.empty and traces_frame.empty
    pd.testing.assert_series_equal(requests_frame.dtypes, local_frames[0].dtypes)
    pd.testing.assert_series_equal(traces_frame.dtypes, local_frames[1].dtypes)


def test_result_without_tables_is_an_empty_frame() -> None:
    class NoTables(FakeLogsClient):
        def query_workspace(self, workspace_id: str, query: str, *, timespan: Any) -> Any:
            super().query_workspace(workspace_id, query, timespan=timespan)
            return LogsQueryResult()

    frame = service(NoTables()).requests()
    assert frame.empty and list(frame.columns) == REQUEST_COLUMNS


def test_partial_result_returns_data_and_warning() -> None:
    fake = FakeLogsClient(REQUEST_ROWS[:1])
    fake.partial_error = LogsQueryError(
        code="PartialError",
        message="Query result set has exceeded the internal data size limit of 64 MB",
    )
    result = fake.query_workspace(LA_WORKSPACE, kql("requests"), timespan=timedelta(hours=1))
    assert result.status == LogsQueryStatus.PARTIAL

    frame = service(fake).requests()
    assert len(frame) == 1 and frame["OperationId"].tolist() == ["a1"]
    assert frame.attrs["warning"] == (
        "Only part of the requests could be read: "
        "Query result set has exceeded the internal data size limit of 64 MB"
    )


def test_partial_result_without_data() -> None:
    class NoData(FakeLogsClient):
        def query_workspace(self, workspace_id: str, query: str, *, timespan: Any) -> Any:
            return LogsQueryPartialResult(partial_data=None, partial_error=None)

    frame = service(NoData()).traces()
    assert frame.empty and list(frame.columns) == TRACE_COLUMNS
    assert "partial" in frame.attrs["warning"]


# ----------------------------------------------------------------------------- time range


def test_timespan_passed_through() -> None:
    fake = FakeLogsClient()
    since = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    until = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    service(fake).requests(TelemetryQuery(since=since, until=until))
    workspace_id, _, span = fake.calls[-1]
    assert workspace_id == LA_WORKSPACE
    assert span == (since, until)


def test_timespan_defaults_to_last_24_hours() -> None:
    fake = FakeLogsClient()
    before = datetime.now(UTC)
    service(fake).traces()
    start, end = fake.calls[-1][2]
    assert before <= end <= datetime.now(UTC)
    assert end - start == timedelta(hours=24)


def test_timespan_normalises_to_utc() -> None:
    fake = FakeLogsClient()
    service(fake).requests(
        TelemetryQuery(since="2025-03-01T09:00:00+01:00", until=datetime(2025, 3, 1, 9, 30))
    )
    start, end = fake.calls[-1][2]
    assert start == datetime(2025, 3, 1, 8, 0, tzinfo=UTC) and start.tzinfo == UTC
    assert end == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    service(fake).requests(TelemetryQuery(until=datetime(2025, 3, 2, tzinfo=UTC)))
    assert fake.calls[-1][2] == (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))


def test_empty_range_does_not_query() -> None:
    fake = FakeLogsClient(REQUEST_ROWS)
    when = datetime(2025, 3, 1, tzinfo=UTC)
    frame = service(fake).requests(TelemetryQuery(since=when, until=when))
    assert frame.empty and fake.calls == []


# ----------------------------------------------------------------------------- configuration, errors


@pytest.mark.parametrize("workspace_id", [None, ""])
def test_missing_workspace_id_explains_configuration(workspace_id: str | None) -> None:
    built: list[AzureConfig] = []
    config = AzureConfig("sub", "rg", "ws", log_analytics_workspace_id=workspace_id)
    telemetry = AzureTelemetry(config, client_factory=lambda c: built.append(c) or FakeLogsClient())
    for read in (telemetry.requests, telemetry.traces):
        with pytest.raises(WorkspaceError) as info:
            read()
        message = str(info.value)
        assert "log_analytics_workspace_id" in message
        assert "[azure]" in message
        assert "AZURE_LOG_ANALYTICS_WORKSPACE_ID" in message
    assert built == []
    # The KQL can still be shown.
    assert telemetry.query_text("requests") == kql("requests")


def test_no_config_at_all() -> None:
    with pytest.raises(WorkspaceError, match="AZURE_LOG_ANALYTICS_WORKSPACE_ID"):
        AzureTelemetry(None).requests()


def test_query_failure_carries_service_message() -> None:
    fake = FakeLogsClient()
    error = HttpResponseError(
        message="(BadArgumentError) The request had some invalid properties",
        model=LogsQueryError(
            code="BadArgumentError",
            message="'project' operator: Failed to resolve scalar expression named 'Properties'",
        ),
    )
    error.status_code = 400
    fake.error = error
    with pytest.raises(WorkspaceError) as info:
        service(fake).requests()
    assert str(info.value) == (
        "The Log Analytics query failed (HTTP 400, BadArgumentError): "
        "'project' operator: Failed to resolve scalar expression named 'Properties'"
    )


def test_permission_and_sign_in_failures() -> None:
    fake = FakeLogsClient()
    forbidden = HttpResponseError(message="InsufficientAccessError")
    forbidden.status_code = 403
    fake.error = forbidden
    with pytest.raises(WorkspaceError, match="Log Analytics Reader"):
        service(fake).traces()
    fake.error = ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
    with pytest.raises(WorkspaceError, match="az login"):
        service(fake).traces()


def test_client_setup_failure_is_a_workspace_error() -> None:
    def broken(_config: AzureConfig) -> Any:
        raise ClientAuthenticationError("no credential available")

    with pytest.raises(WorkspaceError, match="Could not sign in"):
        AzureTelemetry(CONFIG, client_factory=broken).requests()


def test_client_built_lazily_once() -> None:
    built: list[AzureConfig] = []
    fake = FakeLogsClient()

    def factory(config: AzureConfig) -> FakeLogsClient:
        built.append(config)
        return fake

    telemetry = AzureTelemetry(CONFIG, client_factory=factory)
    assert built == []
    telemetry.requests()
    telemetry.traces()
    assert built == [CONFIG] and len(fake.calls) == 2


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.usefixtures("no_network")
def test_construction_touches_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    real_build = tm.build_logs_client
    monkeypatch.setattr(tm, "build_logs_client", lambda c: built.append(c) or real_build(c))
    telemetry = AzureTelemetry(CONFIG)
    assert telemetry.query_text("traces", TelemetryQuery("ep", limit=5))
    assert built == []
    # Even building the real client and credential stays off the network.
    assert isinstance(real_build(CONFIG), LogsQueryClient)


# ----------------------------------------------------------------------------- the real SDK


def real_client(adapter: LogAnalyticsAdapter) -> AzureTelemetry:
    session = requests.Session()
    session.mount("https://", adapter)

    def factory(_config: AzureConfig) -> LogsQueryClient:
        return LogsQueryClient(FakeCredential(), transport=RequestsTransport(session=session))

    return AzureTelemetry(CONFIG, client_factory=factory)


def test_real_sdk_success_and_request_body() -> None:
    query = kql("requests", TelemetryQuery("ep-bank", limit=10))
    adapter = LogAnalyticsAdapter(200, {"tables": [wire_table(query, REQUEST_ROWS)]})
    since = datetime(2025, 3, 1, 8, tzinfo=UTC)
    frame = real_client(adapter).requests(
        TelemetryQuery("ep-bank", since=since, until=since + timedelta(hours=4), limit=10)
    )
    assert frame["OperationId"].tolist() == ["a1", "a2"]
    assert frame["Deployment"].tolist() == ["green", ""]
    assert str(frame["TimeGenerated"].dtype) == "datetime64[us, UTC]"
    sent = adapter.sent[0]
    assert sent.url.endswith(f"/v1/workspaces/{LA_WORKSPACE}/query")
    assert sent.headers["Authorization"] == "Bearer fake-token"
    body = json.loads(sent.body)
    assert body["query"] == query
    assert body["timespan"] == "2025-03-01T08:00:00.000Z/2025-03-01T12:00:00.000Z"


def test_real_sdk_partial_error() -> None:
    query = kql("traces")
    adapter = LogAnalyticsAdapter(
        200,
        {
            "tables": [wire_table(query, TRACE_ROWS)],
            "error": {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "innererror": {"code": "LimitsExceeded", "message": "Query exceeded 64 MB."},
            },
        },
    )
    frame = real_client(adapter).traces()
    assert len(frame) == 2
    assert frame.attrs["warning"] == "Only part of the traces could be read: Query exceeded 64 MB."


def test_real_sdk_bad_query_error() -> None:
    adapter = LogAnalyticsAdapter(
        400,
        {
            "error": {
                "code": "BadArgumentError",
                "message": "The request had some invalid properties",
                "innererror": {
                    "code": "SemanticError",
                    "message": "A semantic error occurred.",
                    "innererror": {
                        "code": "SEM0100",
                        "message": "'where' operator: Failed to resolve column named 'AppRoleName'",
                    },
                },
            }
        },
    )
    with pytest.raises(WorkspaceError) as info:
        real_client(adapter).requests()
    message = str(info.value)
    assert message.startswith("The Log Analytics query failed (HTTP 400, BadArgumentError)")
    assert "Failed to resolve column named 'AppRoleName'" in message
    assert "fake-token" not in message


def test_real_sdk_forbidden() -> None:
    adapter = LogAnalyticsAdapter(
        403,
        {
            "error": {
                "code": "InsufficientAccessError",
                "message": "The provided credentials have insufficient access",
            }
        },
    )
    with pytest.raises(WorkspaceError, match="HTTP 403.*Log Analytics Reader"):
        real_client(adapter).traces()


def test_real_sdk_unknown_workspace() -> None:
    adapter = LogAnalyticsAdapter(
        404,
        {
            "error": {
                "code": "WorkspaceNotFoundError",
                "message": "The workspace could not be found",
            }
        },
    )
    with pytest.raises(WorkspaceError) as info:
        real_client(adapter).requests()
    assert LA_WORKSPACE in str(info.value)
    assert "log_analytics_workspace_id" in str(info.value)
