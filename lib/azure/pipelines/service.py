"""`AzurePipelines`: the PipelineService over an Azure ML workspace.

- A definition is a registered pipeline component (one version per saved spec; the spec and
  description ride along as tags).
- A run is a pipeline job (`ml_client.jobs`), its steps the job's child jobs, named by their
  display names; a step script's outcome (gate decision, deploy result) comes back as tags.
- Publishing puts the component behind a batch endpoint as a pipeline component deployment; it
  is invoked over REST with an Azure AD token (no keys).
- Schedules are `JobSchedule`s with a cron or recurrence trigger. Data triggers have no
  `JobSchedule` counterpart: they are refused here, with the reason.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from azure.ai.ml.entities import (
    BatchEndpoint,
    CronTrigger,
    JobSchedule,
    PipelineComponentBatchDeployment,
    RecurrencePattern,
    RecurrenceTrigger,
)
from azure.core.exceptions import ResourceNotFoundError

from lib.azure.client import MLClientSource, azure_call
from lib.azure.compute import JOB_STATES
from lib.azure.datasets import AzureDatasets
from lib.azure.pipelines.build import azure_spec_problems, dataset_input, pipeline_job
from lib.azure.pipelines.steps.split import encode_sheet, encode_tokens
from lib.azure.values import created_at, parse_time, wire_text
from lib.errors import WorkspaceError
from lib.names import endpoint_name_for, model_name_for, validate_pipeline_name
from lib.pipeline_rules import ParameterError, apply_parameters, check_schedule, check_spec
from lib.pipeline_schedules import next_fire
from lib.workspace import (
    PIPELINE_STEPS,
    Pipeline,
    PipelineAgent,
    PipelineRun,
    PipelineSpec,
    PipelineStep,
    Schedule,
)

PIPELINE_TAG = "opsdeck.pipeline"
SPEC_TAG = "opsdeck.spec"
VERSION_TAG = "opsdeck.pipeline_version"
TRIGGER_TAG = "opsdeck.trigger"
PARAMETERS_TAG = "opsdeck.parameters"
DATASET_VERSION_TAG = "opsdeck.dataset_version"
SCHEDULE_TAG = "opsdeck.schedule"
# What Azure ML schedules accept (Windows names) for the time zones the page offers.
AZURE_TIME_ZONES = {
    "UTC": "UTC",
    "Europe/London": "GMT Standard Time",
    "Europe/Paris": "Romance Standard Time",
    "Europe/Berlin": "W. Europe Standard Time",
    "America/New_York": "Eastern Standard Time",
    "America/Chicago": "Central Standard Time",
    "America/Los_Angeles": "Pacific Standard Time",
    "Asia/Kolkata": "India Standard Time",
    "Asia/Singapore": "Singapore Standard Time",
    "Asia/Tokyo": "Tokyo Standard Time",
    "Australia/Sydney": "AUS Eastern Standard Time",
}
STEP_STATES = {
    "NotStarted": "NotStarted",
    "Starting": "Queued",
    "Provisioning": "Queued",
    "Preparing": "Queued",
    "Queued": "Queued",
    "Running": "Running",
    "Finalizing": "Running",
    "CancelRequested": "Running",
    "Completed": "Completed",
    "Failed": "Failed",
    "NotResponding": "Failed",
    "Canceled": "Canceled",
}
_SPEC_FIELDS = {f.name for f in fields(PipelineSpec)}
_SCHEDULE_KEYS = ("kind", "cron", "frequency", "interval", "at_time", "time_zone", "parameters")


def spec_from_tags(tags: dict[str, str]) -> PipelineSpec | None:
    try:
        data = json.loads(tags.get(SPEC_TAG, ""))
    except ValueError:
        return None
    return PipelineSpec(**{k: v for k, v in data.items() if k in _SPEC_FIELDS})


def azure_trigger(schedule: Schedule) -> CronTrigger | RecurrenceTrigger:
    """The JobSchedule trigger of a checked time schedule."""
    zone = AZURE_TIME_ZONES.get(schedule.time_zone)
    if zone is None:
        raise ParameterError(
            "time_zone",
            f"Azure ML schedules take one of {', '.join(AZURE_TIME_ZONES)} here.",
        )
    # Azure reads start and end as wall-clock times in the trigger's own time zone.
    local = ZoneInfo(schedule.time_zone)
    window = {
        "start_time": schedule.start.astimezone(local).replace(tzinfo=None)
        if schedule.start
        else None,
        "end_time": schedule.end.astimezone(local).replace(tzinfo=None) if schedule.end else None,
        "time_zone": zone,
    }
    if schedule.kind == "cron":
        return CronTrigger(expression=schedule.cron, **window)
    pattern = None
    if schedule.at_time:
        hour, minute = (int(x) for x in schedule.at_time.split(":"))
        hours = list(range(24)) if schedule.frequency == "hour" else [hour]
        pattern = RecurrencePattern(hours=hours, minutes=[minute])
    return RecurrenceTrigger(
        frequency=schedule.frequency, interval=schedule.interval, schedule=pattern, **window
    )


def _wall_clock(value: Any, zone: ZoneInfo) -> datetime | None:
    """A trigger's start or end (text or datetime, wall clock in `zone`) as an aware datetime."""
    if not value:
        return None
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=zone)


class AzurePipelines:
    """PipelineService over `ml_client.components`, `jobs`, `batch_endpoints` and `schedules`."""

    def __init__(self, ml_client: MLClientSource, datasets: AzureDatasets) -> None:
        self.ml_client = ml_client
        self.datasets = datasets

    # --- definitions -----------------------------------------------------------------------

    def _tokens(self, spec: PipelineSpec, version: int | None) -> str:
        """The split step's missing-value tokens: those the dataset version was registered
        with (a run of the newest version uses the newest now). Reads the version first, so an
        unreadable file or a missing target fails here rather than on the cluster."""
        frame = self.datasets.load(spec.dataset, version)
        if spec.target not in frame.columns:
            raise ParameterError("target", f"{spec.target!r} is not a column of {spec.dataset}.")
        return encode_tokens(self.datasets.missing_tokens(spec.dataset, version))

    def _job(self, name: str, spec: PipelineSpec, version: int | None = None) -> Any:
        version = version if version is not None else spec.dataset_version
        return pipeline_job(
            name,
            spec,
            dataset_input(spec.dataset, version),
            missing_tokens=self._tokens(spec, version),
            model_name=spec.model_name or model_name_for(spec.dataset, spec.target),
            sheet=encode_sheet(self.datasets.sheet(spec.dataset, version)),
        )

    def _to_pipeline(self, entity: Any, latest: int) -> Pipeline:
        tags = dict(entity.tags or {})
        spec = spec_from_tags(tags)
        if spec is None:
            raise WorkspaceError(f"Component {entity.name} is not an opsdeck pipeline.")
        published = self._published(entity.name)
        return Pipeline(
            name=entity.name,
            version=int(entity.version),
            spec=spec,
            created=created_at(entity),
            description=entity.description or "",
            latest_version=latest,
            published_version=published[0] if published else None,
            rest_endpoint=published[1] if published else "",
        )

    def _versions(self, name: str) -> list[Any]:
        with azure_call(f"list pipeline {name}"):
            entities = list(self.ml_client().components.list(name=name))
        mine = [e for e in entities if SPEC_TAG in (e.tags or {})]
        return sorted(mine, key=lambda e: int(e.version), reverse=True)

    def save(self, name: str, spec: PipelineSpec, description: str = "") -> Pipeline:
        name = validate_pipeline_name(name)
        check_spec(spec)
        self.datasets.get(spec.dataset, spec.dataset_version)
        job = self._job(name, spec)
        versions = self._versions(name)
        if versions:
            latest = versions[0]
            same = spec_from_tags(dict(latest.tags or {})) == spec
            if same and (latest.description or "") == description.strip():
                return self._to_pipeline(latest, int(latest.version))
        version = int(versions[0].version) + 1 if versions else 1
        component = job.component
        component.name, component.version = name, str(version)
        component.description = description.strip()
        component.tags = {SPEC_TAG: json.dumps(asdict(spec), sort_keys=True), PIPELINE_TAG: name}
        with azure_call(f"register pipeline {name} v{version}"):
            self.ml_client().components.create_or_update(component)
        return self.get(name, version)

    def list(self) -> list[Pipeline]:
        with azure_call("list components"):
            containers = list(self.ml_client().components.list())
        pipelines = []
        for container in containers:
            versions = self._versions(container.name)
            if versions:
                pipelines.append(self._to_pipeline(versions[0], int(versions[0].version)))
        return sorted(pipelines, key=lambda p: p.name)

    def get(self, name: str, version: int | None = None) -> Pipeline:
        versions = self._versions(name)
        if not versions:
            raise WorkspaceError(f"Pipeline {name} does not exist.")
        latest = int(versions[0].version)
        chosen = [e for e in versions if version is None or int(e.version) == int(version)]
        if not chosen:
            raise WorkspaceError(f"Pipeline {name} has no version {version}.")
        return self._to_pipeline(chosen[0], latest)

    def versions(self, name: str) -> list[Pipeline]:
        versions = self._versions(name)
        return [self._to_pipeline(e, int(versions[0].version)) for e in versions]

    def delete(self, name: str) -> None:
        self.get(name)
        for schedule in self.schedules(name):
            self.delete_schedule(schedule.name)
        if self._published(name):
            self.unpublish(name)
        with azure_call(f"archive pipeline {name}"):
            self.ml_client().components.archive(name=name)

    # --- runs ------------------------------------------------------------------------------

    def run(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        trigger: str = "manual",
        experiment: str = "",
        version: int | None = None,
    ) -> PipelineRun:
        pipeline = self.get(name, version)
        parameters = dict(parameters or {})
        spec = apply_parameters(pipeline.spec, parameters)
        if experiment and "experiment_name" not in parameters:
            spec = replace(spec, experiment_name=experiment)
        check_spec(spec)
        # "Latest" is resolved now, when the run starts, and recorded on the run.
        dataset_version = spec.dataset_version or self.datasets.get(spec.dataset).version
        job = self._job(name, spec, dataset_version)
        job.display_name = f"{name} ({trigger})"
        job.tags = {
            PIPELINE_TAG: name,
            VERSION_TAG: str(pipeline.version),
            TRIGGER_TAG: trigger,
            PARAMETERS_TAG: json.dumps(parameters),
            DATASET_VERSION_TAG: str(dataset_version),
        }
        with azure_call(f"submit pipeline {name}"):
            created = self.ml_client().jobs.create_or_update(
                job, experiment_name=spec.experiment_name
            )
        return self._to_run(created, [])

    def _step(self, name: str, child: Any | None, run_state: str) -> PipelineStep:
        if child is None:
            ended = run_state in ("Completed", "Failed", "Canceled")
            return PipelineStep(name, "Skipped" if ended else "NotStarted")
        tags = dict(child.tags or {})
        props = dict(child.properties or {})
        outputs: dict[str, Any] = {}
        state = STEP_STATES.get(wire_text(child.status), "Running")
        if name == "automl":
            outputs["automl_job"] = str(child.name)
        for tag, key in (
            ("opsdeck.gate", "gate"),
            ("opsdeck.model", None),
            ("opsdeck.deploy", None),
        ):
            if tag in tags:
                value = json.loads(tags[tag])
                outputs.update({key: value} if key else value)
        if name == "deploy" and "skipped" in outputs:
            state = "Skipped"
        return PipelineStep(
            name=name,
            state=state,
            started=parse_time(props.get("StartTimeUtc")),
            ended=parse_time(props.get("EndTimeUtc")),
            outputs=outputs,
            job_id=str(child.name),
        )

    def _to_run(self, entity: Any, children: list[Any]) -> PipelineRun:
        tags = dict(entity.tags or {})
        status = wire_text(entity.status)
        state = JOB_STATES.get(status, status or "Unknown")
        by_name = {c.display_name: c for c in children}
        steps = [self._step(step, by_name.get(step), state) for step in PIPELINE_STEPS]
        outputs: dict[str, Any] = {"dataset_version": int(tags.get(DATASET_VERSION_TAG, 0) or 0)}
        for step in steps:
            outputs.update(step.outputs)
        props = dict(entity.properties or {})
        try:
            parameters = json.loads(tags.get(PARAMETERS_TAG, "{}"))
        except ValueError:
            parameters = {}
        return PipelineRun(
            id=str(entity.name),
            pipeline=tags.get(PIPELINE_TAG, ""),
            state=state,
            created=created_at(entity),
            steps=steps,
            pipeline_version=int(tags.get(VERSION_TAG, 0) or 0),
            trigger=tags.get(TRIGGER_TAG, "manual"),
            experiment=entity.experiment_name or "",
            parameters=parameters,
            started=parse_time(props.get("StartTimeUtc")),
            ended=parse_time(props.get("EndTimeUtc")),
            error=next((f"Step {s.name} failed." for s in steps if s.state == "Failed"), None),
            outputs=outputs,
        )

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[PipelineRun]:
        with azure_call("list pipeline runs"):
            entities = list(self.ml_client().jobs.list())
        mine = [
            e
            for e in entities
            if wire_text(e.type) == "pipeline"
            and PIPELINE_TAG in (e.tags or {})
            and (pipeline is None or e.tags[PIPELINE_TAG] == pipeline)
        ]
        return [self._to_run(e, []) for e in mine[:limit]]

    def get_run(self, run_id: str) -> PipelineRun:
        ml = self.ml_client()
        with azure_call(f"get pipeline run {run_id}", not_found=f"No pipeline run {run_id}."):
            entity = ml.jobs.get(run_id)
            children = list(ml.jobs.list(parent_job_name=run_id))
        return self._to_run(entity, children)

    def cancel_run(self, run_id: str) -> PipelineRun:
        with azure_call(f"cancel pipeline run {run_id}"):
            self.ml_client().jobs.begin_cancel(run_id)
        return self.get_run(run_id)

    def step_log(self, run_id: str, step: str, lines: int = 80) -> str:
        run = self.get_run(run_id)
        found = next((s for s in run.steps if s.name == step), None)
        if found is None or not found.job_id:
            return ""
        return f"The log of step {step} is in Azure ML studio (child job {found.job_id})."

    # --- publishing ------------------------------------------------------------------------

    @staticmethod
    def endpoint_name(name: str) -> str:
        return endpoint_name_for(name)

    def _published(self, name: str) -> tuple[int, str] | None:
        """(published version, scoring URI) of the pipeline's batch endpoint, if any."""
        try:
            endpoint = self.ml_client().batch_endpoints.get(self.endpoint_name(name))
        except ResourceNotFoundError:
            return None
        defaults = endpoint.defaults
        deployment = (
            defaults.get("deployment_name")
            if isinstance(defaults, dict)
            else getattr(defaults, "deployment_name", "")
        ) or ""
        if not deployment.startswith("v") or not deployment[1:].isdigit():
            return None
        return int(deployment[1:]), endpoint.scoring_uri or ""

    def publish(self, name: str) -> Pipeline:
        pipeline = self.get(name)
        problems = azure_spec_problems(pipeline.spec)
        if problems:
            raise WorkspaceError(" ".join(problems))
        endpoint_name = self.endpoint_name(name)
        deployment_name = f"v{pipeline.version}"
        ml = self.ml_client()

        def endpoint(default: str | None = None) -> BatchEndpoint:
            return BatchEndpoint(
                name=endpoint_name,
                description=f"opsdeck pipeline {name}",
                tags={PIPELINE_TAG: name},
                defaults={"deployment_name": default} if default else None,
            )

        with azure_call(f"create batch endpoint {endpoint_name}"):
            try:
                ml.batch_endpoints.get(endpoint_name)
            except ResourceNotFoundError:
                ml.batch_endpoints.begin_create_or_update(endpoint()).result()
        with azure_call(f"deploy pipeline {name} v{pipeline.version}"):
            component = ml.components.get(name=name, version=str(pipeline.version))
            ml.batch_deployments.begin_create_or_update(
                PipelineComponentBatchDeployment(
                    name=deployment_name,
                    endpoint_name=endpoint_name,
                    component=component,
                    settings={
                        "default_compute": pipeline.spec.compute,
                        "continue_on_step_failure": False,
                    },
                    tags={PIPELINE_TAG: name, VERSION_TAG: str(pipeline.version)},
                )
            ).result()
            # Calls that name no deployment run the newly published version.
            ml.batch_endpoints.begin_create_or_update(endpoint(deployment_name)).result()
        return self.get(name)

    def unpublish(self, name: str) -> None:
        with azure_call(f"delete batch endpoint of {name}"):
            self.ml_client().batch_endpoints.begin_delete(name=self.endpoint_name(name)).result()

    def keys(self, name: str) -> tuple[str, str]:
        raise WorkspaceError(
            "Pipelines published on Azure ML are called with an Azure AD token, not keys."
        )

    def regenerate_key(self, name: str, which: str = "primary") -> tuple[str, str]:
        return self.keys(name)

    # --- schedules -------------------------------------------------------------------------

    def set_schedule(self, schedule: Schedule) -> Schedule:
        schedule = check_schedule(schedule)
        if schedule.kind == "data":
            raise ParameterError(
                "kind",
                "Azure ML schedules are time based (cron or recurrence); data triggers run on "
                "the local workspace's agent.",
            )
        pipeline = self.get(schedule.pipeline)
        spec = check_spec(apply_parameters(pipeline.spec, schedule.parameters))
        # No pinned version: each scheduled run reads the newest one when it starts.
        job = self._job(pipeline.name, spec, spec.dataset_version)
        label = f"schedule:{schedule.name}"
        job.display_name = f"{pipeline.name} ({label})"
        job.tags = {
            PIPELINE_TAG: pipeline.name,
            VERSION_TAG: str(pipeline.version),
            TRIGGER_TAG: label,
            PARAMETERS_TAG: json.dumps(schedule.parameters),
        }
        config = {k: getattr(schedule, k) for k in _SCHEDULE_KEYS}
        entity = JobSchedule(
            name=schedule.name,
            trigger=azure_trigger(schedule),
            create_job=job,
            display_name=schedule.trigger,
            tags={
                PIPELINE_TAG: pipeline.name,
                SCHEDULE_TAG: json.dumps(config),
            },
        )
        ml = self.ml_client()
        with azure_call(f"create schedule {schedule.name}"):
            ml.schedules.begin_create_or_update(entity).result()
            if not schedule.enabled:
                ml.schedules.begin_disable(name=schedule.name).result()
        return self._get_schedule(schedule.name)

    def _to_schedule(self, entity: Any) -> Schedule | None:
        tags = dict(entity.tags or {})
        if SCHEDULE_TAG not in tags:
            return None
        config = json.loads(tags[SCHEDULE_TAG])
        trigger = entity.trigger
        zone = ZoneInfo(config.get("time_zone", "UTC"))
        start, end = (
            _wall_clock(getattr(trigger, attr, None), zone) for attr in ("start_time", "end_time")
        )
        schedule = Schedule(
            name=entity.name,
            pipeline=tags.get(PIPELINE_TAG, ""),
            trigger="",
            enabled=bool(entity.is_enabled),
            start=start,
            end=end,
            created=created_at(entity),
            **{k: v for k, v in config.items() if k in _SCHEDULE_KEYS},
        )
        schedule = check_schedule(schedule)
        return replace(schedule, next_run=next_fire(schedule))

    def _get_schedule(self, name: str) -> Schedule:
        with azure_call(f"get schedule {name}", not_found=f"Schedule {name} does not exist."):
            entity = self.ml_client().schedules.get(name)
        schedule = self._to_schedule(entity)
        if schedule is None:
            raise WorkspaceError(f"Schedule {name} was not made by opsdeck.")
        return schedule

    def schedules(self, pipeline: str | None = None) -> list[Schedule]:
        with azure_call("list schedules"):
            entities = list(self.ml_client().schedules.list())
        found = [s for e in entities if (s := self._to_schedule(e)) is not None]
        return sorted(
            (s for s in found if pipeline is None or s.pipeline == pipeline), key=lambda s: s.name
        )

    def enable_schedule(self, name: str, enabled: bool) -> Schedule:
        ops = self.ml_client().schedules
        with azure_call(f"{'enable' if enabled else 'disable'} schedule {name}"):
            (ops.begin_enable if enabled else ops.begin_disable)(name=name).result()
        return self._get_schedule(name)

    def delete_schedule(self, name: str) -> None:
        ops = self.ml_client().schedules
        with azure_call(f"delete schedule {name}"):
            # Azure deletes only disabled schedules.
            ops.begin_disable(name=name).result()
            ops.begin_delete(name=name).result()

    # --- agent -----------------------------------------------------------------------------

    def agent(self) -> PipelineAgent:
        """Azure runs schedules and published pipelines itself: nothing to keep alive here."""
        return PipelineAgent("Managed", url="Azure ML")
