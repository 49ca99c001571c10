"""KQL over App Insights' `AppRequests` / `AppTraces`, in the `lib.appinsights` columns.

Every query starts from `source_lines`: the table, each row's `Endpoint` and `Deployment`, the
endpoint filter, and (requests) the outcome the inference server really recorded. Aggregates
`summarize` in Log Analytics, so what comes back is one row per bin (or code), never the raw
requests; raw tables are limited with `top`. The time window is not in the text: it is sent as
the query's timespan (`lib.azure.telemetry.timespan`).

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
it to `<endpoint>/<deployment>` (`service_name`), which gives both columns. Deployments made
elsewhere keep the default and are listed as endpoint "ML service" with Deployment "" (`tostring`
of the missing second part). The server sends no model
version or row count per request, so `ModelVersion` and `Rows` are null.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.appinsights import TABLES, TelemetryQuery, check_kind

ROLE_EXPR = 'coalesce(AppRoleName, tostring(Properties["Service Name"]))'
# The inference server's own record of each request, else the standard columns; KQL's coalesce
# skips nulls and empty strings.
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
    "Deployment": "Deployment",
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
SPLITS = ("Endpoint", "Deployment")
PERCENTILES = "percentiles(DurationMs, 50, 95, 99)"
# `percentiles()` names its columns after the column and the percentile.
PERCENTILE_COLUMNS = {
    "p50": "percentile_DurationMs_50",
    "p95": "percentile_DurationMs_95",
    "p99": "percentile_DurationMs_99",
}
REQUEST_STATS = "Requests = count(), Failed = countif(Success == false), MeanMs = avg(DurationMs)"


def service_name(endpoint: str, deployment: str) -> str:
    """The `SERVICE_NAME` a deployment's inference server reports its rows under."""
    return f"{endpoint}/{deployment}"


def kql_string(value: str) -> str:
    """`value` as a double-quoted KQL string literal."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"control characters are not allowed in {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def source_lines(kind: str, query: TelemetryQuery | None = None) -> list[str]:
    """The table, `Endpoint`/`Deployment`, the endpoint filter and (requests) the real outcome."""
    query = query or TelemetryQuery()
    lines = [
        TABLES[check_kind(kind)],
        f"| extend Role = {ROLE_EXPR}",
        '| extend Endpoint = tostring(split(Role, "/")[0]), '
        'Deployment = tostring(split(Role, "/")[1])',
    ]
    if query.endpoint is not None:
        lines.append(f"| where Endpoint == {kql_string(query.endpoint)}")
    if kind == "requests":
        fields = ", ".join(f"{name} = {expr}" for name, expr in REQUEST_FIELDS.items())
        lines.append(f"| extend {fields}")
    return lines


def project(kind: str) -> str:
    projection = PROJECTIONS[check_kind(kind)]
    columns = [name if expr == name else f"{name} = {expr}" for name, expr in projection.items()]
    return "| project " + ", ".join(columns)


def rows(kind: str, query: TelemetryQuery | None = None) -> str:
    """Raw rows of the window, oldest first; `query.limit` keeps the newest."""
    query = query or TelemetryQuery()
    lines = source_lines(kind, query)
    if query.limit is not None:
        lines.append(f"| top {query.limit} by TimeGenerated desc")
    lines += ["| order by TimeGenerated asc", project(kind)]
    return "\n".join(lines)


def page(
    kind: str,
    query: TelemetryQuery,
    limit: int,
    offset: int = 0,
    where: str = "",
    order: str = "TimeGenerated desc",
) -> str:
    """Rows `offset + 1` … `offset + limit` in `order` (a page of a raw table)."""
    limit, offset = max(0, int(limit)), max(0, int(offset))
    lines = source_lines(kind, query)
    if where:
        lines.append(f"| where {where}")
    lines.append(f"| top {offset + limit} by {order}")
    if offset:
        lines.append(f"| serialize Row = row_number() | where Row > {offset}")
    lines.append(project(kind))
    return "\n".join(lines)


def bin_expr(bin_s: int) -> str:
    """KQL's `bin()` rounds down to multiples of the size since 1970 UTC (UTC-aligned bins)."""
    return f"TimeGenerated = bin(TimeGenerated, {int(bin_s)}s)"


def _percentile_projection() -> str:
    return ", ".join(f"{name} = {column}" for name, column in PERCENTILE_COLUMNS.items())


def summary(query: TelemetryQuery, bin_s: int, by: Sequence[str] = SPLITS) -> str:
    """Requests, failures, p50/p95/p99 and mean per bin and `by` columns (`SUMMARY_COLUMNS`)."""
    unknown = set(by) - set(SPLITS)
    if unknown:
        raise ValueError(f"summary splits by Endpoint and/or Deployment, not {sorted(unknown)}")
    keys = [k for k in SPLITS if k in by]
    group = ", ".join([bin_expr(bin_s), *keys])
    fixed = ", ".join(k if k in keys else f'{k} = ""' for k in SPLITS)
    lines = source_lines("requests", query)
    lines += [
        f"| summarize {REQUEST_STATS}, {PERCENTILES} by {group}",
        f"| project TimeGenerated, {fixed}, Requests, Failed, {_percentile_projection()}, MeanMs",
        "| order by TimeGenerated asc, " + ", ".join(f"{k} asc" for k in SPLITS),
    ]
    return "\n".join(lines)


def result_codes(query: TelemetryQuery, bin_s: int) -> str:
    """Requests per bin and result code (`CODE_COLUMNS`)."""
    lines = source_lines("requests", query)
    lines += [
        f"| summarize Requests = count() by {bin_expr(bin_s)}, ResultCode",
        "| order by TimeGenerated asc, ResultCode asc",
    ]
    return "\n".join(lines)


def status_codes(query: TelemetryQuery) -> str:
    """Requests per result code over the window, most frequent first (`STATUS_COLUMNS`)."""
    lines = source_lines("requests", query)
    lines += [
        "| summarize Requests = count() by ResultCode",
        "| order by Requests desc, ResultCode asc",
    ]
    return "\n".join(lines)


def kpis(query: TelemetryQuery) -> str:
    """One row: Requests, Failed, MeanMs, p50, p95, p99 over the window."""
    lines = source_lines("requests", query)
    lines += [
        f"| summarize {REQUEST_STATS}, {PERCENTILES}",
        f"| project Requests, Failed, MeanMs, {_percentile_projection()}",
    ]
    return "\n".join(lines)
