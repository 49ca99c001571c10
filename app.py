"""opsdeck: the dashboard entry point (navigation and the workspace badge)."""

from __future__ import annotations

import sys

import streamlit as st

from lib import access
from lib.settings import load_settings
from lib.ui import workspace
from lib.workspace import WorkspaceError

# The favicon is inline SVG: a `:material/...:` page icon makes the browser fetch it from a CDN.
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="#ff4b4b">'
    '<circle cx="12" cy="12" r="4"/><circle cx="4" cy="5" r="2.5"/><circle cx="20" cy="5" r="2.5"/>'
    '<circle cx="12" cy="21" r="2.5"/><path d="M4 5 12 12 20 5M12 12v9" stroke="#ff4b4b" '
    'stroke-width="1.6" fill="none"/></svg>'
)
st.set_page_config(page_title="opsdeck", page_icon=ICON, layout="wide")
# Every element a page writes wakes the server's event loop, which takes the GIL from the
# script thread; at the default 5 ms interval a page of charts and tiles waits most of its
# render for the GIL back (Logs p95 1.10 s -> 0.78 s with 0.5 ms, bench/page_speed.py).
sys.setswitchinterval(0.0005)

try:
    # Before anything else: a page from another origin, or nobody signed in, sees no page.
    access.gate(load_settings())
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
        st.Page("pages/audit.py", title="Audit log", icon=":material/policy:"),
    ],
}
st.navigation(pages).run()
