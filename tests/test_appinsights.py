from datetime import UTC, datetime, timedelta, timezone

import pytest

from lib.appinsights import (
    REQUEST_COLUMNS,
    TRACE_COLUMNS,
    TelemetryQuery,
    check_kind,
    to_utc,
)

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def test_columns_follow_app_insights() -> None:
    assert REQUEST_COLUMNS == [
        "TimeGenerated",
        "OperationId",
        "Name",
        "Url",
        "ResultCode",
        "DurationMs",
        "Success",
        "Endpoint",
        "Deployment",
        "ModelVersion",
        "Rows",
    ]
    assert TRACE_COLUMNS == ["TimeGenerated", "Message", "SeverityLevel", "Endpoint"]


def test_query_times_are_aware_utc() -> None:
    query = TelemetryQuery(
        "ep", since="2026-01-31T13:00:00+01:00", until=datetime(2026, 1, 31, 13), limit="5"
    )
    assert query.since == T0 and query.since.tzinfo is UTC
    assert query.until == T0 + timedelta(hours=1)  # naive means UTC
    assert query.limit == 5
    assert to_utc("2026-01-31T12:00:00Z") == T0
    assert to_utc(T0.astimezone(timezone(timedelta(hours=-5)))) == T0


def test_query_refuses_a_negative_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        TelemetryQuery(limit=-1)


def test_last_window_and_limit_change() -> None:
    query = TelemetryQuery.last(timedelta(minutes=15), endpoint="ep", now=T0)
    assert (query.endpoint, query.since, query.until, query.limit) == (
        "ep",
        T0 - timedelta(minutes=15),
        T0,
        None,
    )
    limited = query.with_limit(200)
    assert limited.limit == 200 and limited.since == query.since and query.limit is None
    assert TelemetryQuery() == TelemetryQuery(None, None, None, None)


def test_kinds() -> None:
    assert check_kind("traces") == "traces"
    with pytest.raises(ValueError, match="unknown telemetry kind"):
        check_kind("metrics")
