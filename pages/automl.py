"""AutoML: submit a run, watch it live, read the leaderboard, inspect and register the best model."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from lib import charts
from lib.audit import audited
from lib.automl_rules import (
    AUTO_VALIDATION_HELP,
    ESTIMATORS,
    FORM_PICK_MAX,
    VALIDATIONS,
    names_list,
    suggest_target,
    suggest_task,
    validation_label,
)
from lib.guardrails import (
    ColumnFlag,
    column_flags,
    label_spelling_note,
    label_spellings,
    leakage_note,
    suggested_exclusions,
    too_good_note,
)
from lib.metrics import REGRESSION, TASKS, higher_is_better, primary_metrics
from lib.names import endpoint_name_for, model_name_for
from lib.ui import figure, remember, state_label, workspace
from lib.workspace import AutoMLRequest, Job, WorkspaceError

ws = workspace()
st.title("AutoML")
if ws.automl is None:
    st.info("This workspace has no AutoML service.")
    st.stop()
automl = ws.automl


def _json_or_text(value: object) -> object:
    """A trial's config as stored (JSON text locally, a dict on Azure)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {"config": value}
    return value if value is not None else {}


def elapsed_s(job: Job) -> float:
    if job.started is None:
        return 0.0
    return ((job.ended or datetime.now(UTC)) - job.started).total_seconds()


@st.cache_data(ttl=600, show_spinner="Checking the columns…")
def sample_flags(name: str, version: int, target: str, task: str) -> list[ColumnFlag]:
    """Guardrail flags of the dataset (ID-like, free text, leakage), as the run will find them:
    the whole table in file order (the leakage check samples it as the run does)."""
    return column_flags(ws.datasets.load(name, version), target, task)


@st.cache_data(ttl=600, show_spinner=False)
def label_merges(name: str, version: int, target: str) -> str | None:
    """How the run will read class labels written several ways (` yes`, `YES`), if any."""
    labels = ws.datasets.load(name, version)[target]
    merged = label_spellings(labels)
    return label_spelling_note(merged, labels.astype(str).value_counts()) if merged else None


# --- submit ---------------------------------------------------------------------------------

datasets = ws.datasets.list()
with st.expander("New AutoML run", expanded=not automl.jobs(), icon=":material/add:"):
    if not datasets:
        st.info("Upload a dataset first (Datasets page).")
    else:
        names = [d.name for d in datasets]
        c1, c2 = st.columns([3, 1])
        remember("automl_dataset", names[0], names)
        ds_name = c1.selectbox("Dataset", names, key="automl_dataset")
        versions = [v.version for v in ws.datasets.versions(ds_name)]
        remember(f"automl_version_{ds_name}", versions[0], versions)
        ds_version = c2.selectbox(
            "Version", versions, format_func=lambda v: f"v{v}", key=f"automl_version_{ds_name}"
        )
        dv = ws.datasets.get(ds_name, ds_version)
        profile = ws.datasets.profile(ds_name, ds_version)
        suggested = suggest_target(dv.column_names, profile, dv.rows)
        c1, c2, c3 = st.columns(3)
        remember(f"automl_target_{ds_name}_{ds_version}", suggested, dv.column_names)
        target = c1.selectbox(
            "Target column",
            dv.column_names,
            key=f"automl_target_{ds_name}_{ds_version}",
            help="Suggested from the column profile.",
        )
        # One per target: a fixed key would keep the first target's task for every other.
        task_key = f"automl_task_{ds_name}_{ds_version}_{target}"
        remember(task_key, suggest_task(profile, target), TASKS)
        task = c2.selectbox("Task", TASKS, key=task_key)
        metrics = primary_metrics(task)
        remember(f"automl_metric_{task}", metrics[0], metrics)
        metric = c3.selectbox("Primary metric", metrics, key=f"automl_metric_{task}")
        candidates = [c for c in dv.column_names if c != target]
        try:
            flags = sample_flags(ds_name, int(ds_version), target, task)
            merges = label_merges(ds_name, int(ds_version), target) if task != REGRESSION else None
        except WorkspaceError as exc:
            st.warning(f"Column guardrails unavailable: {exc}")
            flags, merges = [], None
        if merges:
            st.info(
                f"**{target}** writes some classes several ways; the run learns each as the "
                f"spelling most rows use: {merges}.",
                icon=":material/spellcheck:",
            )
        flagged = [c for c in suggested_exclusions(flags) if c in candidates]
        features_key = f"automl_features_{ds_name}_{ds_version}_{target}"
        # A wide table (gene expression, a word-count matrix) is chosen by what is left out:
        # thousands of ticked columns do not render in well under a second.
        wide = len(candidates) > FORM_PICK_MAX

        def keep_all() -> None:
            st.session_state[features_key] = [] if wide else candidates

        default = flagged if wide else [c for c in candidates if c not in flagged]
        # Another version of the dataset with the same columns keeps the choice made for it.
        last = st.session_state.setdefault("automl_last_choice", {}).get((ds_name, target))
        if last is not None and last[0] == wide and set(last[1]) <= set(candidates):
            default = [c for c in candidates if c in set(last[1])]
        remember(features_key, default)
        if wide:
            left_out = st.multiselect(
                "Columns left out",
                candidates,
                key=features_key,
                help="Every other column but the target is a feature. Flagged columns start "
                "here: ID-like, free text, or leaking the target.",
            )
            features = [c for c in candidates if c not in set(left_out)]
            st.caption(f"{len(features):,} of the {len(candidates):,} columns are features.")
        else:
            features = st.multiselect(
                "Feature columns",
                candidates,
                key=features_key,
                help="Flagged columns start unticked: ID-like, free text, or leaking the target.",
            )
        st.session_state["automl_last_choice"][(ds_name, target)] = (
            wide,
            list(st.session_state[features_key]),
        )
        if flags:
            st.dataframe(
                pd.DataFrame(
                    [{"column": f.column, "flag": f.kind, "why": f.reason} for f in flags]
                ),
                hide_index=True,
                key="automl_column_flags",
            )
            st.button(
                "Keep the flagged columns",
                on_click=keep_all,
                key="automl_keep_flagged",
                disabled=set(flagged) <= set(features),
            )
        c1, c2, c3 = st.columns(3)
        remember("automl_budget", 60)
        budget = c1.number_input(
            "Time budget (s)",
            min_value=10,
            max_value=24 * 3600,
            step=10,
            key="automl_budget",
            help="10 s to 86,400 s (24 h). A value outside is not taken: the box turns red and "
            "keeps its last value, which the run is submitted with.",
        )
        remember("automl_max_trials", 0)
        max_trials = c2.number_input(
            "Max trials (0 = no limit)",
            min_value=0,
            max_value=100_000,
            key="automl_max_trials",
        )
        remember("automl_estimators", list(ESTIMATORS))
        estimators = c3.multiselect("Algorithms", ESTIMATORS, key="automl_estimators")
        c1, c2, c3 = st.columns(3)
        remember("automl_validation", VALIDATIONS[0], VALIDATIONS)
        validation = c1.radio(
            "Validation",
            VALIDATIONS,
            horizontal=True,
            key="automl_validation",
            format_func=validation_label,
        )
        holdout, folds = 0.2, 5
        if validation == "holdout":
            holdout = c2.slider("Holdout fraction", 0.05, 0.5, 0.2, 0.05, key="automl_holdout")
        elif validation == "cv":
            folds = c2.number_input("Folds", 2, 20, 5, key="automl_folds")
        else:
            c2.caption(AUTO_VALIDATION_HELP)
        remember("automl_ensemble", True)
        ensemble = c3.checkbox("Ensemble of the best models", key="automl_ensemble")
        c1, c2 = st.columns(2)
        remember("automl_experiment", "automl")
        experiment = c1.text_input("Experiment name", key="automl_experiment")
        clusters = (
            [t.name for t in ws.compute.list() if t.kind == "AmlCompute"] if ws.compute else []
        )
        if ws.kind == "local":
            compute = c2.selectbox("Compute", ["local"], key="automl_compute")
        elif clusters:
            compute = c2.selectbox("Compute cluster", clusters, key="automl_compute")
        else:
            compute = ""
            c2.warning("No compute cluster in this workspace: create one on the Compute page.")
        request = AutoMLRequest(
            dataset=ds_name,
            dataset_version=int(ds_version),
            target=target,
            task=task,
            primary_metric=metric,
            time_budget_s=int(budget),
            max_trials=int(max_trials) or None,
            estimators=list(estimators) or None,
            validation=validation,
            holdout_fraction=float(holdout),
            n_folds=int(folds),
            ensemble=bool(ensemble),
            experiment_name=experiment.strip() or "automl",
            compute=compute,
            features=list(features),
        )
        if st.button("Submit AutoML run", type="primary", key="automl_submit"):
            problems = automl.validate(request)
            if not estimators:
                problems.append("Choose at least one algorithm.")
            if problems:
                for p in problems:
                    st.error(p)
            else:
                try:
                    job = automl.submit(replace(request))
                except WorkspaceError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["automl_job"] = job.id
                    st.success(
                        f"Submitted **{job.id}** ({job.state}): {request.task} of "
                        f"**{request.target}**, a {request.time_budget_s:,} s time budget"
                        + (f", at most {request.max_trials:,} trials" if request.max_trials else "")
                        + "."
                    )

# --- runs -------------------------------------------------------------------------------------

jobs = automl.jobs()
if not jobs:
    st.stop()
job_ids = [j.id for j in jobs]
current_id = st.session_state.get("automl_job")
if current_id not in job_ids:
    current_id = job_ids[0]
rendered_states = {j.id: j.state for j in jobs}


@st.cache_data(ttl=600, show_spinner=False)
def final_leaderboard(where: str, job_id: str, per_estimator: bool) -> pd.DataFrame:
    """A completed run's leaderboard (it no longer changes), read once per run and view."""
    return automl.leaderboard(job_id, per_estimator=per_estimator)


@st.cache_data(ttl=600, show_spinner=False)
def served_model(where: str, job_id: str, metric: str) -> tuple[str | None, float | None]:
    """A completed run's served model and its score on the validation rows (what the
    best-model panel shows): a search trial's score is measured as the search measured it, and
    differs (an ensemble a little below its best member's trial, a fit cut to the budget)."""
    try:
        details = automl.details(job_id) or {}
    except WorkspaceError:
        return None, None
    value = (details.get("metrics") or {}).get(metric)
    return details.get("best_estimator"), None if value is None else float(value)


def whole_numbers(frame: pd.DataFrame) -> dict:
    """Column formats: trial numbers as integers (a missing one makes them floats), else 4
    decimals."""
    return {
        c: st.column_config.NumberColumn(format="%d" if c in ("trial", "trials") else "%.4f")
        for c in frame.columns
        if pd.api.types.is_float_dtype(frame[c])
    }


def run_cards(job: Job, metric: str, budget: float) -> None:
    """Trials, best score and algorithm, time: live while running, the final board once done."""
    p = job.progress
    best, algorithm, label = p.get("best_score"), p.get("current_estimator"), "Current algorithm"
    if job.state == "Completed":
        label = "Best algorithm"
        try:
            board = final_leaderboard(ws.description, job.id, True)
        except WorkspaceError:
            board = pd.DataFrame()
        if not board.empty and metric in board.columns:
            # The leaderboard's best, the ensemble included when it won.
            best, algorithm = board.iloc[0][metric], board.iloc[0].get("estimator")
        name, served = served_model(ws.description, job.id, metric)
        best = served if served is not None else best
        algorithm = name or algorithm
    elif job.is_terminal:
        label = "Last algorithm"
    c = st.columns(4)
    c[0].metric("Trials", int(p.get("trials") or 0), border=True)
    c[1].metric(f"Best {metric}", f"{best:.4f}" if best is not None else "–", border=True)
    note = too_good_note(metric, best)
    if note:
        c[1].warning(note, icon=":material/warning:")
    # "VotingEnsemble" does not fit a quarter of a 1,400 px page: a short name, the full in help.
    short = {"VotingEnsemble": "Ensemble", "StackEnsemble": "Stack"}.get(algorithm or "", algorithm)
    c[2].metric(label, short or "–", border=True, help=algorithm if short != algorithm else None)
    c[3].metric("Elapsed / budget", f"{elapsed_s(job):.0f} / {budget:.0f} s", border=True)


def live_view(job: Job) -> None:
    """Progress of one run: cards, the best score over time, its log and guardrails."""
    req = job.spec["request"]
    metric = req["primary_metric"]
    budget = float(req["time_budget_s"])
    with st.container(border=True):
        st.markdown(f"**{job.id}** — {state_label(job.state)}")
        run_cards(job, metric, budget)
        p = job.progress
        if not job.is_terminal:
            st.progress(min(1.0, elapsed_s(job) / budget), text=p.get("phase", job.state))
            if st.button("Cancel run", key=f"automl_cancel_{job.id}"):
                automl.cancel(job.id)
                st.rerun()
        if job.error:
            st.error(job.error)
        try:
            trials = automl.trials(job.id)
        except WorkspaceError as exc:
            st.warning(f"Trials unavailable: {exc}")
            trials = pd.DataFrame(columns=["wall_time_s", "primary_metric", "estimator"])
        st.plotly_chart(
            figure(
                charts.best_score_over_time,
                trials,
                metric,
                higher_is_better=higher_is_better(metric),
            ),
            key=f"automl_curve_{job.id}",
        )
        with st.expander("Log"):
            try:
                tail = automl.log_tail(job.id)
            except WorkspaceError as exc:
                tail = str(exc)
            st.code(tail or "(empty)", language=None)
    rails = automl.guardrails(job.id)
    if rails:
        with st.expander("Data guardrails", icon=":material/shield:"):
            st.dataframe(pd.DataFrame(rails), hide_index=True, key=f"automl_rails_{job.id}")


@st.fragment(run_every=2 if any(not j.is_terminal for j in jobs) else None)
def runs_view() -> None:
    """The runs table and the chosen run; refreshes itself only while a run is active."""
    jobs = automl.jobs()
    if {j.id: j.state for j in jobs} != rendered_states:
        # A run started or ended: redraw the page (results, and whether to keep refreshing).
        st.rerun()
    st.subheader("Runs")
    runs = pd.DataFrame(
        [
            {
                "job": j.id,
                "state": j.state,
                "dataset": f"{j.spec['request']['dataset']} "
                f"v{j.spec['request']['dataset_version']}",
                "target": j.spec["request"]["target"],
                "metric": j.spec["request"]["primary_metric"],
                "best": j.progress.get("best_score"),
                "trials": int(j.progress.get("trials") or 0),
                "elapsed_s": round(elapsed_s(j)),
                "created": j.created,
            }
            for j in jobs
        ]
    )
    picked = st.dataframe(
        runs,
        hide_index=True,
        key="automl_runs",
        on_select="rerun",
        selection_mode="single-row",
        column_config={"best": st.column_config.NumberColumn(format="%.4f")},
    )
    if picked and picked.selection.rows:
        chosen = runs.iloc[picked.selection.rows[0]]["job"]
        if chosen != current_id:
            st.session_state["automl_job"] = chosen
            st.rerun()
    live_view(next(j for j in jobs if j.id == current_id))


runs_view()
job = automl.get(current_id)
if job.state != "Completed":
    st.stop()

# --- leaderboard and best model ------------------------------------------------------------------

metric = job.spec["request"]["primary_metric"]
st.subheader("Leaderboard")
chosen = job.spec["request"].get("features")
left_out = job.progress.get("left_out")
st.caption(
    (
        f"Features: {len(chosen):,} chosen ({names_list(chosen)})."
        if chosen
        else "Features: every column but the target"
        + (" and those left out" if left_out else "")
        + "."
    )
    + (f" Left out: {names_list(left_out)}." if left_out else "")
)
served_name, served_value = served_model(ws.description, job.id, metric)
if served_name and served_value is not None:
    st.caption(
        f"Served: **{served_name}**, {metric} {served_value:.4f} on the validation rows. Each "
        "algorithm's row is its best search trial as the search scored it (its own fit and "
        "rows), so a row may read a little above the served model that contains it."
    )
per_estimator = st.toggle(
    "Best per algorithm (fully evaluated)", value=True, key="automl_per_estimator"
)
try:
    board = final_leaderboard(ws.description, job.id, per_estimator)
except WorkspaceError as exc:
    st.warning(f"Leaderboard unavailable: {exc}")
    board = pd.DataFrame()
if board.empty:
    st.info("No trials were recorded for this run.")
else:
    # Only the columns that vary across rows are worth reading.
    shown = [
        c
        for c in board.columns
        if c not in ("config", "run_id") and board[c].astype(str).nunique() > 1
    ]
    shown = list(dict.fromkeys(["estimator", metric, *shown]))
    # Sorted best first; the rank says so without a pandas Styler (slow to build and render).
    view = board[[c for c in shown if c in board.columns]]
    view.insert(0, "rank", range(1, len(view) + 1))
    picked_row = st.dataframe(
        view,
        hide_index=True,
        key="automl_leaderboard",
        on_select="rerun",
        selection_mode="single-row",
        column_config=whole_numbers(view),
    )
    if picked_row and picked_row.selection.rows:
        row = board.iloc[picked_row.selection.rows[0]]
        with st.container(border=True):
            st.markdown(
                f"**{row.get('estimator', '')}** — {metric} {row.get(metric, float('nan')):.4f}"
            )
            c1, c2 = st.columns(2)
            numbers = {
                k: v for k, v in row.items() if isinstance(v, int | float) and k not in ("config",)
            }
            c1.dataframe(pd.Series(numbers, name="value").to_frame(), key="automl_row_metrics")
            config = row.get("config")
            c2.json(config if isinstance(config, dict) else _json_or_text(config))
    st.download_button(
        "Export leaderboard (CSV)",
        board.to_csv(index=False).encode(),
        file_name=f"{job.id}-leaderboard.csv",
        key="automl_export",
    )
    if per_estimator and metric in board.columns:
        st.plotly_chart(
            figure(
                charts.estimator_comparison, board.drop(columns="config", errors="ignore"), metric
            ),
            key="automl_estimators_chart",
        )

try:
    details = automl.details(job.id)
except WorkspaceError as exc:
    st.warning(f"Model details unavailable: {exc}")
    details = {}
if details:
    st.subheader(f"Best model: {details.get('best_estimator', '')}")
    best_metrics = details.get("metrics", {})
    note = too_good_note(metric, best_metrics.get(metric))
    if note:
        st.warning(note, icon=":material/warning:")
    leaks = (details.get("leakage") or {}).get("flags") or []
    leak_note = leakage_note([f["reason"] for f in leaks])
    if leak_note:
        st.warning(leak_note, icon=":material/warning:")
    if best_metrics:
        st.dataframe(
            pd.DataFrame([best_metrics]).T.rename(columns={0: "value"}),
            key="automl_best_metrics",
        )
    # Only the open tab's chart is built and sent (each costs the browser ~0.1 s to draw).
    if "predicted_vs_true" in details or job.spec.get("request", {}).get("task") == REGRESSION:
        fit_tab, residual_tab, importance = st.tabs(
            ["Predicted vs true", "Residuals", "Feature importance"],
            key="automl_details_regression",
            on_change="rerun",
        )
        points = pd.DataFrame(details.get("predicted_vs_true", []))
        if fit_tab.open:
            fit_tab.plotly_chart(
                figure(charts.predicted_vs_true, points, best_metrics.get("r2_score")),
                key="automl_predicted_vs_true",
            )
            if len(points):
                fit_tab.caption(f"{len(points):,} validation rows.")
        if residual_tab.open:
            residual_tab.plotly_chart(figure(charts.residuals, points), key="automl_residuals")
        if importance.open:
            importance.plotly_chart(
                figure(
                    charts.feature_importance, pd.DataFrame(details.get("feature_importance", []))
                ),
                key="automl_importance",
            )
    else:
        roc, pr, confusion_tab, calibration, importance = st.tabs(
            ["ROC", "Precision-recall", "Confusion matrix", "Calibration", "Feature importance"],
            key="automl_details",
            on_change="rerun",
        )
        classes = len((details.get("confusion") or {}).get("labels", []))
        curved = len({row.get("class") for row in details.get("roc", [])})
        some = (
            f"Curves of the {curved} most frequent of the {classes} classes."
            if classes > 2 and 0 < curved < classes
            else None
        )
        if roc.open:
            roc.plotly_chart(
                figure(
                    charts.roc_curve,
                    pd.DataFrame(details.get("roc", [])),
                    best_metrics.get("AUC_weighted"),
                ),
                key="automl_roc",
            )
            if some:
                roc.caption(some)
        if pr.open:
            pr.plotly_chart(
                figure(
                    charts.pr_curve,
                    pd.DataFrame(details.get("pr", [])),
                    best_metrics.get("average_precision_score_weighted"),
                ),
                key="automl_pr",
            )
            if some:
                pr.caption(some)
        if confusion_tab.open:
            confusion = details.get("confusion") or {}
            normalize = confusion_tab.toggle("Row percentages", key="automl_confusion_norm")
            confusion_tab.plotly_chart(
                figure(
                    charts.confusion_matrix,
                    confusion.get("matrix", []),
                    confusion.get("labels", []),
                    normalize=normalize,
                ),
                key="automl_confusion",
            )
        if calibration.open:
            calibration.plotly_chart(
                figure(charts.calibration_curve, pd.DataFrame(details.get("calibration", []))),
                key="automl_calibration",
            )
        if importance.open:
            importance.plotly_chart(
                figure(
                    charts.feature_importance, pd.DataFrame(details.get("feature_importance", []))
                ),
                key="automl_importance",
            )

if ws.models is not None:
    st.subheader("Register and deploy the best model")
    default_name = model_name_for(job.spec["request"]["dataset"], job.spec["request"]["target"])
    name = st.text_input("Model name", value=default_name, key="automl_model_name")
    description = st.text_input("Description", key="automl_model_description")
    c1, c2 = st.columns(2)
    register = c1.button("Register model", key="automl_register")
    deploy = c2.button(
        "Register and deploy",
        type="primary",
        key="automl_register_deploy",
        icon=":material/rocket_launch:",
        disabled=ws.endpoints is None,
        help="One click: a new model version, live on an endpoint named after the model.",
    )
    if register or deploy:
        try:
            if deploy:
                target = endpoint_name_for(name.strip())
                with audited("endpoint.deploy", target, f"{name.strip()} from AutoML run {job.id}"):
                    model, ep = ws.register_and_deploy(job.id, name.strip(), description)
            else:
                model = ws.models.register(job.id, name.strip(), description)
        except WorkspaceError as exc:
            st.error(str(exc))
        else:
            if deploy:
                st.session_state["endpoints_selected"] = ep.name
                st.switch_page("pages/endpoints.py")
            st.success(f"Registered **{model.name} v{model.version}** ({model.uri}).")
