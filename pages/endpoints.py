"""Endpoints: one-click deploy, deployments with a traffic split, mirror, rollback, history,
state, keys, Swagger, snippets, logs, recent requests."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.audit import audited, record_reveal
from lib.deployments_view import deployments_frame, history_frame, mirror_choice
from lib.drift import NO_DATA
from lib.logs_view import drift_label
from lib.names import endpoint_name_for
from lib.scoring import curl_snippet, fetch_swagger, python_snippet
from lib.settings import mask_secret
from lib.traffic import MAX_MIRROR
from lib.ui import ago, say_after_rerun, show_said, workspace
from lib.workspace import WorkspaceError

ws = workspace()
st.title("Endpoints")
show_said()
if ws.endpoints is None or ws.models is None:
    st.info("This workspace has no endpoint service.")
    st.stop()
endpoints = ws.endpoints


models = ws.models.list()
# Listing reconciles every endpoint with its server: read once for the form, once after it.
listing = endpoints.list()
preset = st.session_state.pop("endpoints_deploy_preset", None)
with st.expander(
    "Deploy a model", expanded=not listing or preset is not None, icon=":material/rocket_launch:"
):
    if not models:
        st.info("Register a model first (AutoML page → Register).")
    else:
        labels = [f"{m.name} v{m.version}" for m in models]
        index = labels.index(preset) if preset in labels else 0
        if preset in labels:
            st.session_state["endpoints_model"] = preset  # as the Models page asked
        choice = st.selectbox("Model version", labels, index=index, key="endpoints_model")
        model = models[labels.index(choice)]
        existing = [e.name for e in listing]
        name = st.text_input(
            "Endpoint name",
            value=endpoint_name_for(model.name),
            key=f"endpoints_name_{model.name}",
            help="3-32 characters: letters, digits and '-'. An existing name is redeployed in place.",
        ).strip()
        share = 100
        if name in existing:
            share = st.slider(
                "Traffic for the new deployment (%)",
                0,
                100,
                100,
                step=5,
                key="endpoints_deploy_traffic",
                help="100 %: it replaces the live model once verified. Less: a canary, the current "
                "deployments keep the rest. 0 %: deploy it to mirror or test it first.",
            )
            st.caption(
                f"**{name}** exists: the model becomes a new deployment behind the same URI and "
                "keys, verified before it takes traffic; no request fails during the switch."
            )
        if st.button(
            "Deploy", type="primary", key="endpoints_deploy", icon=":material/rocket_launch:"
        ):
            if not name:
                # An empty name would fall back to the model's default endpoint and redeploy over
                # it without the traffic choice.
                st.error("Give the endpoint a name (3-32 characters: letters, digits and '-').")
                st.stop()
            try:
                detail = f"{model.name} v{model.version}"
                with st.spinner(f"Deploying {detail} …"), audited("endpoint.deploy", name, detail):
                    if name in existing:
                        ep = endpoints.deploy(model.name, model.version, name, traffic=share)
                    else:
                        ep = ws.deploy_model(model.name, model.version, name)
            except WorkspaceError as exc:
                st.error(str(exc))
            else:
                st.session_state["endpoints_selected"] = ep.name
                verb = "Deploying" if ep.state == "Creating" else "Deployed"
                st.success(f"{verb} **{model.name} v{model.version}** to **{ep.name}**.")

listing = endpoints.list()
if not listing:
    st.stop()

drift = ws.monitoring.states() if ws.monitoring is not None else {}
table = pd.DataFrame(
    [
        {
            "endpoint": e.name,
            "state": e.state,
            "drift (24 h)": drift_label(drift.get(e.name, NO_DATA)),
            "model": f"{e.model_name} v{e.model_version}",
            "scoring URI": e.scoring_uri,
            "created": ago(e.created),
        }
        for e in listing
    ]
)
picked = st.dataframe(
    table, hide_index=True, key="endpoints_table", on_select="rerun", selection_mode="single-row"
)
names = [e.name for e in listing]
# A selection outlives a deletion: the row it named may be gone.
if picked and picked.selection.rows and picked.selection.rows[0] < len(names):
    st.session_state["endpoints_selected"] = names[picked.selection.rows[0]]
current = st.session_state.get("endpoints_selected")
if current not in names:
    current = names[0]


# One read of the endpoints per render: the table, the status box and the tabs all show it.
ep = listing[names.index(current)]
TRANSITIONAL = ("Creating", "Updating", "Deleting")


@st.fragment(run_every=2 if ep.state in TRANSITIONAL else None)
def watch_state(shown: str) -> None:
    """While the endpoint changes state, look again; a new state redraws the whole page."""
    if endpoints.get(current).state != shown:
        st.rerun()


watch_state(ep.state)
icon = {"Succeeded": "complete", "Creating": "running"}.get(ep.state, "error")
with st.status(f"{ep.name} — {ep.state}", state=icon, expanded=ep.state != "Succeeded"):
    st.write(f"Model **{ep.model_name} v{ep.model_version}** · updated {ago(ep.updated)}")
    if ep.error:
        st.code(ep.error, language=None)
c = st.columns(4)
if c[0].button("Restart", key=f"endpoints_restart_{current}", icon=":material/restart_alt:"):
    with audited("endpoint.restart", current):
        endpoints.restart(current)
    st.rerun()
if c[1].button(
    "Stop", key=f"endpoints_stop_{current}", icon=":material/stop:", disabled=ep.state == "Stopped"
):
    with audited("endpoint.stop", current):
        endpoints.stop(current)
    st.rerun()
if c[2].button(
    "Roll back",
    key=f"endpoints_rollback_{current}",
    icon=":material/undo:",
    help="All traffic back to the deployment and model version that served before.",
):
    try:
        with st.spinner("Rolling back …"), audited("endpoint.rollback", current):
            endpoints.rollback(current)
    except WorkspaceError as exc:
        st.error(str(exc))
    else:
        say_after_rerun(f"**{current}** rolled back.")
        st.rerun()
# One popover per endpoint: left open for one, it is not open over the next one shown.
with c[3].popover("Delete", icon=":material/delete:", key=f"endpoints_delete_popover_{current}"):
    st.write(f"Delete **{current}**? Its URI and keys are gone for good.")
    if st.button("Delete endpoint", key=f"endpoints_delete_{current}", type="primary"):
        with audited("endpoint.delete", current):
            endpoints.delete(current)
        st.session_state.pop("endpoints_selected", None)
        say_after_rerun(f"Deleted endpoint **{current}**.")
        st.rerun()
c1, c2 = st.columns(2)
c1.caption("Scoring URI")
c1.code(ep.scoring_uri, language=None)
c2.caption("Swagger URI")
c2.code(ep.swagger_uri, language=None)

# Only the open tab runs: the Swagger view alone fetches the document and loads a page.
tab_deployments, tab_keys, tab_use, tab_swagger, tab_requests, tab_logs = st.tabs(
    ["Deployments", "Keys", "Consume", "Swagger", "Recent requests", "Server log"],
    key="endpoints_tab",
    on_change="rerun",
)
if tab_deployments.open:
    with tab_deployments:
        deployments = endpoints.deployments(current)
        st.dataframe(
            deployments_frame(deployments), hide_index=True, key=f"endpoints_deployments_{current}"
        )
        names_ = [d.name for d in deployments]
        mirrored, mirror_pct = mirror_choice(deployments)
        # The boxes show the live split: changed elsewhere (a rollback, a deploy from the Models
        # page), what they held would be applied again with the next Apply.
        live = [(d.name, d.traffic, d.mirror) for d in deployments]
        if st.session_state.get(f"endpoints_live_{current}") != live:
            for d in deployments:
                st.session_state.pop(f"endpoints_traffic_{current}_{d.name}", None)
            st.session_state.pop(f"endpoints_mirror_to_{current}", None)
            st.session_state.pop(f"endpoints_mirror_pct_{current}", None)
        st.session_state[f"endpoints_live_{current}"] = live
        with st.form(f"endpoints_traffic_form_{current}", border=True):
            st.caption("Live traffic (adds up to 100 %)")
            cols = st.columns(max(len(deployments), 1))
            split = {
                d.name: cols[i].number_input(
                    f"{d.name} · v{d.model_version}",
                    min_value=0,
                    max_value=100,
                    value=d.traffic,
                    step=5,
                    key=f"endpoints_traffic_{current}_{d.name}",
                )
                for i, d in enumerate(deployments)
            }
            left, right = st.columns(2)
            options = ["(none)", *names_]
            mirror_to = left.selectbox(
                "Mirror a copy of the requests to",
                options,
                index=options.index(mirrored) if mirrored else 0,
                key=f"endpoints_mirror_to_{current}",
                help="Its answers are recorded (Logs page) and never returned. It must take no "
                "live traffic.",
            )
            share_ = right.number_input(
                "Mirrored share (%)",
                min_value=0,
                max_value=MAX_MIRROR,
                value=mirror_pct,
                step=5,
                key=f"endpoints_mirror_pct_{current}",
            )
            applied = st.form_submit_button("Apply", type="primary", icon=":material/call_split:")
            mirror = {} if mirror_to == "(none)" else {mirror_to: int(share_)}
            now_live = {d.name: d.traffic for d in deployments}
            now_mirror = {d.name: d.mirror for d in deployments if d.mirror}
            if (
                applied
                and split == now_live
                and {k: v for k, v in mirror.items() if v} == now_mirror
            ):
                st.info(
                    "Nothing to change: the split is already "
                    + ", ".join(f"{k} {v} %" for k, v in split.items())
                    + ". A share typed outside 0-100 % is not taken (its box turns red and keeps "
                    "its value)."
                )
            elif applied:
                try:
                    detail = f"traffic {dict(split)}, mirror {mirror or 'none'}"
                    with (
                        st.spinner("Applying the split …"),
                        audited("endpoint.traffic", current, detail),
                    ):
                        endpoints.set_traffic(
                            current, {k: int(v) for k, v in split.items()}, mirror
                        )
                except WorkspaceError as exc:
                    st.error(str(exc))
                else:
                    say_after_rerun("Traffic split applied.")
                    st.rerun()
        idle = [d.name for d in deployments if not d.traffic and not d.mirror]
        if idle:
            left, right = st.columns([3, 1])
            gone = left.selectbox(
                "Idle deployment",
                idle,
                key=f"endpoints_idle_{current}",
                label_visibility="collapsed",
            )
            if right.button("Delete deployment", key=f"endpoints_delete_deployment_{current}"):
                try:
                    with audited("endpoint.deployment.delete", current, gone):
                        endpoints.delete_deployment(current, gone)
                except WorkspaceError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()
        st.subheader("History")
        history = endpoints.history(current)
        if history:
            st.dataframe(
                history_frame(history), hide_index=True, key=f"endpoints_history_{current}"
            )
        else:
            st.caption("No changes recorded here yet.")
if tab_keys.open:
    with tab_keys:
        try:
            primary, secondary = endpoints.keys(current)
        except (WorkspaceError, OSError, ValueError) as exc:
            st.error(f"Keys unavailable: {exc}")
        else:
            reveal_key = f"endpoints_reveal_{current}"
            reveal = st.toggle(
                "Reveal keys",
                key=reveal_key,
                on_change=record_reveal,
                args=(reveal_key, "endpoint.keys.reveal", current),
            )
            for label, which, key in (
                ("Primary", "primary", primary),
                ("Secondary", "secondary", secondary),
            ):
                c1, c2 = st.columns([4, 1])
                if reveal:
                    c1.code(key, language=None)
                else:
                    c1.text_input(
                        label, mask_secret(key), disabled=True, key=f"endpoints_{which}_{current}"
                    )
                if c2.button(f"Regenerate {which}", key=f"endpoints_regen_{which}_{current}"):
                    with audited("endpoint.keys.regenerate", current, which):
                        endpoints.regenerate_key(current, which)
                    # The masked box keeps what it showed unless its state goes.
                    st.session_state.pop(f"endpoints_{which}_{current}", None)
                    say_after_rerun(
                        f"{label} key of **{current}** regenerated; the old one no longer works, "
                        "the other key keeps working."
                    )
                    st.rerun()
if tab_use.open:
    with tab_use:
        try:
            spec = ws.models.feature_spec(ep.model_name, ep.model_version)
        except WorkspaceError:
            spec = []
        example = [{c["name"]: c.get("example") for c in spec}] if spec else [{}]
        st.caption(
            "First `export SCORING_KEY=...` with one of the keys (Keys tab); then paste either "
            "snippet as shown."
        )
        st.code(curl_snippet(ep.scoring_uri, example), language="bash")
        st.code(python_snippet(ep.scoring_uri, example), language="python")
if tab_swagger.open:
    with tab_swagger:
        swagger = fetch_swagger(ep.swagger_uri) if ep.state == "Succeeded" else None
        if ep.state != "Succeeded":
            st.info(f"The endpoint is {ep.state}: **Restart** it to see its Swagger document.")
        elif swagger is None:
            st.warning("The endpoint is not answering: **Restart** it to see its Swagger document.")
        else:
            docs = ep.swagger_uri.replace("/swagger.json", "/docs")
            st.link_button("Open Swagger UI in a new tab", docs)
            view = st.radio(
                "View",
                ["Rendered", "JSON"],
                horizontal=True,
                key=f"endpoints_swagger_view_{current}",
            )
            if view == "Rendered" and ws.kind == "local":
                # The endpoint serves its own docs page; the dashboard and endpoint share 127.0.0.1.
                st.iframe(docs, height=640)
            else:
                st.json(swagger, expanded=1)
if tab_requests.open:
    with tab_requests:
        recent = endpoints.requests(current, limit=20)
        if recent.empty:
            st.caption("No requests recorded yet.")
        else:
            st.dataframe(recent, hide_index=True, key=f"endpoints_recent_{current}")
if tab_logs.open:
    with tab_logs:
        st.code(endpoints.logs(current) or "(empty)", language=None)
