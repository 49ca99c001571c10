"""Logs: an endpoint's requests and traces as App Insights-style charts and tables.

Charts and tiles come from the telemetry service's aggregates (computed where the data lives);
"Live" re-runs only them. Tables are limited pages of raw rows; the CSV is built on click.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from lib import charts, logs_view
from lib.ui import figure, workspace
from lib.workspace import WorkspaceError

ws = workspace()
st.title("Logs")
if ws.telemetry is None:
    st.info("This workspace has no telemetry service.")
    st.stop()
telemetry = ws.telemetry

names = [e.name for e in ws.endpoints.list()] if ws.endpoints else []
c1, c2, c3 = st.columns([2, 2, 1])
endpoint = c1.selectbox("Endpoint", ["All endpoints", *names], key="logs_endpoint")
span = c2.selectbox(
    "Time range",
    list(logs_view.RANGES),
    index=list(logs_view.RANGES).index(logs_view.DEFAULT_RANGE),
    key="logs_range",
)
live = c3.toggle(
    "Live",
    value=False,
    key="logs_live",
    help=f"Refresh the charts every {logs_view.LIVE_EVERY_S} s (tables refresh on any change)",
)
chosen = None if endpoint == "All endpoints" else endpoint
bin_s = logs_view.RANGES[span][1]


def _warn(*frames) -> None:  # noqa: ANN002
    for message in {getattr(f, "attrs", {}).get("warning") for f in frames} - {None, ""}:
        st.warning(message)


@st.fragment(run_every=logs_view.LIVE_EVERY_S if live else None)
def dashboard() -> None:
    query = logs_view.window(span, chosen)
    try:
        kpis = telemetry.kpis(query)
        overall = telemetry.summary(query, bin_s, by=())
        codes = telemetry.result_codes(query, bin_s)
        status = telemetry.status_codes(query)
        split = telemetry.summary(query, bin_s, by=("Deployment",)) if chosen else None
    except WorkspaceError as exc:
        st.warning(str(exc))
        return
    if kpis.warning:
        st.warning(kpis.warning)
    _warn(overall, codes, status)
    for column, tile in zip(st.columns(5), logs_view.kpi_tiles(kpis), strict=True):
        column.metric(
            tile.label,
            tile.value,
            tile.delta,
            border=True,
            delta_color=tile.delta_color,
            delta_arrow="off",
            help=tile.help,
        )
    # Charts in App Insights' grouping; only the open tab's are built and sent (each chart
    # costs the browser ~0.1 s to draw, bench/page_speed.py).
    split_shown = split is not None and len(logs_view.deployments(split)) > 1
    views = ["Performance", "Failures"] + (["By deployment"] if split_shown else [])
    tabs = dict(zip(views, st.tabs(views, key="logs_charts", on_change="rerun"), strict=True))
    if tabs["Performance"].open:
        left, right = tabs["Performance"].columns(2)
        left.plotly_chart(figure(charts.requests_by_result, codes, bin_s), key="logs_by_result")
        right.plotly_chart(
            figure(charts.request_latency_percentiles, overall, bin_s), key="logs_latency"
        )
    if tabs["Failures"].open:
        left, right = tabs["Failures"].columns(2)
        left.plotly_chart(figure(charts.failure_rate, overall, bin_s), key="logs_failures")
        right.plotly_chart(
            figure(charts.status_codes, logs_view.status_count_frame(status)), key="logs_codes"
        )
    if split_shown and tabs["By deployment"].open:
        left, right = tabs["By deployment"].columns(2)
        left.plotly_chart(figure(charts.deployment_lines, split, "p95", bin_s), key="logs_dep_p95")
        right.plotly_chart(
            figure(charts.deployment_lines, split, "FailureRate", bin_s), key="logs_dep_failures"
        )
        left.plotly_chart(
            figure(charts.deployment_lines, split, "Requests", bin_s), key="logs_dep_requests"
        )
        if ws.monitoring is not None:
            shares = ws.monitoring.prediction_shares(query)
            right.plotly_chart(figure(charts.prediction_shares, shares), key="logs_dep_predictions")
    st.caption(
        f"{span}, bins of {charts.bin_label(bin_s)}; updated "
        f"{datetime.now(UTC):%H:%M:%S} UTC" + (" (live)" if live else "")
    )


dashboard()

# Tables read the window once per run (not on every live refresh), a page at a time; only the
# open tab's table is read and sent (four grids on every run cost the browser ~0.2 s).
query = logs_view.window(span, chosen)
rows = logs_view.PAGE_ROWS
tab_recent, tab_failed, tab_slow, tab_traces, tab_export, tab_query = st.tabs(
    ["Requests", "Failed", "Slowest", "Traces", "Export", "Query"],
    key="logs_tab",
    on_change="rerun",
)
try:
    if tab_recent.open:
        with tab_recent:
            page = st.number_input("Page", min_value=1, value=1, step=1, key="logs_requests_page")
            recent = telemetry.recent(query, rows, logs_view.offset(page))
            st.caption(logs_view.page_caption(page, len(recent)))
            st.dataframe(recent, hide_index=True, key="logs_requests")
    if tab_failed.open:
        with tab_failed:
            page = st.number_input("Page", min_value=1, value=1, step=1, key="logs_failed_page")
            failed = telemetry.failed(query, rows, logs_view.offset(page))
            st.caption(logs_view.page_caption(page, len(failed), what="failed requests"))
            st.dataframe(failed, hide_index=True, key="logs_failed")
    if tab_slow.open:
        with tab_slow:
            slowest = telemetry.slowest(query, logs_view.SLOWEST_ROWS)
            st.caption(
                f"The {logs_view.SLOWEST_ROWS} slowest requests of the range, slowest first."
            )
            st.dataframe(slowest, hide_index=True, key="logs_slowest")
    if tab_traces.open:
        with tab_traces:
            text = st.text_input("Message contains", key="logs_traces_text")
            page = st.number_input("Page", min_value=1, value=1, step=1, key="logs_traces_page")
            traces = telemetry.recent_traces(query, text, rows, logs_view.offset(page))
            st.caption(logs_view.page_caption(page, len(traces), what="traces"))
            st.dataframe(traces, hide_index=True, key="logs_traces")
except WorkspaceError as exc:
    st.warning(str(exc))
with tab_export:
    st.caption(
        "Every request of the range as CSV, oldest first. The file is built from the store "
        "when you click, streamed in chunks, not on every refresh."
    )
    st.download_button(
        "Download requests (CSV)",
        data=lambda: b"".join(telemetry.export_csv(query)),
        file_name=logs_view.csv_name(chosen, span),
        mime="text/csv",
        on_click="ignore",
        key="logs_export",
    )
with tab_query:
    st.caption("The query behind the request tables")
    st.code(telemetry.query_text("requests", query), language="sql" if ws.kind == "local" else None)
