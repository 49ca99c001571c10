"""Compute: targets with live load, and the jobs running or waiting on them."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from lib.ui import workspace

ws = workspace()
st.title("Compute")

if ws.compute is None:
    st.info("This workspace has no compute service.")
    st.stop()


def _elapsed(job) -> str:  # noqa: ANN001
    if job.started is None:
        return ""
    end = job.ended or datetime.now(UTC)
    return f"{(end - job.started).total_seconds():.0f} s"


live = st.toggle("Live (refresh every 2 s)", value=True, key="compute_live")


@st.fragment(run_every=2 if live else None)
def targets_view() -> None:
    for target in ws.compute.list():
        st.subheader(f"{target.name} · {target.kind}")
        st.caption(f"{target.state} · {target.vm_size}")
        if target.kind == "local":
            c = st.columns(5)
            c[0].metric("Busy slots", target.busy_slots, border=True)
            c[1].metric("Idle slots", target.idle_slots, border=True)
            c[2].metric("Queued jobs", target.queued_jobs, border=True)
            c[3].metric("CPU", f"{target.cpu_percent or 0:.0f} %", border=True)
            c[4].metric("Memory", f"{target.memory_percent or 0:.0f} %", border=True)
        else:
            c = st.columns(4)
            c[0].metric("Nodes", target.current_nodes, border=True)
            c[1].metric("Min / max", f"{target.min_nodes} / {target.max_nodes}", border=True)
            c[2].metric("VM size", target.vm_size or "–", border=True)
            idle = target.idle_seconds_before_scale_down
            c[3].metric(
                "Idle before scale-down", f"{idle} s" if idle is not None else "–", border=True
            )
    if hasattr(ws.compute, "jobs"):
        jobs = ws.compute.jobs()
        st.subheader("Jobs")
        if not jobs:
            st.caption("No jobs yet: submit one on the AutoML page.")
            return
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "job": j.id,
                        "name": j.display_name,
                        "state": j.state,
                        "compute": j.compute,
                        "elapsed": _elapsed(j),
                        "created": j.created,
                        "error": j.error or "",
                    }
                    for j in jobs
                ]
            ),
            hide_index=True,
            key="compute_jobs",
        )


targets_view()
