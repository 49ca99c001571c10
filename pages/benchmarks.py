"""Benchmarks: load-test an endpoint, watch it live, compare runs, export results."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lib import charts
from lib.audit import audited
from lib.benchmark import (
    ab_available,
    ab_key_notice,
    comparison_frames,
    equivalent_ab_command,
    request_from_form,
    run_label,
    slo_verdict,
    status_count_frame,
)
from lib.ui import figure, state_label, workspace
from lib.workspace import WorkspaceError

CUSTOM_URL = "Custom URL"
EMPTY_BODY = "(empty body)"

ws = workspace()
st.title("Benchmarks")
if ws.benchmarks is None:
    st.info("This workspace has no benchmark service.")
    st.stop()
bench = ws.benchmarks

# --- configure ----------------------------------------------------------------------------------

endpoints = [e for e in (ws.endpoints.list() if ws.endpoints else []) if e.state == "Succeeded"]
with st.expander("New benchmark", expanded=True, icon=":material/speed:"):
    options = [e.name for e in endpoints] + [CUSTOM_URL]
    target = st.selectbox("Target", options, key="bench_target")
    key: str | None = None
    columns: list[str] = []
    if target == CUSTOM_URL:
        url = st.text_input(
            "Scoring URL", key="bench_url", placeholder="http://127.0.0.1:8000/score"
        )
        key = st.text_input("Key (Bearer)", type="password", key="bench_key") or None
    else:
        ep = next(e for e in endpoints if e.name == target)
        url = ep.scoring_uri
        key = ws.endpoints.keys(ep.name)[0]
        try:
            columns = [c["name"] for c in ws.models.feature_spec(ep.model_name, ep.model_version)]
        except WorkspaceError:
            columns = []
        st.caption(f"{ep.model_name} v{ep.model_version} · {url}")
    c1, c2, c3, c4 = st.columns(4)
    concurrency = c1.number_input("Concurrency", 1, 1000, 8, key="bench_concurrency")
    mode = c2.radio("Stop after", ["requests", "duration"], horizontal=True, key="bench_mode")
    if mode == "requests":
        n_requests = c3.number_input("Requests", 1, 1_000_000, 5000, step=500, key="bench_requests")
        duration = None
    else:
        duration = c3.number_input("Duration (s)", 1, 3600, 30, key="bench_duration")
        n_requests = None
    warmup = c4.number_input("Warm-up requests", 0, 10_000, 50, key="bench_warmup")
    c1, c2, c3, c4 = st.columns(4)
    datasets = ws.datasets.list()
    ds_names = [d.name for d in datasets]
    # A model endpoint needs real rows: preselect the newest dataset that has its columns.
    fits = [
        i + 1
        for i, d in enumerate(datasets)
        if columns and set(columns) <= set(ws.datasets.get(d.name).column_names)
    ]
    ds = c1.selectbox(
        "Bodies from dataset",
        [EMPTY_BODY, *ds_names],
        index=fits[0] if fits else 0,
        key=f"bench_dataset_{target}",
    )
    rows = c2.number_input("Rows per request", 1, 10_000, 1, key="bench_rows")
    timeout = c3.number_input("Timeout per request (s)", 0.1, 300.0, 10.0, key="bench_timeout")
    keep_alive = c4.toggle("Keep-alive", value=True, key="bench_keepalive")
    c1, c2, c3, c4 = st.columns(4)
    slo_p95 = c1.number_input("SLO p95 (ms, 0 = none)", 0.0, 60_000.0, 0.0, key="bench_slo_p95")
    slo_err = c2.number_input("SLO max error %", 0.0, 100.0, 1.0, key="bench_slo_err")
    tools = ["opsdeck"] + (["ab"] if ab_available() else [])
    tool = c3.radio("Load generator", tools, horizontal=True, key="bench_tool")
    label = c4.text_input("Label", key="bench_label", placeholder="e.g. before redeploy")
    request = request_from_form(
        url=url,
        endpoint=None if target == CUSTOM_URL else target,
        concurrency=concurrency,
        requests=n_requests,
        duration_s=duration,
        warmup=warmup,
        timeout_s=timeout,
        rows_per_request=rows,
        dataset=None if ds == EMPTY_BODY else ds,
        columns=columns,
        keep_alive=keep_alive,
        tool=tool,
        slo_p95_ms=slo_p95,
        slo_max_error_percent=slo_err,
        label=label,
    )
    st.caption("Equivalent Apache Bench command")
    st.code(equivalent_ab_command(request, key), language="bash")
    exposed = ab_key_notice(key) if tool == "ab" else None
    if exposed:
        st.warning(exposed, icon=":material/visibility:")
        accepted = st.checkbox(
            "Run ab with the key visible in the process list", key="bench_ab_key_visible"
        )
    else:
        accepted = True
    if st.button(
        "Run benchmark",
        type="primary",
        key="bench_run",
        icon=":material/play_arrow:",
        disabled=not accepted,
    ):
        try:
            job = bench.start(request, key)
        except WorkspaceError as exc:
            st.error(str(exc))
        else:
            st.session_state["bench_job"] = job.id

# --- live run -------------------------------------------------------------------------------------

jobs = bench.jobs()
current = st.session_state.get("bench_job") or (jobs[0].id if jobs else None)
shown_job = next((j for j in jobs if j.id == current), None)


@st.fragment(run_every=1 if shown_job is not None and not shown_job.is_terminal else None)
def live(job_id: str) -> None:
    """The latest run while it runs (refreshing each second); a finished run is one line."""
    job = bench.get(job_id)
    if job.is_terminal and not shown_job.is_terminal:
        # It just ended: redraw the page with its result selected, and stop refreshing.
        st.session_state["bench_selected"] = bench.run_id(job_id)
        st.rerun()
    p = job.progress
    if job.is_terminal and not job.error:
        st.caption(f"Latest run: {job.display_name} — {state_label(job.state)}")
        return
    with st.container(border=True):
        st.markdown(f"**{job.display_name}** — {state_label(job.state)}")
        st.progress(float(p.get("fraction", 0.0)), text=f"{p.get('done', 0):,} requests")
        c = st.columns(3)
        c[0].metric("Current req/s", f"{p.get('rps', 0):,.0f}", border=True)
        c[1].metric("Errors", p.get("errors", 0), border=True)
        c[2].metric("Elapsed", f"{p.get('elapsed_s', 0):.1f} s", border=True)
        if not job.is_terminal and st.button("Cancel", key=f"bench_cancel_{job_id}"):
            bench.cancel(job_id)
        if job.error:
            st.error(job.error)
            st.code(bench.log_tail(job_id), language=None)


if shown_job is not None:
    live(shown_job.id)

# --- history and comparison -----------------------------------------------------------------


@st.cache_data(ttl=30, show_spinner=False)
def history_table(where: str, ended: tuple[str, ...]) -> pd.DataFrame:
    """The saved runs; read again when a run ends or is deleted, else at most every 30 s."""
    return bench.list()


history = history_table(ws.description, tuple(j.id for j in jobs if j.is_terminal))
if history.empty:
    st.stop()
st.subheader("History")
picked = st.dataframe(
    history,
    hide_index=True,
    key="bench_history",
    on_select="rerun",
    selection_mode="multi-row",
    column_config={
        "req_s": st.column_config.NumberColumn("req/s", format="%.1f"),
        "p50_ms": st.column_config.NumberColumn("p50 ms", format="%.2f"),
        "p95_ms": st.column_config.NumberColumn("p95 ms", format="%.2f"),
        "p99_ms": st.column_config.NumberColumn("p99 ms", format="%.2f"),
    },
)
rows_picked = list(picked.selection.rows) if picked else []
if not rows_picked:
    selected = st.session_state.get("bench_selected")
    ids = history["id"].tolist()
    rows_picked = [ids.index(selected)] if selected in ids else [0]
run_ids = [history.iloc[i]["id"] for i in rows_picked]

results = {rid: bench.result(rid) for rid in run_ids}
c1, c2 = st.columns(2)
c1.download_button(
    "Export history (CSV)", history.to_csv(index=False).encode(), "benchmarks.csv", key="bench_csv"
)
c2.download_button(
    "Export selected runs (JSON)",
    json.dumps([r.to_dict() for r, _ in results.values()], indent=2).encode(),
    "benchmarks.json",
    key="bench_json",
)

if len(results) == 1:
    rid, (result, samples) = next(iter(results.items()))
    st.subheader(run_label(rid, result))
    # Two rows of three: six cards in one row cut their values off at 1,400 px.
    if result.requests and result.ok == 0:
        kinds = ", ".join(f"{k} ×{n:,}" for k, n in (result.error_kinds or {}).items() if n)
        st.error(
            f"No request succeeded ({kinds or 'every one failed'}): the numbers below measure "
            "failures, not the model. Check the URL, the key and that the endpoint is running."
        )

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:,.2f}"

    c = st.columns(3)
    c[0].metric("Throughput (req/s)", f"{result.throughput_rps:,.1f}", border=True)
    c[1].metric("Errors", f"{result.errors:,} ({result.error_rate:.1%})", border=True)
    c[2].metric("Mean (ms)", ms(result.mean_ms), border=True)
    c = st.columns(3)
    c[0].metric("p50 (ms)", ms(result.p50_ms), border=True)
    c[1].metric("p95 (ms)", ms(result.p95_ms), border=True)
    c[2].metric("p99 (ms)", ms(result.p99_ms), border=True)
    if result.slo is not None:
        (st.success if result.slo_passed else st.error)(f"SLO: {slo_verdict(result.slo)}")
    if result.command:
        st.code(result.command, language="bash")

frames = comparison_frames(results)
# Only the open tab's charts are built and sent: each chart costs the browser ~0.1 s to draw.
views = ["Latency", "Over time"] + (["Status codes"] if len(results) == 1 else [])
tabs = dict(zip(views, st.tabs(views, key="bench_charts", on_change="rerun"), strict=True))
if tabs["Latency"].open:
    with tabs["Latency"]:
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            figure(charts.latency_histogram, frames.latencies, by=frames.by), key="bench_hist"
        )
        c2.plotly_chart(figure(charts.latency_percentiles, frames.percentiles), key="bench_pct")
if tabs["Over time"].open:
    with tabs["Over time"]:
        if not frames.series.empty and frames.series["second"].max() < 2:
            st.caption(
                "Over-time charts have one point per second of the run: this run lasted under "
                "2 s, so they show a point or two. Run by duration for a curve."
            )
        c1, c2 = st.columns(2)
        c1.plotly_chart(figure(charts.latency_over_time, frames.series), key="bench_lat_time")
        c2.plotly_chart(figure(charts.throughput_over_time, frames.series), key="bench_tput_time")
if "Status codes" in tabs and tabs["Status codes"].open:
    with tabs["Status codes"]:
        result = next(iter(results.values()))[0]
        st.plotly_chart(figure(charts.status_codes, status_count_frame(result)), key="bench_codes")
with st.popover("Delete selected runs", icon=":material/delete:"):
    if st.button("Delete", key="bench_delete", type="primary"):
        for rid in run_ids:
            with audited("benchmark.delete", rid):
                bench.delete(rid)
        history_table.clear()
        st.rerun()
