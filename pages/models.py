"""Models: registered model versions, their metrics and input schema."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.audit import audited
from lib.model_signature import schema_table
from lib.names import endpoint_name_for
from lib.ui import ago, workspace
from lib.workspace import WorkspaceError

ws = workspace()
st.title("Models")
if ws.models is None:
    st.info("This workspace has no model registry.")
    st.stop()

models = ws.models.list()
if not models:
    st.info("No registered models yet: register one from a completed AutoML run.")
    st.stop()

live: dict[tuple[str, int], list[str]] = {}
for ep in ws.endpoints.list() if ws.endpoints is not None else []:
    live.setdefault((ep.model_name, ep.model_version), []).append(f"{ep.name} ({ep.state})")
table = pd.DataFrame(
    [
        {
            "name": m.name,
            "version": m.version,
            "live on": ", ".join(live.get((m.name, m.version), [])),
            **{k: round(v, 4) for k, v in m.metrics.items()},
            "source job": m.source_job or "",
            "registered": ago(m.created),
            "description": m.description,
            "uri": m.uri,
        }
        for m in models
    ]
)
picked = st.dataframe(
    table, hide_index=True, key="models_table", on_select="rerun", selection_mode="single-row"
)
row = picked.selection.rows[0] if picked and picked.selection.rows else 0
model = models[row]
st.subheader(f"{model.name} v{model.version}")
target = endpoint_name_for(model.name)
live = ws.endpoints is not None and target in {e.name for e in ws.endpoints.list()}
if live and st.button(
    f"Deploy {model.name} v{model.version}",
    type="primary",
    key="models_deploy",
    icon=":material/rocket_launch:",
    help=f"{target} is live: choose how much of its traffic the new version takes first.",
):
    # A live endpoint's traffic moves only as the operator chooses (one click moved it all).
    st.session_state["endpoints_deploy_preset"] = f"{model.name} v{model.version}"
    st.session_state["endpoints_selected"] = target
    st.switch_page("pages/endpoints.py")
elif (
    ws.endpoints is not None
    and not live
    and st.button(
        f"Deploy {model.name} v{model.version}",
        type="primary",
        key="models_deploy",
        icon=":material/rocket_launch:",
        help="Creates the endpoint named after the model.",
    )
):
    try:
        with audited(
            "endpoint.deploy", endpoint_name_for(model.name), f"{model.name} v{model.version}"
        ):
            ep = ws.deploy_model(model.name, model.version)
    except WorkspaceError as exc:
        st.error(str(exc))
    else:
        st.session_state["endpoints_selected"] = ep.name
        st.switch_page("pages/endpoints.py")
try:
    spec = ws.models.feature_spec(model.name, model.version)
except WorkspaceError as exc:
    st.warning(str(exc))
else:
    st.caption("Input schema (what the scoring endpoint accepts)")
    st.dataframe(schema_table(spec), hide_index=True, key="models_schema")
