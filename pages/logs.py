"""Logs: an endpoint's requests and traces as App Insights-style charts and tables."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from lib import charts
from lib.appinsights import TelemetryQuery
from lib.ui import workspace
from lib.workspace import WorkspaceError

ws = workspace()
st.title("Logs")
if ws.telemetry is None:
    st.info("This workspace has no telemetry service.")
    st.stop()

RANGES = {
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
}
BINS = {
    "Last 15 minutes": "30s",
    "Last hour": "1min",
    "Last 24 hours": "15min",
    "Last 7 days": "1h",
}

names = [e.name for e in ws.endpoints.list()] if ws.endpoints else []
c1, c2, c3 = st.columns([2, 2, 1])
endpoint = c1.selectbox("Endpoint", ["All endpoints", *names], key="logs_endpoint")
span = c2.selectbox("Time range", list(RANGES), index=1, key="logs_range")
live = c3.toggle("Live", value=False, key="logs_live", help="Refresh every 5 s")
chosen = None if endpoint == "All endpoints" else endpoint


@st.fragment(run_every=5 if live else None)
def dashboard() -> None:
    query = TelemetryQuery.last(RANGES[span], endpoint=chosen)
    try:
        requests = ws.telemetry.requests(query)
        traces = ws.telemetry.traces(query.with_limit(200))
    except WorkspaceError as exc:
        st.warning(str(exc))
        return
    bin_ = BINS[span]
    total = len(requests)
    failed = int((~requests["Success"].astype(bool)).sum()) if total else 0
    c = st.columns(4)
    c[0].metric("Requests", f"{total:,}", border=True)
    c[1].metric(
        "Failed",
        f"{failed:,}",
        f"{failed / total:.1%}" if total else None,
        border=True,
        delta_color="inverse",
    )
    c[2].metric("p50", f"{requests['DurationMs'].median():.1f} ms" if total else "–", border=True)
    c[3].metric(
        "p95", f"{requests['DurationMs'].quantile(0.95):.1f} ms" if total else "–", border=True
    )
    left, right = st.columns(2)
    left.plotly_chart(charts.requests_by_result(requests, bin=bin_), key="logs_by_result")
    right.plotly_chart(charts.request_latency_percentiles(requests, bin=bin_), key="logs_latency")
    left.plotly_chart(charts.failure_rate(requests, bin=bin_), key="logs_failures")
    if total:
        codes = (
            requests.groupby("ResultCode")
            .size()
            .reset_index(name="count")
            .rename(columns={"ResultCode": "code"})
        )
        right.plotly_chart(charts.status_codes(codes), key="logs_codes")
    tab_req, tab_traces, tab_query = st.tabs(["Requests", "Traces", "Query"])
    with tab_req:
        st.dataframe(
            requests.sort_values("TimeGenerated", ascending=False).head(500),
            hide_index=True,
            key="logs_requests",
        )
        st.download_button(
            "Export requests (CSV)",
            requests.to_csv(index=False).encode(),
            file_name="requests.csv",
            key="logs_export",
        )
    with tab_traces:
        st.dataframe(
            traces.sort_values("TimeGenerated", ascending=False)
            if not traces.empty
            else pd.DataFrame(),
            hide_index=True,
            key="logs_traces",
        )
    with tab_query:
        st.caption("The query behind these tables")
        st.code(ws.telemetry.query_text("requests", query), language="sql")


dashboard()
