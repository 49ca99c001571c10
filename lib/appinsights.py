"""App Insights table schemas and the one telemetry query object, for both backends.

The local telemetry store writes these columns; the Azure backend projects its KQL onto them,
so pages and charts read either backend's frames unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

# `AppRequests`, in this order. `Deployment` is "" where the row does not name one.
REQUEST_COLUMNS: list[str] = [
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
# `AppTraces`, in this order.
TRACE_COLUMNS: list[str] = ["TimeGenerated", "Message", "SeverityLevel", "Endpoint"]
# The Logs page's aggregates (`TelemetryService.summary`, `.result_codes`, `.status_codes`).
# `TimeGenerated` there is a bin's start; p50/p95/p99/MeanMs are request durations in ms.
SUMMARY_COLUMNS: list[str] = [
    "TimeGenerated",
    "Endpoint",
    "Deployment",
    "Requests",
    "Failed",
    "p50",
    "p95",
    "p99",
    "MeanMs",
]
CODE_COLUMNS: list[str] = ["TimeGenerated", "ResultCode", "Requests"]
STATUS_COLUMNS: list[str] = ["ResultCode", "Requests"]
KINDS = ("requests", "traces")
TABLES = {"requests": "AppRequests", "traces": "AppTraces"}
COLUMNS = {"requests": REQUEST_COLUMNS, "traces": TRACE_COLUMNS}


def to_utc(value: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime (naive means UTC) or an ISO 8601 string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class TelemetryQuery:
    """Which rows to read: one endpoint (None: all), the window [since, until), the newest `limit`.

    Times are normalised to aware UTC datetimes; `limit=None` returns every row of the window.
    """

    endpoint: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so every backend sees the same types.
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, to_utc(value))
        if self.limit is not None:
            limit = int(self.limit)
            if limit < 0:
                raise ValueError("limit must be >= 0")
            object.__setattr__(self, "limit", limit)

    @classmethod
    def last(
        cls,
        window: timedelta,
        endpoint: str | None = None,
        limit: int | None = None,
        now: datetime | None = None,
    ) -> TelemetryQuery:
        """The `window` ending now (or at `now`)."""
        until = to_utc(now) if now is not None else datetime.now(UTC)
        return cls(endpoint=endpoint, since=until - window, until=until, limit=limit)

    def with_limit(self, limit: int | None) -> TelemetryQuery:
        return replace(self, limit=limit)


@dataclass(frozen=True)
class RequestKpis:
    """The Logs page's tiles for one window; durations in ms (None without requests).

    `percentile_error` is the largest relative error of p50/p95/p99 (0.0 when exact);
    `warning` carries partial results or throttling reported by the backend.
    """

    requests: int = 0
    failed: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean_ms: float | None = None
    percentile_error: float = 0.0
    warning: str = ""

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None


def check_kind(kind: str) -> str:
    """`kind` if it names a telemetry table ("requests" or "traces"), else ValueError."""
    if kind not in KINDS:
        raise ValueError(f"unknown telemetry kind {kind!r}; expected one of {KINDS}")
    return kind
