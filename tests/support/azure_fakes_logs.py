"""Fakes of `LogsQueryClient`: one at its boundary, one at the HTTP transport under the SDK.

`FakeLogsClient` answers `query_workspace` with the SDK's own result objects. `LogAnalyticsAdapter`
answers the Log Analytics query API's HTTP requests with JSON, so the real `LogsQueryClient`
builds the request and parses the response itself.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.monitor.query import LogsQueryError, LogsQueryPartialResult, LogsQueryResult, LogsTable

# Log Analytics column types of what our projections return.
KQL_TYPES = {
    "TimeGenerated": "datetime",
    "OperationId": "string",
    "Name": "string",
    "Url": "string",
    "ResultCode": "string",
    "DurationMs": "real",
    "Success": "bool",
    "Endpoint": "string",
    "Deployment": "string",
    "ModelVersion": "string",
    "Rows": "long",
    "Message": "string",
    "SeverityLevel": "int",
}


def projected_columns(query: str) -> list[str]:
    """The output column names of the query's final `project`."""
    line = query.strip().splitlines()[-1]
    assert line.startswith("| project "), query
    names, depth, current = [], 0, ""
    for ch in line.removeprefix("| project ") + ",":
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            names.append(current.split("=")[0].strip())
            current = ""
        else:
            current += ch
    return names


def table_for(query: str, rows: list[dict[str, Any]]) -> LogsTable:
    """What the service answers to `query`: the projected columns, in order, with wire values."""
    columns = projected_columns(query)
    return LogsTable(
        name="PrimaryResult",
        columns=columns,
        columns_types=[KQL_TYPES[c] for c in columns],
        rows=[[row.get(c) for c in columns] for row in rows],
    )


class FakeLogsClient:
    """Stands in for `LogsQueryClient`: records the KQL, answers with SDK result objects."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows = rows or []
        self.calls: list[tuple[str, str, Any]] = []
        self.partial_error: LogsQueryError | None = None
        self.error: Exception | None = None

    @property
    def last_query(self) -> str:
        return self.calls[-1][1]

    def query_workspace(
        self, workspace_id: str, query: str, *, timespan: Any, **_: Any
    ) -> LogsQueryResult | LogsQueryPartialResult:
        self.calls.append((workspace_id, query, timespan))
        if self.error is not None:
            raise self.error
        table = table_for(query, self.rows)
        if self.partial_error is not None:
            return LogsQueryPartialResult(partial_data=[table], partial_error=self.partial_error)
        return LogsQueryResult(tables=[table])


class FakeCredential:
    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken("fake-token", int(time.time()) + 3600)


class LogAnalyticsAdapter(requests.adapters.BaseAdapter):
    """The Log Analytics query API at the HTTP level: canned JSON answers, recorded requests."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__()
        self.status, self.body = status, body
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = self.status
        content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json; charset=utf-8"
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(content), status=self.status, preload_content=False
        )
        response.request, response.url = request, request.url
        return response

    def close(self) -> None:
        pass


def wire_table(query: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = projected_columns(query)
    return {
        "name": "PrimaryResult",
        "columns": [{"name": c, "type": KQL_TYPES[c]} for c in columns],
        "rows": [[row.get(c) for c in columns] for row in rows],
    }
