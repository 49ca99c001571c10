"""The Pipelines page's two long forms: a pipeline definition and a schedule (widgets only)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import streamlit as st

from lib.automl_rules import AUTO_VALIDATION_HELP, ESTIMATORS, VALIDATIONS, validation_label
from lib.metrics import primary_metrics
from lib.names import endpoint_name_for, model_name_for
from lib.pipeline_view import COMMON_TIME_ZONES
from lib.workspace import Dataset, PipelineSpec, Schedule, Workspace


def spec_form(
    ws: Workspace, datasets: list[Dataset], base: PipelineSpec | None, k: str
) -> PipelineSpec:
    """Every setting of a retrain pipeline, prefilled from `base`; widget keys start with `k`."""
    ds_names = [d.name for d in datasets]
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox(
        "Dataset",
        ds_names,
        index=ds_names.index(base.dataset) if base and base.dataset in ds_names else 0,
        key=f"{k}_dataset",
    )
    versions = [None, *[v.version for v in ws.datasets.versions(dataset)]]
    version = c2.selectbox(
        "Version",
        versions,
        index=versions.index(base.dataset_version)
        if base and base.dataset_version in versions
        else 0,
        format_func=lambda v: "latest (when a run starts)" if v is None else f"v{v}",
        key=f"{k}_version_{dataset}",
    )
    columns = ws.datasets.get(dataset, version).column_names
    default_target = base.target if base and base.target in columns else None
    target = c3.selectbox(
        "Target column",
        columns,
        index=columns.index(default_target or ("y" if "y" in columns else columns[-1])),
        key=f"{k}_target_{dataset}",
    )
    c1, c2, c3 = st.columns(3)
    tasks = ["classification", "regression"]
    task = c1.selectbox("Task", tasks, index=tasks.index(base.task) if base else 0, key=f"{k}_task")
    metrics = list(primary_metrics(task))
    metric = c2.selectbox(
        "Primary metric",
        metrics,
        index=metrics.index(base.primary_metric) if base and base.primary_metric in metrics else 0,
        key=f"{k}_metric_{task}",
    )
    budget = c3.number_input(
        "Time budget (s)",
        min_value=10,
        max_value=24 * 3600,
        value=base.time_budget_s if base else 60,
        step=10,
        key=f"{k}_budget",
    )
    c1, c2, c3 = st.columns(3)
    max_trials = c1.number_input(
        "Max trials (0 = no limit)",
        min_value=0,
        value=(base.max_trials or 0) if base else 0,
        key=f"{k}_max_trials",
    )
    estimators = c2.multiselect(
        "Algorithms",
        ESTIMATORS,
        default=(base.estimators or list(ESTIMATORS)) if base else list(ESTIMATORS),
        key=f"{k}_estimators",
    )
    ensemble = c3.checkbox(
        "Ensemble of the best models", value=base.ensemble if base else True, key=f"{k}_ens"
    )
    c1, c2, c3 = st.columns(3)
    validation = c1.radio(
        "Validation",
        VALIDATIONS,
        index=VALIDATIONS.index(base.validation) if base and base.validation in VALIDATIONS else 0,
        horizontal=True,
        format_func=validation_label,
        key=f"{k}_validation",
        help=AUTO_VALIDATION_HELP,
    )
    holdout = c2.slider(
        "Holdout fraction",
        0.05,
        0.5,
        base.holdout_fraction if base else 0.2,
        0.05,
        key=f"{k}_holdout",
        disabled=validation != "holdout",
    )
    folds = c3.number_input(
        "Folds",
        2,
        20,
        base.n_folds if base else 5,
        key=f"{k}_folds",
        disabled=validation != "cv",
    )
    c1, c2, c3 = st.columns(3)
    experiment = c1.text_input(
        "Experiment", value=base.experiment_name if base else "retrain", key=f"{k}_experiment"
    )
    model_name = c2.text_input(
        "Model name",
        value=(base.model_name if base and base.model_name else model_name_for(dataset, target)),
        key=f"{k}_model_{dataset}_{target}",
    )
    clusters = (
        [t.name for t in ws.compute.list() if t.kind == "AmlCompute"]
        if ws.compute is not None and ws.kind == "azure"
        else ["local"]
    )
    compute = c3.selectbox(
        "Compute",
        clusters or ["(no cluster)"],
        index=clusters.index(base.compute) if base and base.compute in clusters else 0,
        key=f"{k}_compute",
    )
    deploy = st.radio(
        "After registering",
        ["Register only", "Deploy to an endpoint"],
        index=1 if base and base.deploy_endpoint else 0,
        horizontal=True,
        key=f"{k}_deploy",
    )
    endpoint, gated, margin = "", True, 0.0
    if deploy == "Deploy to an endpoint":
        live = [e.name for e in ws.endpoints.list()] if ws.endpoints else []
        c1, c2, c3 = st.columns(3)
        endpoint = c1.text_input(
            "Endpoint",
            value=(base.deploy_endpoint if base and base.deploy_endpoint else None)
            or endpoint_name_for(model_name),
            key=f"{k}_endpoint",
            help="An existing endpoint is redeployed in place (same URI and keys).",
        )
        gated = c2.checkbox(
            "Gated (champion/challenger)",
            value=base.gated if base else True,
            key=f"{k}_gated",
            help="Deploy only if the new model beats the endpoint's live model on the "
            "same validation rows of the new run. No live model: deploy.",
        )
        margin = c3.number_input(
            "Gate margin",
            min_value=-1.0,
            max_value=1.0,
            value=float(base.gate_margin) if base else 0.0,
            step=0.001,
            format="%.4f",
            key=f"{k}_margin",
            disabled=not gated,
            help="How much better the new model's primary metric must be.",
        )
        st.caption(
            f"**{endpoint}** exists: the gate compares against its live model."
            if endpoint in live
            else f"**{endpoint}** will be created by the first deploy."
        )
    spec = PipelineSpec(
        dataset=dataset,
        target=target,
        dataset_version=version,
        task=task,
        primary_metric=metric,
        time_budget_s=int(budget),
        max_trials=int(max_trials) or None,
        # All of them is None: whatever the engine supports.
        estimators=None if set(estimators) == set(ESTIMATORS) else list(estimators),
        validation=validation,
        holdout_fraction=float(holdout),
        n_folds=int(folds),
        ensemble=bool(ensemble),
        experiment_name=experiment.strip(),
        compute=compute,
        model_name=model_name.strip(),
        deploy_endpoint=endpoint.strip(),
        gated=bool(gated),
        gate_margin=float(margin),
    )
    return spec


def schedule_form(pipeline: str, spec: PipelineSpec) -> Schedule:
    """A time schedule (recurrence or cron) or a data trigger of `pipeline`."""
    kind = st.radio(
        "Kind",
        ["recurrence", "cron", "data"],
        format_func={
            "recurrence": "Every N minutes/hours/days/weeks",
            "cron": "Cron expression",
            "data": "When a new dataset version is registered",
        }.get,
        horizontal=True,
        key="pipelines_sched_kind",
    )
    c1, c2, c3 = st.columns(3)
    sched_name = c1.text_input(
        "Name", value=f"{pipeline}-{kind}".replace("_", "-"), key=f"pipelines_sched_name_{kind}"
    )
    new = Schedule(name=sched_name.strip(), pipeline=pipeline, trigger="", enabled=True, kind=kind)
    if kind == "recurrence":
        interval = c2.number_input("Every", 1, 1000, 1, key="pipelines_sched_interval")
        frequency = c3.selectbox(
            "Unit", ["minute", "hour", "day", "week"], index=2, key="pipelines_sched_unit"
        )
        new = replace(new, interval=int(interval), frequency=frequency)
        if frequency != "minute" and st.checkbox("At a set time", key="pipelines_sched_use_at"):
            at = st.time_input("At", dt.time(6, 0), key="pipelines_sched_at", step=300)
            new = replace(new, at_time=f"{at.hour:02d}:{at.minute:02d}")
    elif kind == "cron":
        expression = c2.text_input(
            "Cron (minute hour day month weekday)",
            value="0 6 * * 1-5",
            key="pipelines_sched_cron",
            help="Standard crontab: 0 or 7 = Sunday. '0 6 * * 1-5' = 06:00 Monday to Friday.",
        )
        new = replace(new, cron=expression.strip())
    else:
        c2.text_input("Dataset", value=spec.dataset, disabled=True, key="pipelines_sched_ds")
        new = replace(new, dataset=spec.dataset)
        st.caption(
            "Fires once per new version (several versions within one check: once, on the "
            "newest), never for the version the last run already used."
        )
    if kind != "data":
        c1, c2, c3 = st.columns(3)
        zone = c1.selectbox("Time zone", COMMON_TIME_ZONES, key="pipelines_sched_tz")
        new = replace(new, time_zone=zone)
        if c2.checkbox("Start at", key="pipelines_sched_has_start"):
            day = c2.date_input("Start date", key="pipelines_sched_start_day")
            time = c2.time_input("Start time", dt.time(0, 0), key="pipelines_sched_start_time")
            new = replace(new, start=dt.datetime.combine(day, time, tzinfo=ZoneInfo(zone)))
        if c3.checkbox("End at", key="pipelines_sched_has_end"):
            day = c3.date_input("End date", key="pipelines_sched_end_day")
            time = c3.time_input("End time", dt.time(23, 59), key="pipelines_sched_end_time")
            new = replace(new, end=dt.datetime.combine(day, time, tzinfo=ZoneInfo(zone)))
    return new
