"""Compute: targets with live load, and the jobs running or waiting on them."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from lib.audit import audited
from lib.ui import workspace
from lib.workspace import ClusterService, WorkspaceError

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


def _active() -> bool:
    """Whether a job runs or waits (then the view refreshes itself)."""
    return hasattr(ws.compute, "jobs") and any(not j.is_terminal for j in ws.compute.jobs())


busy = _active()
live = st.toggle(
    "Live (refresh every 2 s while a job runs or waits)", value=True, key="compute_live"
)


@st.fragment(run_every=2 if live and busy else None)
def targets_view() -> None:
    if live and busy and not _active():
        st.rerun()  # the last job ended: redraw once, without the refresh
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

if isinstance(ws.compute, ClusterService):
    st.subheader("Manage clusters")
    ops: list = st.session_state.setdefault("compute_ops", [])
    with st.form("compute_create_form"):
        c1, c2, c3, c4 = st.columns(4)
        name = c1.text_input("Cluster name", key="compute_new_name")
        vm_size = c2.text_input("VM size", value="Standard_DS3_v2", key="compute_new_vm")
        min_nodes = c3.number_input("Min nodes", 0, 100, 0, key="compute_new_min")
        max_nodes = c4.number_input("Max nodes", 1, 100, 4, key="compute_new_max")
        if st.form_submit_button("Create cluster", type="primary"):
            try:
                size = f"{vm_size}, {int(min_nodes)}-{int(max_nodes)} nodes"
                with audited("compute.create", name, size):
                    ops.append(
                        ws.compute.create_cluster(name, vm_size, int(min_nodes), int(max_nodes))
                    )
            except WorkspaceError as exc:
                st.error(str(exc))
    targets = ws.compute.list()
    if targets:
        c1, c2, c3, c4 = st.columns([2, 1, 1, 2])
        chosen = c1.selectbox("Compute", [t.name for t in targets], key="compute_target")
        target = next(t for t in targets if t.name == chosen)
        if target.kind == "AmlCompute":
            new_min = c2.number_input("Min", 0, 100, target.min_nodes, key=f"compute_min_{chosen}")
            new_max = c3.number_input(
                "Max", 1, 100, max(1, target.max_nodes), key=f"compute_max_{chosen}"
            )
            if c4.button("Resize", key="compute_resize"):
                try:
                    nodes = f"{int(new_min)}-{int(new_max)} nodes"
                    with audited("compute.resize", chosen, nodes):
                        ops.append(ws.compute.resize(chosen, int(new_min), int(new_max)))
                except WorkspaceError as exc:
                    st.error(str(exc))
        else:
            if c2.button("Start", key="compute_start"):
                with audited("compute.start", chosen):
                    ops.append(ws.compute.start_instance(chosen))
            if c3.button("Stop", key="compute_stop"):
                with audited("compute.stop", chosen):
                    ops.append(ws.compute.stop_instance(chosen))
        with c4.popover("Delete", icon=":material/delete:"):
            if st.button(f"Delete {chosen}", key="compute_delete", type="primary"):
                with audited("compute.delete", chosen):
                    ops.append(ws.compute.delete(chosen))

    @st.fragment(run_every=3)
    def operations_view() -> None:
        for op in st.session_state.get("compute_ops", []):
            done = op.done()
            state = (
                "complete"
                if done and op.status() == "Succeeded"
                else "running"
                if not done
                else "error"
            )
            with st.status(f"{op.action} {op.target}: {op.status()}", state=state):
                st.write(f"{getattr(op, 'elapsed_s', 0):.0f} s elapsed")
                if done:
                    try:
                        op.result(timeout=0)
                    except WorkspaceError as exc:
                        st.error(str(exc))

    operations_view()
