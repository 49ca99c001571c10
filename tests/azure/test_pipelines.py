"""Azure pipelines offline at the MLClient boundary: definitions as pipeline components, runs as
pipeline jobs with child steps, publishing on a batch endpoint, JobSchedules.

The fakes below take and return real SDK entities: what they receive is validated and
serialized to REST by the SDK itself, and what they return is rebuilt from REST objects.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml._restclient.arm_ml_service.models import SystemData
from azure.ai.ml.entities import (
    BatchEndpoint,
    CommandJob,
    Component,
    Job,
    JobSchedule,
    PipelineComponentBatchDeployment,
    PipelineJob,
)
from azure.core.exceptions import ResourceNotFoundError
from azure.core.polling import LROPoller

from lib.azure.pipelines import AzurePipelines
from lib.azure.pipelines.service import SPEC_TAG, azure_trigger
from lib.azure.pipelines.steps.split import decode_sheet, decode_tokens
from lib.pipeline_rules import ParameterError
from lib.tabular import MISSING_TOKENS
from lib.workspace import PipelineService, PipelineSpec, Schedule, WorkspaceError
from tests.support.azure_fakes import (
    ARM_WORKSPACE,
    LOCATION,
    Clock,
    FakeMLClient,
    ScriptedPolling,
    http_error,
)
from tests.support.azure_fakes_automl import bank_csv

SPEC = PipelineSpec(
    dataset="bank",
    target="y",
    compute="cpu-cluster",
    time_budget_s=900,
    deploy_endpoint="bank-ep",
    gate_margin=0.002,
)


def done(result: Any = None) -> LROPoller:
    return LROPoller(None, None, lambda x: x, ScriptedPolling(lambda: result))


class FakeComponents:
    """`ml_client.components`: registered pipeline components by name and version."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.versions: dict[str, dict[str, Component]] = {}
        self.archived: list[str] = []

    def create_or_update(self, component: Component) -> Component:
        assert component.name and component.version, "register with a name and a version"
        result = component._validate()
        assert result.passed, result.error_messages
        component._to_rest_object()  # serializes as the SDK would send it
        if component.version in self.versions.get(component.name, {}):
            raise http_error("A component version cannot change once created.", 409)
        component._creation_context = type("C", (), {"created_at": self.clock()})()
        self.versions.setdefault(component.name, {})[component.version] = component
        return component

    def list(self, name: str | None = None, **_: Any) -> list[Component]:
        if name is None:
            return [
                list(v.values())[-1] for n, v in self.versions.items() if n not in self.archived
            ]
        return list(reversed(self.versions.get(name, {}).values()))

    def get(self, name: str, version: str | None = None, **_: Any) -> Component:
        versions = self.versions.get(name) or {}
        if version is None and versions:
            return list(versions.values())[-1]
        if version not in versions:
            raise ResourceNotFoundError(f"Component {name}:{version} not found.")
        return versions[version]

    def archive(self, name: str, **_: Any) -> None:
        self.archived.append(name)


class FakePipelineJobs:
    """`ml_client.jobs` for pipeline jobs and their child jobs."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.entities: dict[str, Job] = {}
        self.children: dict[str, list[Job]] = {}
        self.received: list[tuple[PipelineJob, str]] = []
        self.canceled: list[str] = []
        self._names = (f"keen_lynx_{n:04d}" for n in range(1, 1000))

    def _store(self, job: Job, name: str, status: str, tags: dict | None = None) -> Job:
        rest = job._to_rest_object()
        rest.name = name
        rest.id = f"{ARM_WORKSPACE}/jobs/{name}"
        rest.system_data = SystemData(created_at=self.clock())
        rest.properties.status = status
        if tags is not None:
            rest.properties.tags = tags
        return Job._from_rest_object(rest)

    def create_or_update(self, job: PipelineJob, *, experiment_name: str = "", **_: Any) -> Job:
        result = job._validate()
        assert result.passed, result.error_messages
        job.experiment_name = experiment_name or job.experiment_name
        self.received.append((job, experiment_name))
        name = next(self._names)
        self.entities[name] = self._store(job, name, "NotStarted")
        return self.entities[name]

    def get(self, name: str, **_: Any) -> Job:
        if name not in self.entities:
            raise ResourceNotFoundError(f"Job {name} was not found.")
        return self.entities[name]

    def list(self, *, parent_job_name: str | None = None, **_: Any) -> list[Job]:
        if parent_job_name is not None:
            return list(self.children.get(parent_job_name, []))
        return list(reversed(self.entities.values()))

    def begin_cancel(self, name: str, **_: Any) -> LROPoller:
        self.canceled.append(name)
        self.set_status(name, "Canceled")
        return done()

    def set_status(self, name: str, status: str) -> None:
        self.entities[name] = self._store(self.entities[name], name, status)

    def add_child(self, parent: str, step: str, status: str, tags: dict | None = None) -> None:
        """A child job of a pipeline run, as the service lists it (test setup)."""
        child = CommandJob(
            command="echo", environment="azureml:x:1", display_name=step, compute="cpu-cluster"
        )
        entity = self._store(child, f"{parent}_{step}", status, tags=tags)
        self.children.setdefault(parent, []).append(entity)


class FakeBatchEndpoints:
    def __init__(self) -> None:
        self.entities: dict[str, BatchEndpoint] = {}
        self.deleted: list[str] = []

    def get(self, name: str, **_: Any) -> BatchEndpoint:
        if name not in self.entities:
            raise ResourceNotFoundError(f"Batch endpoint {name} not found.")
        return self.entities[name]

    def begin_create_or_update(self, endpoint: BatchEndpoint, **_: Any) -> LROPoller:
        rest = endpoint._to_rest_batch_endpoint(LOCATION)
        rest.name = endpoint.name
        rest.properties.scoring_uri = (
            f"https://{endpoint.name}.{LOCATION}.inference.ml.azure.com/jobs"
        )
        self.entities[endpoint.name] = BatchEndpoint._from_rest_object(rest)
        return done(self.entities[endpoint.name])

    def begin_delete(self, name: str, **_: Any) -> LROPoller:
        self.get(name)
        del self.entities[name]
        self.deleted.append(name)
        return done()


class FakeBatchDeployments:
    def __init__(self, endpoints: FakeBatchEndpoints, components: FakeComponents) -> None:
        self.endpoints = endpoints
        self.components = components
        self.received: list[PipelineComponentBatchDeployment] = []

    def begin_create_or_update(self, deployment: PipelineComponentBatchDeployment, **_: Any):
        self.endpoints.get(deployment.endpoint_name)  # the endpoint must exist first
        component = deployment.component
        self.components.get(component.name, component.version)  # and the component
        deployment._to_rest_object(location=LOCATION)
        self.received.append(deployment)
        return done(deployment)


class FakeSchedules:
    def __init__(self) -> None:
        self.entities: dict[str, JobSchedule] = {}
        self.received: list[JobSchedule] = []

    def begin_create_or_update(self, schedule: JobSchedule, **_: Any) -> LROPoller:
        rest = schedule._to_rest_object()
        rest.name = schedule.name
        rest.properties.is_enabled = True
        rest.system_data = SystemData(created_at=datetime(2025, 1, 1, tzinfo=UTC))
        self.received.append(schedule)
        self.entities[schedule.name] = JobSchedule._from_rest_object(rest)
        return done(self.entities[schedule.name])

    def _set(self, name: str, enabled: bool) -> LROPoller:
        self.get(name)._is_enabled = enabled
        return done()

    def begin_enable(self, name: str, **_: Any) -> LROPoller:
        return self._set(name, True)

    def begin_disable(self, name: str, **_: Any) -> LROPoller:
        return self._set(name, False)

    def get(self, name: str, **_: Any) -> JobSchedule:
        if name not in self.entities:
            raise ResourceNotFoundError(f"Schedule {name} not found.")
        return self.entities[name]

    def list(self, **_: Any) -> list[JobSchedule]:
        return list(self.entities.values())

    def begin_delete(self, name: str, **_: Any) -> LROPoller:
        if self.get(name).is_enabled:
            raise http_error("Only a disabled schedule can be deleted.", 400)
        del self.entities[name]
        return done()


@pytest.fixture
def pipelines(fake_client: FakeMLClient, datasets) -> AzurePipelines:  # noqa: ANN001
    clock = Clock()
    fake_client.components = FakeComponents(clock)
    fake_client.jobs = FakePipelineJobs(clock)
    fake_client.batch_endpoints = FakeBatchEndpoints()
    fake_client.batch_deployments = FakeBatchDeployments(
        fake_client.batch_endpoints, fake_client.components
    )
    fake_client.schedules = FakeSchedules()
    return AzurePipelines(fake_client, datasets)


def test_implements_the_protocol(pipelines: AzurePipelines) -> None:
    assert isinstance(pipelines, PipelineService)


def test_save_registers_a_versioned_pipeline_component(pipelines, fake_client) -> None:
    first = pipelines.save("retrain", SPEC, "nightly retrain")
    assert (first.name, first.version, first.latest_version) == ("retrain", 1, 1)
    assert first.spec == SPEC and first.description == "nightly retrain"
    assert pipelines.save("retrain", SPEC, "nightly retrain").version == 1  # unchanged
    second = pipelines.save("retrain", PipelineSpec(**{**SPEC.__dict__, "time_budget_s": 1800}))
    assert second.version == 2
    assert [p.version for p in pipelines.versions("retrain")] == [2, 1]
    assert [p.name for p in pipelines.list()] == ["retrain"]
    component = fake_client.components.get("retrain", "2")
    assert json.loads(component.tags[SPEC_TAG])["time_budget_s"] == 1800
    # The dsl pipeline: one node per opsdeck step, the AutoML node between split and register.
    nodes = {node.display_name: node for node in component.jobs.values()}
    assert list(nodes) == ["dataset", "automl", "register", "gate", "deploy"]
    assert nodes["automl"].type == "automl"
    assert nodes["automl"].limits.timeout_minutes == 30
    # AutoML trains on the split's train rows and validates on the holdout the gate scores on.
    for port, bound in (
        ("train", nodes["automl"].training_data),
        ("valid", nodes["automl"].validation_data),
        ("valid", nodes["gate"].inputs.valid._data),
    ):
        assert (bound._port_name, bound._owner.display_name) == (port, "dataset")
    assert nodes["deploy"].inputs.decision._data._owner.display_name == "gate"
    # The split step reads with opsdeck's own reader, shipped in its code snapshot, with the
    # missing-value tokens the dataset version was registered with (here: the defaults).
    split_node = nodes["dataset"]
    assert decode_tokens(split_node.inputs.missing_tokens._data) == list(MISSING_TOKENS)
    assert decode_sheet(split_node.inputs.sheet._data) is None
    code = Path(str(split_node.component.code))
    assert (code / "split.py").is_file() and (code / "lib" / "tabular" / "reading.py").is_file()


def test_a_run_splits_with_the_tokens_of_the_version_it_reads(
    pipelines, fake_client, datasets
) -> None:
    pipelines.save("retrain", SPEC)
    first = bank_csv()
    more = first + first.splitlines(keepends=True)[-1]  # one more row: a new version
    datasets.upload("bank", more, "bank.csv", "v2", missing_tokens=["", "unknown"])
    pipelines.run("retrain", {}, trigger="manual")
    job, _experiment = fake_client.jobs.received[-1]
    assert job.inputs["dataset"]._data.path == "azureml:bank:2"
    split_node = next(n for n in job.jobs.values() if n.display_name == "dataset")
    assert decode_tokens(split_node.inputs.missing_tokens._data) == ["", "unknown"]


def test_a_run_reads_the_sheet_its_version_was_registered_from(
    pipelines, fake_client, datasets
) -> None:
    import io

    import openpyxl
    import pandas as pd

    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active.append(["about", "this"])
    book.active.append(["a", "b"])
    bank = book.create_sheet("Bank 2024")
    frame = pd.read_csv(io.BytesIO(bank_csv()), sep=None, engine="python").head(40)
    bank.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        bank.append(list(row))
    saved = io.BytesIO()
    book.save(saved)
    datasets.upload("bank", saved.getvalue(), "bank.xlsx", "v2", sheet="Bank 2024")
    pipelines.save("retrain", SPEC)
    pipelines.run("retrain", {}, trigger="manual")
    job, _experiment = fake_client.jobs.received[-1]
    split_node = next(n for n in job.jobs.values() if n.display_name == "dataset")
    assert decode_sheet(split_node.inputs.sheet._data) == "Bank 2024"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"compute": "local"}, "compute cluster"),
        ({"primary_metric": "f1_score_weighted"}, "cannot be the primary metric"),
        ({"validation": "cv"}, "holdout validation"),
        ({"target": "nope"}, "not a column"),
    ],
)
def test_save_refuses_what_azure_cannot_run(pipelines, changes, words) -> None:
    with pytest.raises(WorkspaceError, match=words):
        pipelines.save("retrain", PipelineSpec(**{**SPEC.__dict__, **changes}))
    with pytest.raises(WorkspaceError, match="lower-case"):
        pipelines.save("Retrain", SPEC)


def test_run_submits_a_pipeline_job_and_lists_its_steps(pipelines, fake_client) -> None:
    pipelines.save("retrain", SPEC)
    run = pipelines.run(
        "retrain", {"time_budget_s": 1200, "gate_margin": 0.01}, trigger="manual", experiment="exp"
    )
    job, experiment = fake_client.jobs.received[-1]
    assert experiment == "exp"
    assert job.inputs["dataset"]._data.path == "azureml:bank:1"  # latest resolved at start
    assert job.inputs["gate_margin"]._data == 0.01
    assert job.settings.default_compute == "cpu-cluster"
    automl_node = next(n for n in job.jobs.values() if n.display_name == "automl")
    assert automl_node.limits.timeout_minutes == 20
    assert (run.pipeline, run.trigger, run.state, run.experiment) == (
        "retrain",
        "manual",
        "Queued",
        "exp",
    )
    assert run.parameters == {"time_budget_s": 1200, "gate_margin": 0.01}
    assert run.outputs["dataset_version"] == 1
    with pytest.raises(ParameterError) as caught:
        pipelines.run("retrain", {"time_budget": 10})
    assert caught.value.field == "time_budget"

    jobs = fake_client.jobs
    jobs.set_status(run.id, "Running")
    jobs.add_child(run.id, "dataset", "Completed")
    jobs.add_child(run.id, "automl", "Completed")
    jobs.add_child(
        run.id,
        "register",
        "Completed",
        {"opsdeck.model": '{"model_name": "bank-y", "model_version": 3}'},
    )
    gate = {
        "decision": "keep",
        "reason": "r",
        "metric": "AUC_weighted",
        "challenger": 0.91,
        "champion": 0.93,
        "margin": 0.01,
        "champion_model": "bank-y v2",
        "rows": 6590,
    }
    jobs.add_child(run.id, "gate", "Completed", {"opsdeck.gate": json.dumps(gate)})
    jobs.add_child(run.id, "deploy", "Running")
    detail = pipelines.get_run(run.id)
    assert [s.state for s in detail.steps] == [
        "Completed",
        "Completed",
        "Completed",
        "Completed",
        "Running",
    ]
    assert detail.outputs["model_version"] == 3 and detail.outputs["gate"]["champion"] == 0.93
    assert detail.steps[1].outputs["automl_job"] == f"{run.id}_automl"
    jobs.children[run.id].pop()
    jobs.add_child(run.id, "deploy", "Completed", {"opsdeck.deploy": '{"skipped": "kept"}'})
    jobs.set_status(run.id, "Completed")
    assert pipelines.get_run(run.id).steps[-1].state == "Skipped"
    assert [r.id for r in pipelines.runs("retrain")] == [run.id]
    assert pipelines.runs("other") == []

    second = pipelines.run("retrain")
    canceled = pipelines.cancel_run(second.id)
    assert canceled.state == "Canceled" and jobs.canceled == [second.id]
    # Steps a canceled run never reached are Skipped.
    assert {s.state for s in canceled.steps} == {"Skipped"}


def test_publish_deploys_the_component_on_a_batch_endpoint(pipelines, fake_client) -> None:
    pipelines.save("retrain", SPEC)
    published = pipelines.publish("retrain")
    assert published.published_version == 1
    assert published.rest_endpoint == f"https://retrain.{LOCATION}.inference.ml.azure.com/jobs"
    deployment = fake_client.batch_deployments.received[-1]
    assert (deployment.name, deployment.endpoint_name) == ("v1", "retrain")
    assert deployment.component.version == "1"
    assert deployment.settings["default_compute"] == "cpu-cluster"
    pipelines.save("retrain", PipelineSpec(**{**SPEC.__dict__, "gate_margin": 0.0}))
    assert pipelines.get("retrain").published_version == 1  # until published again
    assert pipelines.publish("retrain").published_version == 2
    with pytest.raises(WorkspaceError, match="Azure AD"):
        pipelines.keys("retrain")
    pipelines.unpublish("retrain")
    assert pipelines.get("retrain").published_version is None


def test_schedules_are_job_schedules(pipelines, fake_client) -> None:
    pipelines.save("retrain", SPEC)
    start = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    saved = pipelines.set_schedule(
        Schedule(
            name="weekday-mornings",
            pipeline="retrain",
            trigger="",
            enabled=True,
            kind="cron",
            cron="0 6 * * 1-5",
            time_zone="Europe/Paris",
            start=start,
            parameters={"time_budget_s": 1200},
        )
    )
    entity = fake_client.schedules.received[-1]
    rest_trigger = entity._to_rest_object().properties.trigger
    assert (rest_trigger.expression, rest_trigger.time_zone) == (
        "0 6 * * 1-5",
        "Romance Standard Time",
    )
    job = entity.create_job
    assert job.inputs["dataset"]._data.path == "azureml:bank@latest"  # newest at each fire
    assert job.tags["opsdeck.trigger"] == "schedule:weekday-mornings"
    assert saved.trigger == "cron 0 6 * * 1-5 (Europe/Paris)"
    assert saved.parameters == {"time_budget_s": 1200} and saved.enabled
    assert saved.next_run is not None and saved.next_run.weekday() < 5

    every = pipelines.set_schedule(
        Schedule(
            name="six-hourly",
            pipeline="retrain",
            trigger="",
            enabled=False,
            frequency="hour",
            interval=6,
            at_time="00:30",
        )
    )
    assert every.enabled is False and every.next_run is None
    recurrence = fake_client.schedules.received[-1]._to_rest_object().properties.trigger
    assert (recurrence.frequency, recurrence.interval) == ("hour", 6)
    assert recurrence.schedule.minutes == [30]
    assert [s.name for s in pipelines.schedules("retrain")] == ["six-hourly", "weekday-mornings"]
    assert pipelines.enable_schedule("six-hourly", True).enabled
    pipelines.delete_schedule("six-hourly")  # disabled first: Azure deletes only disabled ones
    assert [s.name for s in pipelines.schedules()] == ["weekday-mornings"]

    with pytest.raises(ParameterError) as caught:
        pipelines.set_schedule(
            Schedule(
                name="on-data",
                pipeline="retrain",
                trigger="",
                enabled=True,
                kind="data",
                dataset="bank",
            )
        )
    assert caught.value.field == "kind"
    with pytest.raises(ParameterError) as caught:
        azure_trigger(
            Schedule(name="x", pipeline="p", trigger="", enabled=True, time_zone="Africa/Nairobi")
        )
    assert caught.value.field == "time_zone"


def test_delete_removes_schedules_publication_and_archives(pipelines, fake_client) -> None:
    pipelines.save("retrain", SPEC)
    pipelines.publish("retrain")
    pipelines.set_schedule(
        Schedule(name="daily", pipeline="retrain", trigger="", enabled=True, frequency="day")
    )
    pipelines.delete("retrain")
    assert fake_client.schedules.entities == {}
    assert fake_client.batch_endpoints.deleted == ["retrain"]
    assert fake_client.components.archived == ["retrain"]
    assert pipelines.agent().state == "Managed"
