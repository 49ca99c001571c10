"""Datasets: upload versions, browse, preview, profile, download, delete."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from lib.sample_data import (
    BANK_MARKETING_DESCRIPTION,
    BANK_MARKETING_NAME,
    SampleUnavailable,
    fetch_bank_marketing,
)
from lib.ui import ago, human_bytes, workspace
from lib.workspace import WorkspaceError

ws = workspace()
datasets = ws.datasets
st.title("Datasets")


def _default_name(file_name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(file_name).stem).strip("-._")
    return stem[:100] or "dataset"


def _register(name: str, data: bytes, file_name: str, description: str) -> None:
    try:
        with st.spinner(f"Registering {file_name} …"):
            dv = datasets.upload(name, data, file_name, description)
    except WorkspaceError as exc:
        st.error(f"Not registered: {exc}", icon=":material/error:")
        return
    st.session_state["datasets_selected"] = dv.name
    st.success(
        f"Registered **{dv.name} v{dv.version}**: {dv.rows:,} rows × {dv.columns} columns "
        f"({human_bytes(dv.size_bytes)})."
    )


with st.expander("Add a dataset", expanded=not datasets.list(), icon=":material/upload:"):
    limit_mb = ws.settings.max_upload_mb
    with st.form("datasets_upload_form", clear_on_submit=False):
        upload = st.file_uploader(
            f"CSV (any delimiter, UTF-8 or Latin-1) or Parquet, up to {limit_mb} MB",
            type=["csv", "tsv", "txt", "parquet", "pq"],
            key="datasets_upload",
        )
        name = st.text_input("Name", key="datasets_name", placeholder="defaults to the file name")
        description = st.text_input("Description", key="datasets_description")
        submitted = st.form_submit_button("Register dataset", type="primary")
    if submitted:
        if upload is None:
            st.error("Choose a file first.")
        else:
            _register(
                name.strip() or _default_name(upload.name),
                upload.getvalue(),
                upload.name,
                description,
            )
    if st.button(
        "Add the Bank Marketing sample", key="datasets_sample", icon=":material/download:"
    ):
        try:
            with st.spinner("Fetching the Bank Marketing sample …"):
                data, source = fetch_bank_marketing(local_copy=ws.settings.sample_data_path)
        except SampleUnavailable as exc:
            st.warning(str(exc), icon=":material/cloud_off:")
        else:
            st.caption(f"Source: {source}")
            _register(
                BANK_MARKETING_NAME, data, "bankmarketing_train.csv", BANK_MARKETING_DESCRIPTION
            )

listing = datasets.list()
if not listing:
    st.info("No datasets yet: upload one above.")
    st.stop()

table = [
    {
        "name": d.name,
        "latest": f"v{d.latest_version}",
        "versions": d.versions,
        "rows": d.rows,
        "columns": d.columns,
        "size": human_bytes(d.size_bytes),
        "updated": ago(d.updated),
        "description": d.description,
    }
    for d in listing
]
selection = st.dataframe(
    table,
    key="datasets_table",
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    column_config={"rows": st.column_config.NumberColumn(format="localized")},
)
names = [d.name for d in listing]
picked_rows = selection.selection.rows if selection else []
if picked_rows:
    st.session_state["datasets_selected"] = names[picked_rows[0]]
current = st.session_state.get("datasets_selected")
if current not in names:
    current = names[0]

left, right = st.columns([2, 1])
chosen = left.selectbox("Dataset", names, index=names.index(current), key="datasets_pick")
versions = datasets.versions(chosen)
version = right.selectbox(
    "Version",
    [v.version for v in versions],
    format_func=lambda v: f"v{v}",
    key=f"datasets_version_{chosen}",
)
dv = next(v for v in versions if v.version == version)

st.subheader(f"{dv.name} v{dv.version}")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Rows", f"{dv.rows:,}", border=True)
c2.metric("Columns", dv.columns, border=True)
c3.metric("Size", human_bytes(dv.size_bytes), border=True)
c4.metric("Created", ago(dv.created), border=True)
st.caption(f"{dv.file_name} · {dv.file_format} · sha256 {dv.sha256[:12]} · {dv.description}")

tab_preview, tab_profile, tab_manage = st.tabs(["Preview", "Profile", "Download / delete"])
with tab_preview:
    st.dataframe(datasets.preview(dv.name, dv.version, rows=100), key="datasets_preview")
    st.caption("First 100 rows.")
with tab_profile:
    profile = datasets.profile(dv.name, dv.version)
    st.dataframe(
        profile,
        key="datasets_profile",
        hide_index=True,
        column_config={
            "missing_pct": st.column_config.ProgressColumn(
                "missing %", min_value=0, max_value=100, format="%.1f%%"
            ),
            "min": st.column_config.NumberColumn(format="%.4g"),
            "max": st.column_config.NumberColumn(format="%.4g"),
            "mean": st.column_config.NumberColumn(format="%.4g"),
            "histogram": st.column_config.BarChartColumn("histogram / top counts"),
        },
    )
with tab_manage:
    file_name, payload = datasets.download(dv.name, dv.version)
    st.download_button(
        f"Download v{dv.version} ({file_name})",
        data=payload,
        file_name=file_name,
        key="datasets_download",
        icon=":material/download:",
    )
    st.divider()
    confirm = st.checkbox(
        f"Delete **{dv.name}** and all {len(versions)} version(s)",
        key="datasets_delete_confirm",
    )
    if st.button("Delete dataset", key="datasets_delete", disabled=not confirm, type="primary"):
        try:
            datasets.delete(dv.name)
        except WorkspaceError as exc:
            st.error(str(exc))
        else:
            st.session_state.pop("datasets_selected", None)
            st.rerun()
