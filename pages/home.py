"""Home: what is in the workspace at a glance."""

from __future__ import annotations

import streamlit as st

from lib.ui import workspace

ws = workspace()
st.title("opsdeck")
st.caption(
    "Dataset → AutoML → deployed, monitored, benchmarked endpoint. "
    f"Backend: **{ws.kind}** — {ws.description}."
)

counts = ws.summary()
cols = st.columns(len(counts))
for col, (label, value) in zip(cols, counts.items(), strict=True):
    col.metric(label.capitalize(), value, border=True)

if counts.get("datasets", 0) == 0:
    st.info("No datasets yet. Start on the **Datasets** page: upload a CSV or Parquet file.")
    st.page_link("pages/datasets.py", label="Go to Datasets", icon=":material/table:")
