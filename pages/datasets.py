"""Datasets: upload versions, browse, preview, profile, download, delete."""

from __future__ import annotations

import streamlit as st

from lib import background_upload
from lib.audit import audited
from lib.pipeline_rules import dataset_users
from lib.sample_data import (
    BANK_MARKETING_DESCRIPTION,
    BANK_MARKETING_NAME,
    SampleUnavailable,
    fetch_bank_marketing,
)
from lib.ui import ago, human_bytes, preview_columns, say_after_rerun, show_said, workspace
from lib.upload_form import (
    default_dataset_name,
    default_token_text,
    has_digest,
    identical_version,
    layout_notes,
    recognised_summary,
    reread_suggestions,
    tokens_from_form,
    with_tokens,
)
from lib.workspace import WorkspaceError

PREVIEW_COLUMNS = 200

ws = workspace()
datasets = ws.datasets
limits = ws.settings.limits
# Streamlit's own cap (config.toml) stops bigger files before our check can say why.
upload_mb = min(limits.max_upload_mb, int(st.get_option("server.maxUploadSize")))
st.title("Datasets")
show_said()

listing = datasets.list()
names = [d.name for d in listing]


def _show(dv_name: str, version: int) -> None:
    """Point the detail area at a dataset version (before its widgets are drawn)."""
    st.session_state["datasets_pick"] = dv_name
    st.session_state[f"datasets_version_{dv_name}"] = version


def _register(
    name: str,
    data: bytes,
    file_name: str,
    description: str,
    tokens: list[str],
    sheet: str | None = None,
    source: str = "upload",
):
    st.session_state.pop("datasets_reread", None)  # about the previous file
    if len(data) >= ws.settings.background_upload_bytes:
        # Big files are read out of process: the page stays usable and can be left.
        try:
            upload = background_upload.start(
                ws.settings.home, name, data, file_name, description, tokens, sheet
            )
        except OSError as exc:  # a full disk, no process left to start
            st.error(f"Not registered: could not start reading {file_name} ({exc}).")
            return
        st.session_state["datasets_background"] = upload.id
        return
    try:
        with st.spinner(f"Registering {file_name} …"):
            dv = datasets.upload(
                name, data, file_name, description, missing_tokens=tokens, sheet=sheet
            )
    except WorkspaceError as exc:
        st.error(f"Not registered: {exc}", icon=":material/error:")
        return
    _show(dv.name, dv.version)
    st.success(
        f"Registered **{dv.name} v{dv.version}**: {dv.rows:,} rows × {dv.columns} columns "
        f"({human_bytes(dv.size_bytes)})."
    )
    found = layout_notes(file_name, data, sheet, dv.column_names)
    if found:
        st.info(" ".join(found), icon=":material/help:")
    read_as_missing = recognised_summary(datasets.profile(dv.name, dv.version).to_dict("records"))
    if read_as_missing:
        st.info(f"Read as missing values: {read_as_missing}", icon=":material/help:")
    notes, add = reread_suggestions(datasets.load(dv.name, dv.version))
    if add:
        st.session_state["datasets_reread"] = {
            "source": source,
            "name": dv.name,
            "file_name": file_name,
            "description": description,
            "tokens": tokens,
            "sheet": sheet,
            "sha256": dv.sha256,
            "notes": notes,
            "add": add,
        }


def _reread_section(reread: dict) -> None:
    """Values the file seems to write for "no value", and one click to read them so."""
    add = reread["add"]

    def _add_tokens() -> None:
        current = st.session_state.get("datasets_tokens", default_token_text())
        st.session_state["datasets_tokens"] = with_tokens(current, add)

    box = st.empty()
    with box.container():
        st.warning(" ".join(reread["notes"]), icon=":material/pin:")
        c1, c2 = st.columns(2)
        listed = ", ".join(add)
        label = f"Register again with {listed if len(listed) <= 40 else 'these'} as missing"
        again = c1.button(label, key="datasets_reread_again", on_click=_add_tokens)
        keep = c2.button("Keep them as they are", key="datasets_reread_keep")
    if keep:
        st.session_state.pop("datasets_reread", None)
        st.rerun()
    if again:
        box.empty()
        st.session_state.pop("datasets_reread", None)
        data = _pending_bytes(reread)
        if data is None or not has_digest(data, reread["sha256"]):
            st.error("The file is no longer the one that was read: choose it again.")
            return
        _register(
            reread["name"],
            data,
            reread["file_name"],
            reread["description"],
            [*reread["tokens"], *add],
            reread["sheet"],
            reread["source"],
        )


def _submit(source: str, name: str, data: bytes, file_name: str, description: str) -> None:
    """Register, unless the same bytes are already a version of `name`: then ask first."""
    tokens = tokens_from_form(
        st.session_state.get("datasets_tokens", default_token_text()),
        st.session_state.get("datasets_empty_missing", True),
    )
    sheet = (st.session_state.get("datasets_sheet") or "").strip() if source == "upload" else ""
    same = identical_version(datasets.versions(name) if name in names else [], data)
    if same is not None:
        st.session_state["datasets_pending"] = {
            "source": source,
            "name": name,
            "file_name": file_name,
            "description": description,
            "tokens": tokens,
            "sheet": sheet or None,
            "version": same.version,
            "sha256": same.sha256,
        }
        return
    _register(name, data, file_name, description, tokens, sheet or None, source)


def _confirm_identical(pending: dict) -> None:
    data = _pending_bytes(pending)
    if data is None or not has_digest(data, pending["sha256"]):
        st.error("The file is no longer the one that was checked: choose it again.")
        return
    _register(
        pending["name"],
        data,
        pending["file_name"],
        pending["description"],
        pending["tokens"],
        pending.get("sheet"),
        pending["source"],
    )


def _pending_bytes(pending: dict) -> bytes | None:
    if pending["source"] == "sample":
        try:
            return fetch_bank_marketing(local_copy=ws.settings.sample_data_path)[0]
        except SampleUnavailable:
            return None
    upload = st.session_state.get("datasets_upload")
    return upload.getvalue() if upload is not None else None


def _add_section() -> None:
    with st.form("datasets_upload_form", clear_on_submit=False):
        upload = st.file_uploader(
            "CSV (any delimiter; UTF-8, UTF-16, Windows-1252 or Latin-1), Parquet, ARFF, JSON "
            "(records or JSON Lines), a web page's table, SPSS, Stata, SAS or a spreadsheet (.xlsx, .xls, .ods: the sheet holding the table), "
            f"up to {upload_mb} MB; "
            "or one of them compressed (gzip, bzip2, xz) or in a zip archive (alone, or train.csv "
            "beside others). Any file name: a file is read by what it holds (`adult.test`, "
            "an export without an extension).",
            type=None,
            key="datasets_upload",
            max_upload_size=upload_mb,
        )
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", key="datasets_name", placeholder="defaults to the file name")
        description = c2.text_input("Description", key="datasets_description")
        c1, c2 = st.columns([3, 1])
        st.session_state.setdefault("datasets_tokens", default_token_text())
        c1.text_input(
            "Missing-value tokens",
            key="datasets_tokens",
            help="Comma-separated; read as missing (case-insensitive) in columns that are "
            "otherwise numeric or datetime. A number you add (-999, 9999) is missing by value "
            "in number columns (-999.0 too), and the endpoints of models trained on the "
            "dataset read it as no value; column=number (Insulin=0) in that column only. In text columns: tokens you add, and those no "
            "category is (?, N/A, null, #N/A …); NA, None, -, . and the words (unknown, missing …) "
            "only where the file writes them for missing numbers too.",
        )
        c2.checkbox("Empty cells are missing", value=True, key="datasets_empty_missing")
        st.text_input(
            "Sheet",
            key="datasets_sheet",
            placeholder="workbooks: the sheet holding the biggest table",
            help="The name of the workbook sheet to read; leave empty to read the visible "
            "sheet holding the biggest table. Other files have no sheets.",
        )
        submitted = st.form_submit_button("Register dataset", type="primary")
    if submitted:
        if upload is None:
            st.error("Choose a file first.")
        else:
            _submit(
                "upload",
                name.strip() or default_dataset_name(upload.name),
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
            _submit(
                "sample",
                BANK_MARKETING_NAME,
                data,
                "bankmarketing_train.csv",
                BANK_MARKETING_DESCRIPTION,
            )
    reread = st.session_state.get("datasets_reread")
    if reread:
        _reread_section(reread)
    pending = st.session_state.get("datasets_pending")
    if pending:
        st.warning(
            f"**{pending['file_name']}** is byte-identical to **{pending['name']} "
            f"v{pending['version']}**. Register it again as a new version?",
            icon=":material/content_copy:",
        )
        c1, c2 = st.columns(2)
        if c1.button("Register as a new version", key="datasets_confirm_identical"):
            st.session_state.pop("datasets_pending", None)
            _confirm_identical(pending)
        if c2.button("Keep the existing version", key="datasets_cancel_identical"):
            st.session_state.pop("datasets_pending", None)
            _show(pending["name"], pending["version"])
            st.rerun()


def _background_uploads() -> None:
    """Uploads registering out of process, and how the finished ones ended."""
    uploads = background_upload.listing(ws.settings.home)
    if not uploads:
        return
    running = any(u.state == background_upload.RUNNING for u in uploads)

    @st.fragment(run_every=1.0 if running else None)
    def _status() -> None:
        now = background_upload.listing(ws.settings.home)
        still = {u.id for u in now if u.state == background_upload.RUNNING}
        if running and not still:
            st.rerun(scope="app")  # the table and the detail show what just arrived
        for u in now:
            _background_status(u)

    _status()


def _background_status(u: background_upload.BackgroundUpload) -> None:
    label = f"**{u.file_name}** ({human_bytes(u.size_bytes)}) as **{u.name}**"
    if u.state == background_upload.RUNNING:
        st.info(
            f"Registering {label} in the background: {u.elapsed_s:.0f} s so far. "
            "This page can be left and revisited.",
            icon=":material/hourglass_top:",
        )
        return
    mine = st.session_state.get("datasets_background") == u.id
    r = u.result
    if u.state == background_upload.DONE:
        if mine:
            st.session_state.pop("datasets_background", None)
            _show(r["name"], r["version"])
        st.success(
            f"Registered **{r['name']} v{r['version']}**: {r['rows']:,} rows × {r['columns']} "
            f"columns ({human_bytes(r['size_bytes'])}), from {u.file_name} in "
            f"{u.elapsed_s:.0f} s."
        )
        if r.get("notes"):
            st.info(" ".join(r["notes"]), icon=":material/help:")
        if r.get("read_as_missing"):
            st.info(f"Read as missing values: {r['read_as_missing']}", icon=":material/help:")
        if r.get("reread"):
            st.warning(" ".join(r["reread"]), icon=":material/pin:")
    elif u.state == background_upload.FAILED:
        st.error(f"Not registered ({u.file_name}): {r.get('error')}", icon=":material/error:")
    else:
        st.error(
            f"Registering {label} stopped before it finished (its process ended); nothing was "
            "stored. Upload the file again.",
            icon=":material/error:",
        )
    if st.button("Dismiss", key=f"datasets_dismiss_{u.id}"):
        background_upload.dismiss(ws.settings.home, u.id)
        st.rerun(scope="app")


# The section's open state is a widget of its own: it stays open across reruns (and shows
# its messages) until the operator closes it; it starts open on an empty workspace.
if not listing and "datasets_add" not in st.session_state:
    st.session_state["datasets_add"] = True
if st.session_state.get("datasets_pending") or st.session_state.get("datasets_reread"):
    st.session_state["datasets_add"] = True
with st.expander("Add a dataset", key="datasets_add", on_change="rerun", icon=":material/upload:"):
    _add_section()
_background_uploads()

listing = datasets.list()
names = [d.name for d in listing]
if not listing:
    st.info("No datasets yet: upload one above.")
    st.stop()


def _on_table_select() -> None:
    rows = st.session_state["datasets_table"]["selection"]["rows"]
    if rows:
        st.session_state["datasets_pick"] = st.session_state["datasets_table_names"][rows[0]]


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
st.session_state["datasets_table_names"] = names
st.dataframe(
    table,
    key="datasets_table",
    hide_index=True,
    on_select=_on_table_select,
    selection_mode="single-row",
    column_config={"rows": st.column_config.NumberColumn(format="localized")},
)
if st.session_state.get("datasets_pick") not in names:
    st.session_state["datasets_pick"] = names[0]

left, right = st.columns([2, 1])
chosen = left.selectbox("Dataset", names, key="datasets_pick")
versions = datasets.versions(chosen)
version_key = f"datasets_version_{chosen}"
if st.session_state.get(version_key) not in [v.version for v in versions]:
    st.session_state[version_key] = versions[0].version
version = right.selectbox(
    "Version", [v.version for v in versions], format_func=lambda v: f"v{v}", key=version_key
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
    preview = datasets.preview(dv.name, dv.version, rows=100)
    # A browser table of 20,000 columns costs seconds per rerun and shows nobody anything.
    shown_frame = preview.iloc[:, :PREVIEW_COLUMNS]
    st.dataframe(shown_frame, key="datasets_preview", column_config=preview_columns(shown_frame))
    shown = min(PREVIEW_COLUMNS, preview.shape[1])
    more = f", first {shown} of {preview.shape[1]:,} columns" if shown < preview.shape[1] else ""
    st.caption(f"First 100 rows{more}; the Profile tab lists every column.")
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
            "missing_tokens": st.column_config.TextColumn(
                "read as missing", help="Cells read as missing values, and how many"
            ),
            "min": st.column_config.NumberColumn(format="localized"),
            "max": st.column_config.NumberColumn(format="localized"),
            "mean": st.column_config.NumberColumn(format="localized"),
            "histogram": st.column_config.BarChartColumn("histogram / top counts"),
        },
    )
with tab_manage:
    # Read only when clicked: the original can be hundreds of MB.
    st.download_button(
        f"Download v{dv.version} ({dv.file_name})",
        data=lambda: datasets.download(dv.name, dv.version)[1],
        file_name=dv.file_name,
        key="datasets_download",
        icon=":material/download:",
    )
    st.divider()
    if ws.pipelines is not None:
        users = dataset_users(dv.name, ws.pipelines.list(), ws.pipelines.schedules())
        if users:
            st.warning(
                f"Pipelines train on **{dv.name}**: {', '.join(users)}. Deleted, their runs fail "
                "until a dataset of this name is uploaded again.",
                icon=":material/warning:",
            )
    # One box per dataset: ticked for one, it is not ticked for the next one shown.
    confirm = st.checkbox(
        f"Delete **{dv.name}** and all {len(versions)} version(s)",
        key=f"datasets_delete_confirm_{dv.name}",
    )
    if st.button("Delete dataset", key="datasets_delete", disabled=not confirm, type="primary"):
        try:
            with audited("dataset.delete", dv.name, f"{len(versions)} version(s)"):
                datasets.delete(dv.name)
        except WorkspaceError as exc:
            st.error(str(exc))
        else:
            st.session_state.pop("datasets_pick", None)
            st.session_state.pop(f"datasets_delete_confirm_{dv.name}", None)
            say_after_rerun(f"Deleted **{dv.name}** and its {len(versions)} version(s).")
            st.rerun()
