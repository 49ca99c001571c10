"""Azure telemetry: endpoint requests and console traces from Application Insights, read with KQL.

Managed online endpoints created with `app_insights_enabled=True` send their telemetry to the
workspace's Application Insights. Workspace-based App Insights stores it in a Log Analytics
workspace as `AppRequests` / `AppTraces`, which `LogsQueryClient.query_workspace` reads by the
workspace GUID (`log_analytics_workspace_id`). The KQL projects onto the `lib.appinsights`
columns, so pages and charts take either backend's frames unchanged.

What a request row holds depends on the server. Azure's inference server
(`azureml-inference-server-http`, which runs MLflow no-code deployments and scoring scripts)
writes one request per call, but as a span it opens after the response was sent, carrying the
real outcome only as custom properties: `Properties["resultCode"]`, `["success"]`, `["url"]`
and `["duration"]` (`HH:MM:SS.fff`, `D.HH:MM:SS.fff` past a day). Versions 1.5.0 and later
(OpenTelemetry, the version Azure's current MLflow images install) leave the standard columns at
ResultCode "0", Success true, DurationMs ≈ 0 and Url empty; versions up to 1.4.x (OpenCensus)
back-date the span, so DurationMs is about right there but ResultCode, Success and Url are
equally empty (upstream report microsoft/azureml-inference-server#111). Other servers (custom
containers with standard HTTP instrumentation) fill the standard columns and write no such
properties. The KQL therefore reads the properties and falls back to the standard columns.

Which endpoint a row belongs to: the inference server names its OpenTelemetry resource, which
App Insights stores as `AppRoleName`, after the `SERVICE_NAME` environment variable (default
"ML service"), and repeats it in `Properties["Service Name"]`. The deployments opsdeck creates set
`SERVICE_NAME` to the endpoint name (`lib.azure.endpoints`); `Endpoint` is that role name.
Deployments made elsewhere keep the default and are listed under "ML service". The server sends
no model version or row count per request, so `ModelVersion` and `Rows` are null.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pandas as pd
from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpTransport

from lib.appinsights import COLUMNS, TABLES, TelemetryQuery, check_kind, to_utc
from lib.azure.client import (
    azure_call,
    default_credential,
    describe_azure_error,
    is_sign_in_failure,
)
from lib.errors import WorkspaceError
from lib.settings import AzureConfig

DEFAULT_WINDOW = timedelta(hours=24)
ENDPOINT_EXPR = 'coalesce(AppRoleName, tostring(Properties["Service Name"]))'
# The inference server's own record of each request (see the module docstring), else the
# standard columns; KQL's coalesce skips nulls and empty strings.
REQUEST_FIELDS = {
    "ResultCode": 'coalesce(tostring(Properties["resultCode"]), ResultCode)',
    "Success": 'coalesce(tobool(tostring(Properties["success"])), Success)',
    "Url": 'coalesce(tostring(Properties["url"]), Url)',
    "DurationMs": 'coalesce(totimespan(tostring(Properties["duration"])) / 1ms, DurationMs)',
}
REQUEST_PROJECTION = {
    "TimeGenerated": "TimeGenerated",
    "OperationId": "OperationId",
    "Name": "Name",
    "Url": "Url",
    "ResultCode": "ResultCode",
    "DurationMs": "DurationMs",
    "Success": "Success",
    "Endpoint": "Endpoint",
    "ModelVersion": '""',
    "Rows": "long(null)",
}
TRACE_PROJECTION = {
    "TimeGenerated": "TimeGenerated",
    "Message": "Message",
    "SeverityLevel": "SeverityLevel",
    "Endpoint": "Endpoint",
}
PROJECTIONS = {"requests": REQUEST_PROJECTION, "traces": TRACE_PROJECTION}
STRING_COLUMNS = ("OperationId", "Name", "Url", "ResultCode", "Endpoint", "ModelVersion", "Message")
MISSING_WORKSPACE_ID = (
    "Endpoint telemetry needs the Log Analytics workspace behind the endpoints' Application "
    "Insights. Set log_analytics_workspace_id in the [azure] section of .streamlit/secrets.toml "
    "or the AZURE_LOG_ANALYTICS_WORKSPACE_ID environment variable to that workspace's ID (the "
    "GUID shown as 'Workspace ID' on the Log Analytics workspace's Overview page, not its "
    "resource id)."
)
NO_READ_PERMISSION = (
    "Azure refused to read the Log Analytics workspace (HTTP 403): the signed-in identity needs "
    "a role such as Log Analytics Reader or Monitoring Reader on it."
)


class LogsClient(Protocol):
    """The part of `azure.monitor.query.LogsQueryClient` used here."""

    def query_workspace(self, workspace_id: str, query: str, *, timespan: Any) -> Any: ...


LogsClientFactory = Callable[[AzureConfig], LogsClient]


def kql_string(value: str) -> str:
    """`value` as a double-quoted KQL string literal."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"control characters are not allowed in {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def source_lines(kind: str, query: TelemetryQuery | None = None) -> list[str]:
    """The table, its `Endpoint`, the endpoint filter and (requests) the server's real outcome."""
    query = query or TelemetryQuery()
    lines = [TABLES[check_kind(kind)], f"| extend Endpoint = {ENDPOINT_EXPR}"]
    if query.endpoint is not None:
        lines.append(f"| where Endpoint == {kql_string(query.endpoint)}")
    if kind == "requests":
        fields = ", ".join(f"{name} = {expr}" for name, expr in REQUEST_FIELDS.items())
        lines.append(f"| extend {fields}")
    return lines


def kql(kind: str, query: TelemetryQuery | None = None) -> str:
    """KQL for `AppRequests` or `AppTraces` rows in our columns, oldest first.

    The query's endpoint filters rows and its `limit` keeps the newest; its time window is not
    in the text but passed to `query_workspace` as the timespan.
    """
    query = query or TelemetryQuery()
    projection = PROJECTIONS[check_kind(kind)]
    lines = source_lines(kind, query)
    if query.limit is not None:
        lines.append(f"| top {query.limit} by TimeGenerated desc")
    lines.append("| order by TimeGenerated asc")
    columns = [name if expr == name else f"{name} = {expr}" for name, expr in projection.items()]
    lines.append("| project " + ", ".join(columns))
    return "\n".join(lines)


def build_logs_client(
    config: AzureConfig,
    credential: TokenCredential | None = None,
    transport: HttpTransport | None = None,
) -> LogsClient:
    """A LogsQueryClient signed in like the ML client (neither touches the network yet)."""
    from azure.monitor.query import LogsQueryClient

    extra: dict[str, Any] = {"transport": transport} if transport is not None else {}
    return LogsQueryClient(credential or default_credential(config), **extra)


def timespan(
    query: TelemetryQuery | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The (start, end) pair for `query_workspace`: missing ends default to the last 24 hours."""
    query = query or TelemetryQuery()
    end = query.until or to_utc(now or datetime.now(UTC))
    start = query.since or end - DEFAULT_WINDOW
    return start, end


def _frame(tables: list[Any] | None, columns: list[str]) -> pd.DataFrame:
    """The first result table as a frame with exactly `columns`, typed like the local reader."""
    if tables:
        table = tables[0]
        frame = pd.DataFrame([list(row) for row in table.rows], columns=list(table.columns))
        frame = frame.reindex(columns=columns)
    else:
        frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    frame["TimeGenerated"] = pd.to_datetime(frame["TimeGenerated"], utc=True).dt.as_unit("us")
    for column in columns:
        if column in STRING_COLUMNS:
            series = frame[column].astype(object)
            frame[column] = series.where(series.notna() & (series != ""), None).astype("str")
    if "DurationMs" in columns:
        frame["DurationMs"] = pd.to_numeric(frame["DurationMs"]).astype(float)
        codes = pd.to_numeric(frame["ResultCode"], errors="coerce")
        frame["Success"] = (
            frame["Success"].astype(object).where(frame["Success"].notna(), codes < 400)
        )
        frame["Success"] = frame["Success"].astype(bool)
        frame["ResultCode"] = frame["ResultCode"].fillna("").astype("str")
        frame["Rows"] = pd.to_numeric(frame["Rows"]).astype("Int64")
    if "SeverityLevel" in columns:
        frame["SeverityLevel"] = pd.to_numeric(frame["SeverityLevel"]).astype("Int64")
    return frame


def _query_error(exc: HttpResponseError, workspace_id: str) -> str:
    """The service's own explanation of a failed query (the innermost error message)."""
    if is_sign_in_failure(exc):
        return describe_azure_error(exc, "query the Log Analytics workspace")
    if exc.status_code == 403:
        return NO_READ_PERMISSION
    if exc.status_code == 404:
        return (
            f"Log Analytics workspace {workspace_id!r} was not found. Check "
            "log_analytics_workspace_id (or AZURE_LOG_ANALYTICS_WORKSPACE_ID): it is the "
            "workspace's GUID from its Overview page."
        )
    model = getattr(exc, "model", None)
    message = getattr(model, "message", None)
    code = getattr(model, "code", None)
    if message:
        status = f"HTTP {exc.status_code}, " if exc.status_code else ""
        return f"The Log Analytics query failed ({status}{code or 'error'}): {message}"
    return describe_azure_error(exc, "query the Log Analytics workspace")


class AzureTelemetry:
    """Requests and traces of Azure endpoints, read from Log Analytics."""

    def __init__(
        self,
        config: AzureConfig | None,
        client_factory: LogsClientFactory | None = None,
    ) -> None:
        self.config = config
        self._factory = client_factory or build_logs_client
        self._client: LogsClient | None = None
        self._lock = threading.Lock()

    @property
    def workspace_id(self) -> str | None:
        return (self.config.log_analytics_workspace_id or None) if self.config else None

    def _logs_client(self, config: AzureConfig) -> LogsClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    with azure_call("set up the Log Analytics client"):
                        self._client = self._factory(config)
        return self._client

    def _require_workspace(self) -> tuple[AzureConfig, str]:
        workspace_id = self.workspace_id
        if self.config is None or not workspace_id:
            raise WorkspaceError(MISSING_WORKSPACE_ID)
        return self.config, workspace_id

    def query_text(self, kind: str, query: TelemetryQuery | None = None) -> str:
        """The KQL behind `requests` or `traces`, for display next to the data."""
        return kql(kind, query)

    def _run(self, kind: str, query: TelemetryQuery | None) -> pd.DataFrame:
        columns = COLUMNS[check_kind(kind)]
        config, workspace_id = self._require_workspace()
        text = kql(kind, query)
        start, end = timespan(query)
        if start >= end:
            return _frame(None, columns)
        client = self._logs_client(config)
        with azure_call(f"read endpoint {kind} from Log Analytics"):
            try:
                result = client.query_workspace(workspace_id, text, timespan=(start, end))
            except HttpResponseError as exc:
                raise WorkspaceError(_query_error(exc, workspace_id)) from exc
        from azure.monitor.query import LogsQueryStatus

        if result.status == LogsQueryStatus.PARTIAL:
            frame = _frame(result.partial_data, columns)
            error = result.partial_error
            detail = getattr(error, "message", None) or "the service returned partial results"
            frame.attrs["warning"] = f"Only part of the {kind} could be read: {detail}"
            return frame
        return _frame(result.tables, columns)

    def requests(self, query: TelemetryQuery | None = None) -> pd.DataFrame:
        """Request rows (`lib.appinsights.REQUEST_COLUMNS`) of the query's window, oldest first."""
        return self._run("requests", query)

    def traces(self, query: TelemetryQuery | None = None) -> pd.DataFrame:
        """Trace rows (`lib.appinsights.TRACE_COLUMNS`) of the query's window, oldest first."""
        return self._run("traces", query)
