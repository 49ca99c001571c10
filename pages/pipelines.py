"""Pipelines: define a retrain pipeline, run it, publish it over REST, schedule and trigger it."""

from __future__ import annotations

import json
from dataclasses import replace

import streamlit as st

from lib.audit import audited, record_reveal
from lib.metrics import primary_metrics
from lib.names import model_name_for
from lib.pipeline_forms import schedule_form, spec_form
from lib.pipeline_rules import spec_problems
from lib.pipeline_snippets import azure_snippet, curl_snippet, python_snippet
from lib.pipeline_view import (
    STATE_ICONS,
    duration_text,
    parse_overrides,
    runs_frame,
    schedules_frame,
    step_summary,
)
from lib.settings import mask_secret
from lib.ui import ago, workspace
from lib.workspace import PipelineRun, WorkspaceError

ws = workspace()
st.title("Pipelines")
if ws.pipelines is None:
    st.info("This workspace has no pipeline service.")
    st.stop()
pipelines = ws.pipelines
st.caption(
    "A retrain pipeline: dataset → AutoML → register the best model → optional gated deploy. "
    "Run it from here, over REST, on a schedule, or when a new dataset version arrives."
)

agent = pipelines.agent()
if ws.kind == "local":
    if agent.state == "Running":
        st.caption(f":material/dns: Agent running at `{agent.url}` (PID {agent.pid}).")
    elif agent.state == "NotNeeded":
        st.caption(
            ":material/dns: The agent starts when a pipeline is published or scheduled; "
            "it serves REST calls and fires schedules with no browser open."
        )
    else:
        st.warning(f"Pipeline agent: {agent.state}. {agent.error or ''}".strip())

# A message from the run before a rerun (a message shown right before `st.rerun` is never seen).
# Always a slot, filled or not: an element that comes and goes would move the tabs below, and
# the browser would reset them to their first tab.
flash = st.session_state.pop("pipelines_flash", None)
flash_slot = st.empty()
if flash:
    flash_slot.success(flash, icon=":material/check_circle:")

# --- create or edit ---------------------------------------------------------------------------

existing = pipelines.list()
names = [p.name for p in existing]
datasets = ws.datasets.list()
with st.expander("New or edited pipeline", expanded=not existing, icon=":material/account_tree:"):
    if not datasets:
        st.info("Upload a dataset first (Datasets page).")
    else:
        editing = st.selectbox(
            "Pipeline",
            ["(new pipeline)", *names],
            index=(names.index(st.session_state["pipelines_selected"]) + 1)
            if st.session_state.get("pipelines_selected") in names
            else 0,
            key="pipelines_edit",
        )
        base = None if editing == "(new pipeline)" else pipelines.get(editing).spec
        k = f"pipelines_form_{editing}"
        c1, c2 = st.columns([1, 2])
        if base is None:
            name = c1.text_input(
                "Name",
                value="retrain",
                key=f"{k}_name",
                help="Lower-case letters, digits and '_' (Azure pipeline component names).",
            )
        else:
            name = editing
            c1.text_input("Name", value=editing, disabled=True, key=f"{k}_name")
        description = c2.text_input(
            "Description",
            value=pipelines.get(editing).description if base else "",
            key=f"{k}_description",
        )
        spec = spec_form(ws, datasets, base, k)
        if st.button("Save pipeline", type="primary", key="pipelines_save", icon=":material/save:"):
            problems = spec_problems(spec)
            if problems:
                for problem in problems:
                    st.error(str(problem))
            else:
                try:
                    saved = pipelines.save(name, spec, description)
                except WorkspaceError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["pipelines_selected"] = saved.name
                    # The picker below keeps its own value over `index`: point it at the saved one.
                    st.session_state["pipelines_pick"] = saved.name
                    st.session_state["pipelines_flash"] = (
                        f"Saved **{saved.name} v{saved.version}**."
                    )
                    st.rerun()

if not existing:
    st.stop()

# --- one pipeline -----------------------------------------------------------------------------

current = st.session_state.get("pipelines_selected")
if current not in names:
    current = names[0]
current = st.selectbox("Pipeline", names, index=names.index(current), key="pipelines_pick")
st.session_state["pipelines_selected"] = current
pipeline = pipelines.get(current)
spec = pipeline.spec
deploy_text = (
    f"deploy to **{spec.deploy_endpoint}**"
    + (f" if it beats the live model by > {spec.gate_margin:g}" if spec.gated else " (no gate)")
    if spec.deploy_endpoint
    else "register only"
)
st.markdown(
    f"**{pipeline.name} v{pipeline.version}** · {spec.dataset} "
    f"{'latest' if spec.dataset_version is None else f'v{spec.dataset_version}'} → "
    f"AutoML {spec.task} on `{spec.target}` ({spec.primary_metric}, {spec.time_budget_s} s) → "
    f"register **{spec.model_name or model_name_for(spec.dataset, spec.target)}** → {deploy_text}"
)

tab_runs, tab_run, tab_publish, tab_schedules, tab_versions = st.tabs(
    ["Runs", "Run now", "Publish", "Schedules & triggers", "Versions"]
)

with tab_run:
    c1, c2, c3, c4 = st.columns(4)
    versions = [None, *[v.version for v in ws.datasets.versions(spec.dataset)]]
    run_version = c1.selectbox(
        "Dataset version",
        versions,
        index=versions.index(spec.dataset_version) if spec.dataset_version in versions else 0,
        format_func=lambda v: "latest" if v is None else f"v{v}",
        key=f"pipelines_run_version_{current}",
    )
    run_budget = c2.number_input(
        "Time budget (s)",
        10,
        24 * 3600,
        spec.time_budget_s,
        10,
        key=f"pipelines_run_budget_{current}",
    )
    run_metrics = list(primary_metrics(spec.task))
    run_metric = c3.selectbox(
        "Primary metric",
        run_metrics,
        index=run_metrics.index(spec.primary_metric),
        key=f"pipelines_run_metric_{current}",
    )
    run_margin = c4.number_input(
        "Gate margin",
        -1.0,
        1.0,
        float(spec.gate_margin),
        0.001,
        format="%.4f",
        key=f"pipelines_run_margin_{current}",
        disabled=not (spec.deploy_endpoint and spec.gated),
    )
    more = st.text_area(
        "More parameters (JSON)",
        value="",
        placeholder='{"max_trials": 20, "estimators": ["lgbm"]}',
        key=f"pipelines_run_more_{current}",
        height=68,
    )
    if st.button("Run now", type="primary", key="pipelines_run_now", icon=":material/play_arrow:"):
        overrides = {
            key: value
            for key, value, default in (
                ("dataset_version", run_version, spec.dataset_version),
                ("time_budget_s", int(run_budget), spec.time_budget_s),
                ("primary_metric", run_metric, spec.primary_metric),
                ("gate_margin", float(run_margin), spec.gate_margin),
            )
            if value != default
        }
        try:
            overrides.update(parse_overrides(more))
            run = pipelines.run(current, overrides)
        except WorkspaceError as exc:
            st.error(str(exc))
        else:
            st.session_state["pipelines_run"] = run.id
            st.success(f"Started **{run.id}** ({run.state}). Follow it on the Runs tab.")


def show_steps(run: PipelineRun) -> None:
    """The step graph: each step's state and duration, in order."""
    cells = st.columns(len(run.steps))
    for cell, step in zip(cells, run.steps, strict=True):
        with cell.container(border=True):
            st.markdown(f"{STATE_ICONS.get(step.state, '')} **{step.name}**")
            st.caption(f"{step.state} · {duration_text(step.duration_s)}".rstrip(" ·"))
            summary = step_summary(step)
            if summary:
                st.caption(summary)


def show_run(run: PipelineRun) -> None:
    st.markdown(
        f"**{run.id}** · {run.state} · trigger `{run.trigger}` · pipeline v{run.pipeline_version}"
        f" · experiment `{run.experiment}` · created {ago(run.created)}"
        + (f" · overrides `{json.dumps(run.parameters)}`" if run.parameters else "")
    )
    if run.error:
        st.error(run.error)
    show_steps(run)
    gate = run.outputs.get("gate")
    if gate and gate.get("challenger") is not None:
        c1, c2, c3 = st.columns([1, 1, 2])
        challenger, champion = gate.get("challenger"), gate.get("champion")
        c1.metric(f"New model · {gate.get('metric')}", f"{challenger:.4f}", border=True)
        c2.metric(
            f"Live model · {gate.get('champion_model') or 'none'}",
            "—" if champion is None else f"{champion:.4f}",
            border=True,
        )
        note = (
            f"{gate.get('rows_kind', '')}, {gate.get('rows', 0):,} rows" if gate.get("rows") else ""
        )
        (c3.success if gate.get("decision") == "deploy" else c3.info)(
            f"Gate: **{gate.get('decision')}** — {gate.get('reason')}"
            + (f" ({note})" if note else "")
        )
    out = run.outputs
    c = st.columns(4)
    if out.get("automl_job") and c[0].button(
        "AutoML job", key=f"pipelines_open_job_{run.id}", icon=":material/model_training:"
    ):
        st.session_state["automl_job"] = out["automl_job"]
        st.switch_page("pages/automl.py")
    if out.get("model_version") and c[1].button(
        f"Model {out['model_name']} v{out['model_version']}",
        key=f"pipelines_open_model_{run.id}",
        icon=":material/inventory_2:",
    ):
        st.switch_page("pages/models.py")
    if out.get("endpoint") and c[2].button(
        f"Endpoint {out['endpoint']}",
        key=f"pipelines_open_endpoint_{run.id}",
        icon=":material/rocket_launch:",
    ):
        st.session_state["endpoints_selected"] = out["endpoint"]
        st.switch_page("pages/endpoints.py")
    if not run.is_terminal and c[3].button(
        "Cancel run", key=f"pipelines_cancel_{run.id}", icon=":material/stop:"
    ):
        pipelines.cancel_run(run.id)
        st.rerun()
    step = st.selectbox(
        "Step log", [s.name for s in run.steps], key=f"pipelines_log_step_{run.id}", index=1
    )
    st.code(pipelines.step_log(run.id, step) or "(nothing logged yet)", language=None)


def runs_view(name: str, live: bool) -> None:
    runs = pipelines.runs(name)
    if not runs:
        st.caption("No runs yet: use **Run now**, publish it, or schedule it.")
        return
    active = any(not r.is_terminal for r in runs)
    if live and not active:
        # The last run just ended: rerun the page so this view stops refreshing.
        st.rerun()
    picked = st.dataframe(
        runs_frame(runs),
        hide_index=True,
        key=f"pipelines_runs_{name}",
        on_select="rerun",
        selection_mode="single-row",
        column_config={"created": st.column_config.DatetimeColumn("created", format="distance")},
    )
    ids = [r.id for r in runs]
    if picked and picked.selection.rows:
        st.session_state["pipelines_run"] = ids[picked.selection.rows[0]]
    chosen = st.session_state.get("pipelines_run")
    run = next((r for r in runs if r.id == chosen), runs[0])
    show_run(run)


with tab_runs:
    busy = any(not r.is_terminal for r in pipelines.runs(current))
    st.fragment(run_every=2 if busy else None)(runs_view)(current, busy)

with tab_publish:
    if pipeline.published_version is None:
        st.caption(
            "Publishing gives this pipeline a REST endpoint and two keys: "
            '`POST` the classic `{"ExperimentName": ..., "ParameterAssignments": {...}}` body.'
        )
        if st.button("Publish", type="primary", key="pipelines_publish", icon=":material/public:"):
            try:
                with st.spinner("Publishing (on Azure this creates a batch endpoint) …"):
                    pipelines.publish(current)
            except WorkspaceError as exc:
                st.error(str(exc))
            else:
                st.rerun()
    else:
        st.caption(
            f"Published version **v{pipeline.published_version}**"
            + (
                f" (latest is v{pipeline.latest_version})"
                if pipeline.latest_version != pipeline.published_version
                else ""
            )
        )
        st.code(pipeline.rest_endpoint or "(the agent has not started yet)", language=None)
        c1, c2 = st.columns(2)
        if pipeline.latest_version != pipeline.published_version and c1.button(
            f"Publish v{pipeline.latest_version}", key="pipelines_republish"
        ):
            pipelines.publish(current)
            st.rerun()
        if c2.button("Unpublish", key="pipelines_unpublish", icon=":material/public_off:"):
            pipelines.unpublish(current)
            st.rerun()
        example = {"time_budget_s": spec.time_budget_s}
        if ws.kind == "azure":
            st.caption("Azure: sign in with Azure AD (no key), then run:")
            st.code(
                azure_snippet(
                    pipeline.rest_endpoint, spec.experiment_name, spec.dataset, spec.gate_margin
                ),
                language="python",
            )
        else:
            primary, secondary = pipelines.keys(current)
            reveal_key = f"pipelines_reveal_{current}"
            reveal = st.toggle(
                "Reveal keys",
                key=reveal_key,
                on_change=record_reveal,
                args=(reveal_key, "pipeline.keys.reveal", current),
            )
            for label, which, key in (
                ("Primary key", "primary", primary),
                ("Secondary key", "secondary", secondary),
            ):
                c1, c2 = st.columns([4, 1])
                if reveal:
                    c1.code(key, language=None)
                else:
                    c1.text_input(
                        label, mask_secret(key), disabled=True, key=f"pipelines_{which}_{current}"
                    )
                if c2.button(f"Regenerate {which}", key=f"pipelines_regen_{which}_{current}"):
                    with audited("pipeline.keys.regenerate", current, which):
                        pipelines.regenerate_key(current, which)
                    st.toast(f"{label} regenerated; the other key keeps working.")
                    st.rerun()
            shown = primary if reveal else mask_secret(primary)
            if not reveal:
                st.caption("Reveal the keys to copy snippets that run exactly as shown.")
            url = pipeline.rest_endpoint
            st.code(curl_snippet(url, shown, spec.experiment_name, example), language="bash")
            st.code(python_snippet(url, shown, spec.experiment_name, example), language="python")
            st.caption(
                "The answer is `202` with the run's `Id` and `StatusUrl`; `GET` the status URL "
                "with the same header for its state and steps."
            )

with tab_schedules:
    schedules = pipelines.schedules(current)
    if schedules:
        st.dataframe(schedules_frame(schedules), hide_index=True, key=f"pipelines_sched_{current}")
        for s in schedules:
            c1, c2, c3 = st.columns([3, 1, 1])
            c1.markdown(f"**{s.name}** · {s.trigger}")
            enabled = c2.toggle("Enabled", value=s.enabled, key=f"pipelines_enabled_{s.name}")
            if enabled != s.enabled:
                pipelines.enable_schedule(s.name, enabled)
                st.rerun()
            if c3.button(
                "Delete", key=f"pipelines_delete_sched_{s.name}", icon=":material/delete:"
            ):
                with audited("pipeline.schedule.delete", s.name):
                    pipelines.delete_schedule(s.name)
                st.rerun()
    else:
        st.caption("No schedules or triggers yet.")
    st.markdown("**Add a schedule or trigger**")
    new = schedule_form(current, spec)
    params_text = st.text_input(
        "Parameters for its runs (JSON, optional)", value="", key="pipelines_sched_params"
    )
    if st.button(
        "Save schedule", type="primary", key="pipelines_sched_save", icon=":material/alarm_add:"
    ):
        try:
            saved = pipelines.set_schedule(replace(new, parameters=parse_overrides(params_text)))
        except WorkspaceError as exc:
            st.error(str(exc))
        else:
            when = f", next run {saved.next_run:%Y-%m-%d %H:%M %Z}" if saved.next_run else ""
            st.session_state["pipelines_flash"] = f"Saved **{saved.name}**: {saved.trigger}{when}."
            st.rerun()

with tab_versions:
    history = pipelines.versions(current)
    st.dataframe(
        [
            {
                "version": f"v{p.version}",
                "created": p.created,
                "description": p.description,
                "published": p.version == pipeline.published_version,
            }
            for p in history
        ],
        hide_index=True,
        key=f"pipelines_versions_{current}",
    )
    labels = [f"v{p.version}" for p in history]
    shown_version = st.selectbox("Definition of", labels, key=f"pipelines_version_{current}")
    st.json(history[labels.index(shown_version)].spec.__dict__, expanded=True)
    with st.popover("Delete pipeline", icon=":material/delete:"):
        st.write(f"Delete **{current}**, its publication and schedules? Past runs stay listed.")
        if st.button("Delete", key=f"pipelines_delete_{current}", type="primary"):
            try:
                with audited("pipeline.delete", current):
                    pipelines.delete(current)
            except WorkspaceError as exc:
                st.error(str(exc))
            else:
                st.session_state.pop("pipelines_selected", None)
                st.rerun()
