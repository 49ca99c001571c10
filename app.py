"""opsdeck: the dashboard entry point (navigation and the workspace badge)."""

from __future__ import annotations

import streamlit as st

from lib.ui import workspace
from lib.workspace import WorkspaceError

st.set_page_config(page_title="opsdeck", page_icon=":material/hub:", layout="wide")

try:
    ws = workspace()
except (WorkspaceError, ValueError, OSError) as exc:
    st.error(f"The workspace could not be opened: {exc}")
    st.stop()

with st.sidebar:
    badge = ":material/cloud: Azure ML" if ws.kind == "azure" else ":material/computer: Local"
    st.markdown(f"**Workspace** · {badge}")
    st.caption(f"{ws.description}  \nWhy: {ws.reason}")

pages = {
    "": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Data": [st.Page("pages/datasets.py", title="Datasets", icon=":material/table:")],
    "Train": [
        st.Page("pages/compute.py", title="Compute", icon=":material/memory:"),
        st.Page("pages/automl.py", title="AutoML", icon=":material/model_training:"),
        st.Page("pages/models.py", title="Models", icon=":material/inventory_2:"),
    ],
    "Deploy": [
        st.Page("pages/endpoints.py", title="Endpoints", icon=":material/rocket_launch:"),
        st.Page("pages/score.py", title="Score", icon=":material/online_prediction:"),
    ],
    "Operate": [
        st.Page("pages/logs.py", title="Logs", icon=":material/monitoring:"),
        st.Page("pages/monitoring.py", title="Monitoring", icon=":material/query_stats:"),
        st.Page("pages/benchmarks.py", title="Benchmarks", icon=":material/speed:"),
        st.Page("pages/pipelines.py", title="Pipelines", icon=":material/account_tree:"),
    ],
}
st.navigation(pages).run()
