"""What the Logs and Monitoring pages show, as plain data: time ranges and their chart bins, KPI
tile text, table pages and the CSV export. No Streamlit here; the pages only lay it out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from lib.appinsights import RequestKpis, TelemetryQuery
from lib.settings import MonitoringSettings

# Range -> (window, chart bin in seconds): a few dozen to a few hundred points per chart.
RANGES: dict[str, tuple[timedelta, int]] = {
    "Last 15 minutes": (timedelta(minutes=15), 60),
    "Last hour": (timedelta(hours=1), 60),
    "Last 24 hours": (timedelta(days=1), 900),
    "Last 7 days": (timedelta(days=7), 3600),
    "Last 30 days": (timedelta(days=30), 21600),
    "Last 90 days": (timedelta(days=90), 86400),
}
DEFAULT_RANGE = "Last hour"
PAGE_ROWS = 100
SLOWEST_ROWS = 50
LIVE_EVERY_S = 5
# The Monitoring view: drift is read from 5-minute, hour and day roll-ups.
DRIFT_RANGES: dict[str, tuple[timedelta, int]] = {
    "Last hour": (timedelta(hours=1), 300),
    "Last 24 hours": (timedelta(days=1), 3600),
    "Last 7 days": (timedelta(days=7), 3600),
    "Last 30 days": (timedelta(days=30), 86400),
}
STATE_ICONS = {"OK": "🟢", "watch": "🟠", "drift": "🔴", "no data": "⚪"}


def drift_label(state: str) -> str:
    """'🔴 drift', '⚪ no data' ...: a drift state as shown beside an endpoint."""
    return f"{STATE_ICONS.get(state, '')} {state}".strip()


def window(label: str, endpoint: str | None, now: datetime | None = None) -> TelemetryQuery:
    """The query for a range label ending now, starting on a bin boundary.

    The first bin is whole (a partial one reads as a dip), and the charts' data change only when
    requests arrive or a bin passes, so unchanged figures are reused between reruns.
    """
    span, bin_s = RANGES[label]
    until = now.astimezone(UTC) if now is not None else datetime.now(UTC)
    start = (until - span).timestamp()
    since = datetime.fromtimestamp(start - start % bin_s, UTC)
    return TelemetryQuery(endpoint=endpoint, since=since, until=until)


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    delta: str | None = None  # a share beside the value (no arrow: it is not a change)
    help: str | None = None
    delta_color: str = "off"  # "inverse": red, something is wrong


def kpi_tiles(kpis: RequestKpis) -> list[Tile]:
    """Requests, failed (with the rate), p50, p95, p99."""
    rate = kpis.failure_rate
    note = (
        f"Nearest-rank percentile, within ±{100 * kpis.percentile_error:.0f} % "
        "(from log-spaced latency buckets)"
        if kpis.percentile_error
        else "Nearest-rank percentile"
    )
    return [
        Tile("Requests", f"{kpis.requests:,}"),
        Tile(
            "Failed",
            f"{kpis.failed:,}",
            f"{rate:.1%}" if rate is not None else None,
            delta_color="inverse" if kpis.failed else "off",
        ),
        Tile("p50", ms(kpis.p50), help=note),
        Tile("p95", ms(kpis.p95), help=note),
        Tile("p99", ms(kpis.p99), help=note),
    ]


def status_count_frame(status: pd.DataFrame) -> pd.DataFrame:
    """`STATUS_COLUMNS` as the (code, count) frame the status chart draws."""
    return pd.DataFrame({"code": status["ResultCode"], "count": status["Requests"]})


def deployments(summary: pd.DataFrame) -> list[str]:
    """Deployments that answered in a summary split by deployment."""
    if summary.empty:
        return []
    return sorted(summary["Deployment"].fillna("").astype(str).unique())


def offset(page: int, rows: int = PAGE_ROWS) -> int:
    return (max(1, int(page)) - 1) * rows


def page_caption(page: int, shown: int, rows: int = PAGE_ROWS, what: str = "requests") -> str:
    """'Newest first, 100 per page: rows 101–200' (or that the page is past the end)."""
    start = offset(page, rows)
    if not shown:
        return f"No {what} on page {page}." if page > 1 else f"No {what} in this range."
    return f"Newest first, {rows} per page: rows {start + 1:,}–{start + shown:,}."


def csv_name(endpoint: str | None, label: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M")
    span = label.lower().replace("last ", "").replace(" ", "")
    return f"requests-{endpoint or 'all'}-{span}-{stamp}.csv"


def sampling_text(settings: MonitoringSettings) -> str:
    """How sampling and retention are set, in one sentence."""
    if not settings.drift_sampling:
        return "Input sampling is off (OPSDECK_DRIFT_SAMPLING=off): endpoints record no inputs."
    return (
        f"Endpoints record {settings.drift_rate:.0%} of scored requests, at most "
        f"{settings.drift_cap_per_minute:,} rows a minute per server, as counts in the training "
        f"profile's bins; 5-minute counts are kept {settings.raw_days:g} days, hourly and daily "
        f"counts {settings.rollup_days:g} days."
    )


AZURE_DATA_COLLECTION = (
    "Drift needs the deployment's scored inputs. On Azure ML, turn on data collection for the "
    "deployment: `ManagedOnlineDeployment(..., data_collector=DataCollector(collections="
    '{"model_inputs": DeploymentCollection(enabled="true"), '
    '"model_outputs": DeploymentCollection(enabled="true")}, sampling_rate=1.0))`, or '
    "`data_collector:` in the deployment YAML; collected inputs land in the workspace's default "
    "blob datastore (`azureml://datastores/workspaceblobstore/paths/modelDataCollector/...`). "
    "This console does not read them yet; Azure ML's model monitoring does."
)
