"""Home: what is in the workspace at a glance, and the next step of the loop."""

from __future__ import annotations

import streamlit as st

from lib.drift import NO_DATA
from lib.logs_view import drift_label
from lib.pipeline_view import next_scheduled
from lib.ui import ago, state_label, workspace
from lib.workspace import WorkspaceError

ws = workspace()
st.title("opsdeck")
st.caption(
    "Dataset → AutoML → deployed, monitored, benchmarked endpoint. "
    f"Backend: **{ws.kind}** — {ws.description}."
)

# Each list is read once per render and counted here (the Compute page lists every job kind:
# AutoML, benchmark and pipeline runs; this tile counts AutoML runs and says so).
LABELS = {
    "datasets": "Datasets",
    "jobs": "AutoML runs",
    "models": "Models",
    "endpoints": "Endpoints",
}
try:
    lists = {"datasets": ws.datasets.list()}
    if ws.automl is not None:
        lists["jobs"] = ws.automl.jobs()
    if ws.models is not None:
        lists["models"] = ws.models.list()
    if ws.endpoints is not None:
        lists["endpoints"] = ws.endpoints.list()
except WorkspaceError as exc:
    st.error(f"The workspace does not answer: {exc}")
    st.stop()
counts = {key: len(items) for key, items in lists.items()}
cols = st.columns(len(counts))
for col, (key, value) in zip(cols, counts.items(), strict=True):
    col.metric(LABELS[key], value, border=True)

steps = [
    ("datasets", "Upload a dataset", "pages/datasets.py", ":material/table:"),
    ("jobs", "Run AutoML on it", "pages/automl.py", ":material/model_training:"),
    ("models", "Register the best model", "pages/automl.py", ":material/inventory_2:"),
    ("endpoints", "Deploy it and score it", "pages/endpoints.py", ":material/rocket_launch:"),
]
st.subheader("The loop")
for key, label, page, icon in steps:
    if key not in counts:
        continue
    done = counts[key] > 0
    c1, c2 = st.columns([1, 12])
    c1.markdown(":material/check_circle:" if done else ":material/radio_button_unchecked:")
    c2.page_link(page, label=label, icon=icon)

if counts.get("datasets", 0) == 0:
    st.info("No datasets yet. Start on the **Datasets** page: upload a CSV or Parquet file.")

if ws.endpoints is not None:
    live = lists["endpoints"]
    if live:
        drift = ws.monitoring.states() if ws.monitoring is not None else {}
        st.subheader("Endpoints")
        for e in live:
            st.markdown(
                f"**{e.name}** · {e.state} · {e.model_name} v{e.model_version} · "
                f"`{e.scoring_uri}` · updated {ago(e.updated)} · "
                f"drift {drift_label(drift.get(e.name, NO_DATA))}"
            )
if ws.pipelines is not None:
    # Looking is also what restarts a needed pipeline agent that died.
    ws.pipelines.agent()
    upcoming = next_scheduled(ws.pipelines.schedules())
    if upcoming is not None:
        st.subheader("Next scheduled run")
        st.page_link(
            "pages/pipelines.py",
            label=f"{upcoming.pipeline} · {upcoming.name} ({upcoming.trigger}) · "
            f"{upcoming.next_run:%Y-%m-%d %H:%M} UTC",
            icon=":material/schedule:",
        )
if ws.automl is not None:
    recent = lists["jobs"][:5]
    if recent:
        st.subheader("Recent AutoML runs")
        for j in recent:
            best = j.progress.get("best_score")
            score = f" · best {best:.4f}" if isinstance(best, int | float) else ""
            st.markdown(f"**{j.id}** · {state_label(j.state)}{score} · {ago(j.created)}")
