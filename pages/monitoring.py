"""Monitoring: per endpoint, live inputs and predictions against the model's training profile."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from lib import logs_view
from lib.charts import monitoring as drift_charts
from lib.drift import MIN_ROWS
from lib.ui import workspace
from lib.workspace import WorkspaceError

ws = workspace()
st.title("Monitoring")
if ws.monitoring is None:
    st.info(logs_view.AZURE_DATA_COLLECTION if ws.kind == "azure" else "No model monitoring here.")
    st.stop()

names = [e.name for e in ws.endpoints.list()] if ws.endpoints else []
if not names:
    st.info("No endpoints yet: deploy a model, score it, and its drift shows here.")
    st.stop()
c1, c2 = st.columns([2, 2])
endpoint = c1.selectbox("Endpoint", names, key="monitoring_endpoint")
span = c2.selectbox("Time range", list(logs_view.DRIFT_RANGES), index=1, key="monitoring_range")
window, bin_s = logs_view.DRIFT_RANGES[span]
until = datetime.now(UTC)
try:
    report = ws.monitoring.report(endpoint, until - window, until, bin_s)
    if len(report.served) > 1:
        # Two deployments of different versions: each is compared with its own training data.
        labels = {bid: f"{label} — {rows:,} rows" for bid, label, rows in report.served}
        chosen = st.selectbox(
            "Model",
            list(labels),
            format_func=labels.__getitem__,
            key=f"monitoring_model_{endpoint}",
            help="The deployments of this endpoint serve more than one model version here.",
        )
        if chosen != report.served[0][0]:
            report = ws.monitoring.report(endpoint, until - window, until, bin_s, chosen)
except WorkspaceError as exc:
    st.warning(str(exc))
    st.stop()
st.caption(logs_view.sampling_text(ws.settings.monitoring))
if report.message:
    st.info(report.message)
    st.stop()

if report.rows < MIN_ROWS:
    st.info(
        f"{report.rows:,} rows sampled in this window: drift is judged from {MIN_ROWS} rows "
        "(on fewer, data that has not changed at all already reads as drifting). The shares "
        "below are shown as they are."
    )
drifting = [f for f in report.features if f.state == "drift"]
watching = [f for f in report.features if f.state == "watch"]
tiles = st.columns(4)
tiles[0].metric(
    "Input drift",
    f"{logs_view.STATE_ICONS.get(report.state, '')} {report.state}",
    border=True,
    help="The worst input feature: PSI under 0.1 OK, under 0.25 watch, from 0.25 drift "
    "(the predictions are compared below)",
)
tiles[1].metric("Sampled rows", f"{report.rows:,}", border=True)
tiles[2].metric(
    "Drifting features",
    f"{len(drifting)}",
    f"{len(watching)} to watch",
    border=True,
    delta_color="off",
    delta_arrow="off",
)
# "bank v1, target y": the dataset and version in the tile (it fits at 1,400 px), the rest in help.
source = report.baseline_source or "–"
dataset, _, rest = source.partition(", ")
tiles[3].metric("Training data", dataset, border=True, help=source if rest else None)

left, right = st.columns([2, 3])
left.plotly_chart(drift_charts.drift_ranking(report.features), key="monitoring_ranking")
with right:
    ranked = [f.feature for f in report.features]
    feature = st.selectbox("Feature", ranked, key="monitoring_feature")
    chosen = next(f for f in report.features if f.feature == feature)
    st.plotly_chart(drift_charts.feature_overlay(chosen), key="monitoring_overlay")
    notes = [
        f"Missing: {100 * chosen.missing_train:.1f} % in training, {100 * chosen.missing_live:.1f} % live"
    ]
    if chosen.kind == "categorical":
        notes.append(f"unseen categories: {100 * chosen.unseen_live:.1f} % of live rows")
    st.caption("; ".join(notes) + ".")

st.dataframe(
    report.table(),
    hide_index=True,
    column_config={
        "PSI": st.column_config.NumberColumn(format="%.3f"),
        "Missing (train)": st.column_config.NumberColumn(format="%.1f %%"),
        "Missing (live)": st.column_config.NumberColumn(format="%.1f %%"),
        "Unseen (live)": st.column_config.NumberColumn(format="%.1f %%"),
    },
    key="monitoring_table",
)

st.subheader("Predictions")
left, right = st.columns(2)
left.plotly_chart(
    drift_charts.predictions_over_time(report.predictions_over_time, report.prediction, bin_s),
    key="monitoring_predictions_time",
)
if report.prediction is not None:
    right.plotly_chart(
        drift_charts.feature_overlay(report.prediction), key="monitoring_predictions_overlay"
    )
    shift = report.prediction
    said = "" if shift.psi is None else f" PSI {shift.psi:.3f}: {shift.state}."
    right.caption(
        "Predicted classes (or values) of sampled rows against the training labels." + said
    )
