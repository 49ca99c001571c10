"""The Logs page's aggregates on Azure: KQL `summarize` in Log Analytics, tested at the HTTP level.

The real `LogsQueryClient` sends each query through the fake transport; the fake Log Analytics
answers with the table the query's last `project`/`summarize` produces. The KQL text is asserted
whole, so what runs in the service is what was reviewed here.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lib.appinsights import (
    CODE_COLUMNS,
    REQUEST_COLUMNS,
    STATUS_COLUMNS,
    SUMMARY_COLUMNS,
    TelemetryQuery,
)
from lib.azure import kql as k
from lib.azure.telemetry import AzureTelemetry, build_logs_client
from lib.settings import AzureConfig
from lib.workspace import TelemetryService, WorkspaceError
from tests.support.azure_service import LA_WORKSPACE, FakeAzureML
from tests.support.azure_transport import FakeCredential, FakeTransport, Reply

CONFIG = AzureConfig(
    subscription_id="00000000-0000-0000-0000-000000000000",
    resource_group="rg-opsdeck",
    workspace_name="ws-opsdeck",
    log_analytics_workspace_id=LA_WORKSPACE,
)
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
WINDOW = TelemetryQuery("ep-bank", since=T0, until=T0 + timedelta(hours=1))
SOURCE = (
    "AppRequests\n"
    '| extend Role = coalesce(AppRoleName, tostring(Properties["Service Name"]))\n'
    '| extend Endpoint = tostring(split(Role, "/")[0]), '
    'Deployment = tostring(split(Role, "/")[1])\n'
    '| where Endpoint == "ep-bank"\n'
    '| extend ResultCode = coalesce(tostring(Properties["resultCode"]), ResultCode), '
    'Success = coalesce(tobool(tostring(Properties["success"])), Success), '
    'Url = coalesce(tostring(Properties["url"]), Url), '
    'DurationMs = coalesce(totimespan(tostring(Properties["duration"])) / 1ms, DurationMs)\n'
)
REQUEST_PROJECT = (
    "| project TimeGenerated, OperationId, Name, Url, ResultCode, DurationMs, Success, "
    'Endpoint, Deployment, ModelVersion = "", Rows = long(null)'
)


class Logs:
    """A real LogsQueryClient over the fake Log Analytics, and the service under test."""

    def __init__(self) -> None:
        self.service = FakeAzureML()
        self.answers: list[list[dict[str, Any]]] = []
        self.service.log_tables = lambda _query: self.answers.pop(0) if self.answers else []
        self.transport = FakeTransport(self.service)
        self.telemetry = AzureTelemetry(
            CONFIG,
            client_factory=lambda c: build_logs_client(c, FakeCredential(), self.transport),
        )

    @property
    def queries(self) -> list[str]:
        return [q["query"] for q in self.service.log_queries]

    @property
    def timespans(self) -> list[str]:
        return [q["timespan"] for q in self.service.log_queries]


@pytest.fixture
def logs() -> Logs:
    return Logs()


def summary_row(minute: int, deployment: str, requests: int, failed: int) -> dict[str, Any]:
    return {
        "TimeGenerated": (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
        "Endpoint": "ep-bank",
        "Deployment": deployment,
        "Requests": requests,
        "Failed": failed,
        "p50": 12.0,
        "p95": 40.5,
        "p99": 88.0,
        "MeanMs": 15.25,
    }


def test_the_service_implements_the_whole_protocol(logs: Logs) -> None:
    assert isinstance(logs.telemetry, TelemetryService)


def test_summary_is_summarised_in_log_analytics(logs: Logs) -> None:
    logs.answers.append([summary_row(0, "", 120, 3), summary_row(1, "", 80, 0)])
    frame = logs.telemetry.summary(WINDOW, 60, by=())
    assert logs.queries == [
        SOURCE + "| summarize Requests = count(), Failed = countif(Success == false), "
        "MeanMs = avg(DurationMs), percentiles(DurationMs, 50, 95, 99) "
        "by TimeGenerated = bin(TimeGenerated, 60s)\n"
        '| project TimeGenerated, Endpoint = "", Deployment = "", Requests, Failed, '
        "p50 = percentile_DurationMs_50, p95 = percentile_DurationMs_95, "
        "p99 = percentile_DurationMs_99, MeanMs\n"
        "| order by TimeGenerated asc, Endpoint asc, Deployment asc"
    ]
    assert logs.timespans == ["2025-03-01T10:00:00.000Z/2025-03-01T11:00:00.000Z"]
    assert list(frame.columns) == SUMMARY_COLUMNS
    assert frame["Requests"].tolist() == [120, 80] and str(frame["Requests"].dtype) == "int64"
    assert frame["p95"].tolist() == [40.5, 40.5]
    assert str(frame["TimeGenerated"].dtype) == "datetime64[us, UTC]"


def test_summary_by_deployment_groups_by_the_role_split(logs: Logs) -> None:
    logs.answers.append([summary_row(0, "blue", 90, 1), summary_row(0, "green", 10, 4)])
    frame = logs.telemetry.summary(WINDOW, 300, by=("Deployment",))
    query = logs.queries[0]
    assert "by TimeGenerated = bin(TimeGenerated, 300s), Deployment\n" in query
    assert '| project TimeGenerated, Endpoint = "", Deployment, Requests,' in query
    assert frame["Deployment"].tolist() == ["blue", "green"]
    with pytest.raises(ValueError, match="Endpoint and/or Deployment"):
        logs.telemetry.summary(WINDOW, 60, by=("ResultCode",))


def test_result_and_status_codes(logs: Logs) -> None:
    logs.answers.append(
        [
            {"TimeGenerated": "2025-03-01T10:00:00Z", "ResultCode": "200", "Requests": 7},
            {"TimeGenerated": "2025-03-01T10:00:00Z", "ResultCode": "500", "Requests": 1},
        ]
    )
    codes = logs.telemetry.result_codes(WINDOW, 60)
    logs.answers.append(
        [{"ResultCode": "200", "Requests": 7}, {"ResultCode": "500", "Requests": 1}]
    )
    status = logs.telemetry.status_codes(WINDOW)
    assert logs.queries == [
        SOURCE + "| summarize Requests = count() by TimeGenerated = bin(TimeGenerated, 60s), "
        "ResultCode\n| order by TimeGenerated asc, ResultCode asc",
        SOURCE + "| summarize Requests = count() by ResultCode\n"
        "| order by Requests desc, ResultCode asc",
    ]
    assert list(codes.columns) == CODE_COLUMNS and codes["Requests"].tolist() == [7, 1]
    assert list(status.columns) == STATUS_COLUMNS and status["ResultCode"].tolist() == [
        "200",
        "500",
    ]


def test_kpis_are_one_summarised_row(logs: Logs) -> None:
    logs.answers.append(
        [{"Requests": 200, "Failed": 3, "MeanMs": 14.5, "p50": 11.0, "p95": 39.0, "p99": 80.0}]
    )
    kpis = logs.telemetry.kpis(WINDOW)
    assert logs.queries == [
        SOURCE + "| summarize Requests = count(), Failed = countif(Success == false), "
        "MeanMs = avg(DurationMs), percentiles(DurationMs, 50, 95, 99)\n"
        "| project Requests, Failed, MeanMs, p50 = percentile_DurationMs_50, "
        "p95 = percentile_DurationMs_95, p99 = percentile_DurationMs_99"
    ]
    assert (kpis.requests, kpis.failed, kpis.p95, kpis.mean_ms) == (200, 3, 39.0, 14.5)
    assert kpis.percentile_error == 0.01 and kpis.warning == ""
    logs.answers.append([{"Requests": 0, "Failed": 0}])
    assert logs.telemetry.kpis(WINDOW).requests == 0


def test_raw_tables_are_limited_pages(logs: Logs) -> None:
    logs.telemetry.recent(WINDOW, limit=100, offset=200)
    logs.telemetry.failed(WINDOW, limit=50)
    logs.telemetry.slowest(WINDOW, limit=50)
    logs.telemetry.recent_traces(WINDOW, text='timeout "x"', limit=100, offset=100)
    recent, failed, slowest, traces = logs.queries
    assert recent == (
        SOURCE + "| top 300 by TimeGenerated desc\n"
        "| serialize Row = row_number() | where Row > 200\n" + REQUEST_PROJECT
    )
    assert failed == (
        SOURCE + "| where Success == false\n| top 50 by TimeGenerated desc\n" + REQUEST_PROJECT
    )
    assert slowest == SOURCE + "| top 50 by DurationMs desc\n" + REQUEST_PROJECT
    assert traces.startswith("AppTraces\n")
    assert '| where Message contains "timeout \\"x\\""\n| top 200 by TimeGenerated desc\n' in (
        traces
    )
    assert traces.endswith("| project TimeGenerated, Message, SeverityLevel, Endpoint")


def test_export_streams_csv_from_one_query(logs: Logs) -> None:
    logs.answers.append(
        [
            {
                "TimeGenerated": f"2025-03-01T10:00:0{i}Z",
                "OperationId": f"op{i}",
                "Name": "/score",
                "Url": "https://ep/score",
                "ResultCode": "200",
                "DurationMs": 10.0 + i,
                "Success": True,
                "Endpoint": "ep-bank",
                "Deployment": "green" if i else "",
            }
            for i in range(3)
        ]
    )
    chunks = list(logs.telemetry.export_csv(WINDOW))
    lines = b"".join(chunks).decode().splitlines()
    assert lines[0].startswith("TimeGenerated,OperationId,Name,Url,ResultCode,DurationMs")
    assert len(lines) == 4 and "op2" in lines[-1]
    parsed = list(csv.DictReader(lines))
    assert [r["Deployment"] for r in parsed] == ["", "green", "green"]
    assert list(parsed[0]) == REQUEST_COLUMNS
    assert len(logs.queries) == 1 and "| top" not in logs.queries[0]


def partial(tables: dict[str, Any], code: str, message: str) -> Reply:
    """A 200 answer with data and an error: Log Analytics' partial result."""
    return Reply(200, {**tables, "error": {"code": code, "message": message}})


def test_partial_results_and_throttling_become_warnings(logs: Logs) -> None:
    replies = [
        partial(
            {"tables": [_table(["Requests", "Failed"], [[5, 0]])]},
            "PartialError",
            "Query result exceeded 64 MB.",
        ),
        partial(
            {"tables": [_table(["ResultCode", "Requests"], [["200", 5]])]},
            "ThrottledError",
            "Too many requests.",
        ),
        Reply(
            429,
            {"error": {"code": "ThrottledError", "message": "Rate limit reached."}},
            {"Retry-After": "0"},
        ),
    ]
    logs.service.logs = lambda _sent: replies.pop(0)  # type: ignore[method-assign]
    assert "64 MB" in logs.telemetry.kpis(WINDOW).warning
    status = logs.telemetry.status_codes(WINDOW)
    assert status["Requests"].tolist() == [5]
    assert status.attrs["warning"].startswith("Log Analytics is throttling")
    logs.service.logs = lambda _sent: replies[0]  # type: ignore[method-assign]
    with pytest.raises(WorkspaceError, match="throttling.*HTTP 429.*Rate limit reached"):
        logs.telemetry.summary(WINDOW, 60)


def test_sign_in_failures_from_query_workspace_say_how_to_sign_in(logs: Logs) -> None:
    # LogsQueryClient re-raises a 401 as a plain HttpResponseError.
    logs.service.logs = lambda _sent: Reply(  # type: ignore[method-assign]
        401, {"error": {"code": "InvalidTokenError", "message": "The token is invalid"}}
    )
    with pytest.raises(WorkspaceError, match="Could not sign in to Azure.*az login"):
        logs.telemetry.kpis(WINDOW)


def test_a_credential_that_cannot_sign_in_says_how_to_sign_in() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class NoSignIn(FakeCredential):
        def get_token(self, *_: str, **__: Any) -> Any:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

        get_token_info = get_token

    service = FakeAzureML()
    transport = FakeTransport(service)
    telemetry = AzureTelemetry(
        CONFIG, client_factory=lambda c: build_logs_client(c, NoSignIn(), transport)
    )
    with pytest.raises(WorkspaceError, match="Could not sign in to Azure.*az login"):
        telemetry.summary(WINDOW, 60)
    assert transport.sent == []


def test_queries_escape_the_endpoint_name() -> None:
    query = TelemetryQuery('x" or 1==1 //', since=T0, until=T0 + timedelta(hours=1))
    assert '| where Endpoint == "x\\" or 1==1 //"\n' in k.kpis(query)


def _table(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    types = {"Requests": "long", "Failed": "long", "ResultCode": "string"}
    return {
        "name": "PrimaryResult",
        "columns": [{"name": c, "type": types.get(c, "real")} for c in columns],
        "rows": rows,
    }
