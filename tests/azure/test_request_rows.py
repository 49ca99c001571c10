"""Contract: the `AppRequests` rows Azure's inference server produces, and what the KQL reads.

`azureml-inference-server-http` logs a request from `AppInsightsClient.log_request`
(azureml_inference_server_http/server/appinsights_client.py): a SERVER span named after the path
with the outcome as attributes `name`, `url`, `start_time`, `duration` (`%02d:%02d:%02d.%03d`
of the handler's milliseconds, `D.` prefixed past a day in the OpenCensus versions),
`resultCode` (str), `success` (bool), `http_method`, `Request Id`, `Client Request Id`,
`Container Id`, `Workspace Name` and `Service Name`; the span's resource is named after
`SERVICE_NAME`. The exporters map a SERVER span without `http.*` attributes to ResultCode "0"
and Success true, and put the attributes in `Properties`. From 1.5.0 (OpenTelemetry) the span
starts when it is logged (DurationMs ≈ 0); up to 1.4.x (OpenCensus) its start is set back to the
request's start.
"""

from __future__ import annotations

import re

from lib.azure import kql as k

SERVER_PROPERTIES = {
    "Container Id": "blue-ep-bank-7d9f-xk2lp",
    "Request Id": "5b0f1c6e-8d6c-4c4e-9d51-3b1b5a0f2e11",
    "Client Request Id": "",
    "Response Value": None,
    "name": "/score",
    "url": "http://ep-bank.westeurope.inference.ml.azure.com/score",
    "start_time": "2025-03-01T10:00:00.123456Z",
    "duration": "00:00:00.038",
    "resultCode": "422",
    "success": "False",
    "http_method": "POST",
    "Workspace Name": "ws-opsdeck",
    "Service Name": "ep-bank/blue",
}
# One 422 answered in 38 ms, as each server generation leaves it in AppRequests.
ROW_1_5 = {
    "Name": "/score",
    "ResultCode": "0",
    "Success": True,
    "DurationMs": 0.021,
    "Url": "",
    "AppRoleName": "ep-bank/blue",
    "Properties": SERVER_PROPERTIES,
}
ROW_1_4 = {**ROW_1_5, "DurationMs": 38.4}
PROPERTY_READ = re.compile(r'Properties\["([^"]+)"\]')
# KQL timespan literals: [d.]hh:mm:ss[.fffffff]
TIMESPAN = re.compile(r"^(\d+\.)?\d{2}:\d{2}:\d{2}(\.\d{1,7})?$")


def server_duration(ms: float) -> str:
    """The server's own formatting of a handler time (re-stated from `_calc_duration`)."""
    parts, rest = [], int(ms)
    for multiplier in (1000, 60, 60, 24):
        parts.append(rest % multiplier)
        rest //= multiplier
    text = "%02d:%02d:%02d.%03d" % tuple(reversed(parts))  # noqa: UP031 - the server's format
    return f"{rest}.{text}" if rest else text


def test_every_property_the_kql_reads_is_one_the_server_writes() -> None:
    expressions = [k.ROLE_EXPR, *k.REQUEST_FIELDS.values()]
    read = {name for expr in expressions for name in PROPERTY_READ.findall(expr)}
    assert read == {"Service Name", "resultCode", "success", "url", "duration"}
    assert read <= set(SERVER_PROPERTIES)


def test_the_server_record_wins_over_the_standard_columns() -> None:
    # Both generations leave ResultCode "0", Success true and Url empty: the property is read
    # first, the standard column only when the property is missing (other servers).
    for column, prop in [
        ("ResultCode", "resultCode"),
        ("Success", "success"),
        ("Url", "url"),
        ("DurationMs", "duration"),
    ]:
        expr = k.REQUEST_FIELDS[column]
        assert expr.startswith("coalesce(") and expr.endswith(f", {column})")
        assert expr.index(f'Properties["{prop}"]') < expr.rindex(column)
        assert ROW_1_5[column] != _real(column)
    assert ROW_1_4["ResultCode"] == "0" and ROW_1_4["Success"] is True


def test_the_server_duration_is_a_kql_timespan() -> None:
    assert server_duration(38.4) == SERVER_PROPERTIES["duration"]
    for ms in (0, 1.5, 999, 61_000, 3_600_000 * 25 + 7):
        assert TIMESPAN.match(server_duration(ms)), server_duration(ms)
    assert server_duration(3_600_000 * 25 + 7) == "1.01:00:00.007"


def test_rows_split_into_endpoint_and_deployment_by_service_name() -> None:
    assert k.service_name("ep-bank", "blue") == SERVER_PROPERTIES["Service Name"]
    lines = k.source_lines("requests")
    assert 'Endpoint = tostring(split(Role, "/")[0])' in lines[2]
    assert 'Deployment = tostring(split(Role, "/")[1])' in lines[2]
    assert k.REQUEST_PROJECTION["Deployment"] == "Deployment"  # request rows carry it too


def _real(column: str) -> object:
    return {"ResultCode": "422", "Success": False, "Url": SERVER_PROPERTIES["url"]}.get(
        column, 38.0
    )
