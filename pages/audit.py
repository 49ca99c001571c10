"""Audit log: who revealed or regenerated keys, deleted, deployed or changed compute, and when."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.audit import audit_log
from lib.settings import load_settings

st.title("Audit log")
log = audit_log(load_settings().home)
st.caption(
    f"Every key reveal or regeneration, deletion, deploy and compute change made from this "
    f"dashboard, newest first. Stored in `{log.path}` (append-only, one line per action)."
)
broken = log.verify()
if broken is not None:
    st.error(
        f"The log was edited: line {broken} does not follow from the line before it.",
        icon=":material/gpp_bad:",
    )
events = log.read()
if not events:
    st.info("Nothing has been recorded yet.")
    st.stop()

frame = pd.DataFrame(
    [
        {
            "when": pd.Timestamp(e.at),
            "who": e.actor,
            "action": e.action,
            "target": e.target,
            "outcome": e.outcome,
            "detail": e.detail,
        }
        for e in events
    ]
)
c1, c2 = st.columns(2)
actions = c1.multiselect("Action", sorted(frame["action"].unique()), key="audit_actions")
people = c2.multiselect("Who", sorted(frame["who"].unique()), key="audit_people")
shown = frame
if actions:
    shown = shown[shown["action"].isin(actions)]
if people:
    shown = shown[shown["who"].isin(people)]
st.dataframe(
    shown,
    hide_index=True,
    key="audit_table",
    column_config={"when": st.column_config.DatetimeColumn("when", format="YYYY-MM-DD HH:mm:ss")},
)
st.caption(f"{len(shown):,} of {len(frame):,} events")
