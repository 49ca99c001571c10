"""Azure telemetry: endpoint requests and console traces from Application Insights, read with KQL.

Managed online endpoints created with `app_insights_enabled=True` send their telemetry to the
workspace's Application Insights. Workspace-based App Insights stores it in a Log Analytics
workspace as `AppRequests` / `AppTraces`, which `LogsQueryClient.query_workspace` reads by the
workspace GUID (`log_analytics_workspace_id`). The KQL (`lib.azure.kql`, which also says what
the inference server writes) projects onto the `lib.appinsights` columns, so pages and charts
take either backend's frames unchanged. The Logs page's aggregates are `summarize` queries:
Log Analytics returns one row per bin, however many requests there were.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pandas as pd
from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpTransport

from lib.appinsights import (
    CODE_COLUMNS,
    COLUMNS,
    STATUS_COLUMNS,
    SUMMARY_COLUMNS,
    RequestKpis,
    TelemetryQuery,
    check_kind,
    to_utc,
)
from lib.azure import kql as k
from lib.azure.client import (
    azure_call,
    default_credential,
    describe_azure_error,
    is_sign_in_failure,
)
from lib.azure.kql import kql_string
from lib.errors import WorkspaceError
from lib.settings import AzureConfig

__all__ = ["AzureTelemetry", "build_logs_client", "kql", "kql_string", "timespan"]

DEFAULT_WINDOW = timedelta(hours=24)
# Kusto's percentiles() is a T-Digest estimate: its error is on the rank, at most 1 %.
PERCENTILE_ERROR = 0.01
STRING_COLUMNS = ("OperationId", "Name", "Url", "ResultCode", "Endpoint", "ModelVersion", "Message")
CSV_CHUNK_ROWS = 50_000
LOGS_RETRIES = 1
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
THROTTLED = (
    "Log Analytics is throttling this workspace's queries (HTTP 429{detail}); the charts come "
    "back when the query rate drops, try again in a minute."
)


class LogsClient(Protocol):
    """The part of `azure.monitor.query.LogsQueryClient` used here."""

    def query_workspace(self, workspace_id: str, query: str, *, timespan: Any) -> Any: ...


LogsClientFactory = Callable[[AzureConfig], LogsClient]


def kql(kind: str, query: TelemetryQuery | None = None) -> str:
    """KQL for `AppRequests` or `AppTraces` rows in our columns, oldest first.

    The query's endpoint filters rows and its `limit` keeps the newest; its time window is not
    in the text but passed to `query_workspace` as the timespan.
    """
    return k.rows(kind, query)


def build_logs_client(
    config: AzureConfig,
    credential: TokenCredential | None = None,
    transport: HttpTransport | None = None,
) -> LogsClient:
    """A LogsQueryClient signed in like the ML client (neither touches the network yet)."""
    from azure.monitor.query import LogsQueryClient

    extra: dict[str, Any] = {"transport": transport} if transport is not None else {}
    # One retry, not azure-core's ten: a throttled or failing query becomes a warning on the
    # page rather than a page blocked in back-off.
    return LogsQueryClient(
        credential or default_credential(config), retry_total=LOGS_RETRIES, **extra
    )


def timespan(
    query: TelemetryQuery | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The (start, end) pair for `query_workspace`: missing ends default to the last 24 hours."""
    query = query or TelemetryQuery()
    end = query.until or to_utc(now or datetime.now(UTC))
    start = query.since or end - DEFAULT_WINDOW
    return start, end


def _table_frame(tables: list[Any] | None) -> pd.DataFrame | None:
    if not tables:
        return None
    table = tables[0]
    return pd.DataFrame([list(row) for row in table.rows], columns=list(table.columns))


def _frame(tables: list[Any] | None, columns: list[str]) -> pd.DataFrame:
    """The first result table as a frame with exactly `columns`, typed like the local reader."""
    raw = _table_frame(tables)
    if raw is not None:
        frame = raw.reindex(columns=columns)
    else:
        frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    frame["TimeGenerated"] = pd.to_datetime(frame["TimeGenerated"], utc=True).dt.as_unit("us")
    for column in columns:
        if column in STRING_COLUMNS:
            series = frame[column].astype(object)
            frame[column] = series.where(series.notna() & (series != ""), None).astype("str")
    if "DurationMs" in columns:
        # "" like the local reader when the row names no deployment (the KQL's tostring(null)).
        frame["Deployment"] = frame["Deployment"].astype(object).fillna("").astype("str")
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


def _aggregate_frame(tables: list[Any] | None, columns: list[str]) -> pd.DataFrame:
    """A `summarize` result in `columns`: counts as int64, durations as float, keys as str."""
    raw = _table_frame(tables)
    frame = raw.reindex(columns=columns) if raw is not None else pd.DataFrame(columns=columns)
    for column in columns:
        if column == "TimeGenerated":
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("us")
        elif column in ("Requests", "Failed"):
            frame[column] = pd.to_numeric(frame[column]).fillna(0).astype("int64")
        elif column in ("p50", "p95", "p99", "MeanMs"):
            frame[column] = pd.to_numeric(frame[column]).astype(float)
        else:
            frame[column] = frame[column].fillna("").astype(str)
    return frame.reset_index(drop=True)


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
    if exc.status_code == 429 or code == "ThrottledError":
        return THROTTLED.format(detail=f": {message}" if message else "")
    if message:
        status = f"HTTP {exc.status_code}, " if exc.status_code else ""
        return f"The Log Analytics query failed ({status}{code or 'error'}): {message}"
    return describe_azure_error(exc, "query the Log Analytics workspace")


def _partial_warning(error: Any, what: str) -> str:
    """What to show above data Log Analytics returned only in part (limits, throttling)."""
    code = getattr(error, "code", None)
    detail = getattr(error, "message", None) or "the service returned partial results"
    if code == "ThrottledError":
        return THROTTLED.format(detail=f": {detail}")
    return f"Only part of the {what} could be read: {detail}"


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

    def _query(
        self, text: str, query: TelemetryQuery | None, what: str
    ) -> tuple[list[Any] | None, str]:
        """The result tables of one KQL query over the query's window, and any warning."""
        config, workspace_id = self._require_workspace()
        start, end = timespan(query)
        if start >= end:
            return None, ""
        client = self._logs_client(config)
        with azure_call(f"read endpoint {what} from Log Analytics"):
            try:
                result = client.query_workspace(workspace_id, text, timespan=(start, end))
            except HttpResponseError as exc:
                raise WorkspaceError(_query_error(exc, workspace_id)) from exc
        from azure.monitor.query import LogsQueryStatus

        if result.status == LogsQueryStatus.PARTIAL:
            return result.partial_data, _partial_warning(result.partial_error, what)
        return result.tables, ""

    def _rows(self, kind: str, text: str, query: TelemetryQuery | None) -> pd.DataFrame:
        tables, warning = self._query(text, query, kind)
        frame = _frame(tables, COLUMNS[check_kind(kind)])
        if warning:
            frame.attrs["warning"] = warning
        return frame

    def _aggregate(
        self, text: str, query: TelemetryQuery, columns: list[str], what: str
    ) -> pd.DataFrame:
        tables, warning = self._query(text, query, what)
        frame = _aggregate_frame(tables, columns)
        if warning:
            frame.attrs["warning"] = warning
        return frame

    def requests(self, query: TelemetryQuery | None = None) -> pd.DataFrame:
        """Request rows (`lib.appinsights.REQUEST_COLUMNS`) of the query's window, oldest first."""
        return self._rows("requests", kql("requests", query), query)

    def traces(self, query: TelemetryQuery | None = None) -> pd.DataFrame:
        """Trace rows (`lib.appinsights.TRACE_COLUMNS`) of the query's window, oldest first."""
        return self._rows("traces", kql("traces", query), query)

    # --- aggregates: `summarize` in Log Analytics --------------------------------------------

    def summary(
        self,
        query: TelemetryQuery,
        bin_s: int,
        by: Sequence[str] = ("Endpoint", "Deployment"),
    ) -> pd.DataFrame:
        """Requests, failures, p50/p95/p99 and mean per bin (`SUMMARY_COLUMNS`)."""
        text = k.summary(query, bin_s, by)
        return self._aggregate(text, query, SUMMARY_COLUMNS, "request summary")

    def result_codes(self, query: TelemetryQuery, bin_s: int) -> pd.DataFrame:
        """Requests per bin and result code (`CODE_COLUMNS`)."""
        return self._aggregate(
            k.result_codes(query, bin_s), query, CODE_COLUMNS, "requests by result code"
        )

    def status_codes(self, query: TelemetryQuery) -> pd.DataFrame:
        """Requests per result code, most frequent first (`STATUS_COLUMNS`)."""
        return self._aggregate(k.status_codes(query), query, STATUS_COLUMNS, "status codes")

    def kpis(self, query: TelemetryQuery) -> RequestKpis:
        """The window's tiles; percentiles are Kusto estimates (rank error ≤ 1 %)."""
        columns = ["Requests", "Failed", "MeanMs", "p50", "p95", "p99"]
        tables, warning = self._query(k.kpis(query), query, "request totals")
        frame = _aggregate_frame(tables, columns)
        total = int(frame["Requests"].iloc[0]) if len(frame) else 0
        if not total:
            return RequestKpis(percentile_error=PERCENTILE_ERROR, warning=warning)
        row = frame.iloc[0]
        return RequestKpis(
            requests=total,
            failed=int(row["Failed"]),
            p50=float(row["p50"]),
            p95=float(row["p95"]),
            p99=float(row["p99"]),
            mean_ms=float(row["MeanMs"]),
            percentile_error=PERCENTILE_ERROR,
            warning=warning,
        )

    # --- raw rows, limited with `top` ------------------------------------------------------

    def recent(self, query: TelemetryQuery, limit: int = 100, offset: int = 0) -> pd.DataFrame:
        """A page of the window's requests, newest first."""
        return self._rows("requests", k.page("requests", query, limit, offset), query)

    def failed(self, query: TelemetryQuery, limit: int = 50, offset: int = 0) -> pd.DataFrame:
        """A page of the window's failed requests, newest first."""
        text = k.page("requests", query, limit, offset, where="Success == false")
        return self._rows("requests", text, query)

    def slowest(self, query: TelemetryQuery, limit: int = 50) -> pd.DataFrame:
        """The window's `limit` slowest requests, slowest first."""
        text = k.page("requests", query, limit, order="DurationMs desc")
        return self._rows("requests", text, query)

    def recent_traces(
        self, query: TelemetryQuery, text: str = "", limit: int = 100, offset: int = 0
    ) -> pd.DataFrame:
        """A page of the window's traces whose message contains `text` (any case), newest first."""
        where = f"Message contains {kql_string(text)}" if text else ""
        kql_text = k.page("traces", query, limit, offset, where=where)
        return self._rows("traces", kql_text, query)

    def export_csv(self, query: TelemetryQuery) -> Iterator[bytes]:
        """The window's requests as CSV, oldest first, in chunks.

        One query: Log Analytics returns at most 500,000 rows (64 MB) per query; a busier
        window gives an incomplete file (the service reports it as a partial result).
        """
        frame = self.requests(query.with_limit(None))
        yield frame.head(0).to_csv(index=False).encode()
        for start in range(0, len(frame), CSV_CHUNK_ROWS):
            chunk = frame.iloc[start : start + CSV_CHUNK_ROWS]
            yield chunk.to_csv(index=False, header=False).encode()
