"""A pipeline run's steps in order, against fake AutoML, registry and endpoints services.

The datasets are real (the local store); the AutoML job, the registry and the endpoints are
scripted fakes so that each step's success and failure path runs in milliseconds. The whole
run through the real job runner and FLAML is in `test_pipeline_loop.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lib.audit import AuditLog
from lib.errors import WorkspaceError
from lib.local.datasets import LocalDatasets
from lib.local.pipelines import gate as gate_module
from lib.local.pipelines import run as run_module
from lib.local.pipelines.gate import GateDecision
from lib.local.pipelines.run import RunExecution, StepFailed
from lib.local.pipelines.store import PipelineStore
from lib.local.store import Store
from lib.settings import load_settings
from lib.workspace import AutoMLRequest, Endpoint, Job, Model, PipelineSpec, Workspace

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CSV = b"x,y\n" + b"".join(f"{i},{'yes' if i % 3 else 'no'}\n".encode() for i in range(60))


@dataclass
class FakeAutoML:
    states: list[str] = field(default_factory=lambda: ["Queued", "Running", "Completed"])
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    submitted: list[AutoMLRequest] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)

    def validate(self, request: AutoMLRequest) -> list[str]:
        return list(self.problems)

    def submit(self, request: AutoMLRequest) -> Job:
        self.submitted.append(request)
        return self.get("automl-1")

    def get(self, job_id: str) -> Job:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if job_id in self.canceled:
            state = "Canceled"
        return Job(
            id=job_id,
            kind="automl",
            display_name="",
            state=state,
            created=NOW,
            error=self.error if state == "Failed" else None,
            spec={"request": {"primary_metric": "AUC_weighted"}},
        )

    def result(self, job_id: str) -> dict[str, Any]:
        return {"best_metrics": {"AUC_weighted": 0.91}, "best_estimator": "lgbm"}

    def cancel(self, job_id: str) -> Job:
        self.canceled.append(job_id)
        return self.get(job_id)


class FakeModels:
    def __init__(self) -> None:
        self.registered: list[tuple[str, str, str]] = []

    def get(self, name: str, version: int | None = None) -> Model:
        return Model(name, version or 1, None, "", "", NOW)  # trained elsewhere: no job

    def register(self, job_id: str, name: str, description: str = "") -> Model:
        self.registered.append((job_id, name, description))
        return Model(name, len(self.registered) + 1, job_id, "", "", NOW)


class FakeEndpoints:
    def __init__(self, live: tuple[str, int] | None = None, outcome: str = "Succeeded") -> None:
        self.live = live
        self.outcome = outcome
        self.deployed: list[tuple[str, int, str]] = []
        self.looks = 0

    def get(self, name: str) -> Endpoint:
        if self.live is None:
            raise WorkspaceError(f"Endpoint {name} does not exist.")
        self.looks += 1
        state = "Creating" if self.deployed and self.looks < 3 else self.outcome
        if not self.deployed:
            state = "Succeeded"
        return Endpoint(name, state, "http://127.0.0.1:1/score", "", *self.live, NOW, NOW)

    def deploy(self, model_name: str, model_version: int, endpoint_name: str) -> Endpoint:
        self.deployed.append((model_name, model_version, endpoint_name))
        self.live, self.looks = (model_name, model_version), 0
        return self.get(endpoint_name)

    def logs(self, name: str, lines: int = 80) -> str:
        return "Traceback: the model could not be loaded"


@dataclass
class Harness:
    ws: Workspace
    pipelines: PipelineStore
    automl: FakeAutoML
    models: FakeModels
    endpoints: FakeEndpoints

    def start(self, spec: PipelineSpec, cancel: Any = lambda: False) -> RunExecution:
        self.pipelines.save("retrain", spec)
        pipeline = self.pipelines.get("retrain")
        run_id = self.pipelines.create_run(pipeline, spec, {}, "manual", "retrain")
        return RunExecution(self.ws, self.pipelines, run_id, cancel_requested=cancel)

    def states(self, execution: RunExecution) -> list[str]:
        return [s.state for s in self.pipelines.get_run(execution.run_id).steps]


@pytest.fixture
def harness(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setattr(run_module, "POLL_S", 0.001)
    store = Store(hermetic_env)
    datasets = LocalDatasets(store, max_upload_bytes=10**7)
    datasets.upload("bank", CSV, "bank.csv")
    datasets.upload("bank", CSV, "bank.csv")
    automl, models, endpoints = FakeAutoML(), FakeModels(), FakeEndpoints()
    ws = Workspace(
        kind="local",
        description="",
        reason="",
        settings=load_settings(),
        datasets=datasets,
        automl=automl,  # type: ignore[arg-type]
        models=models,  # type: ignore[arg-type]
        endpoints=endpoints,  # type: ignore[arg-type]
    )
    return Harness(ws, PipelineStore(store), automl, models, endpoints)


def keep_gate(**_: Any) -> GateDecision:
    return GateDecision("keep", "new 0.90 vs live 0.93", "AUC_weighted", 0.90, 0.93, 0.0, "m v1")


def test_register_only_run_skips_gate_and_deploy(harness: Harness) -> None:
    execution = harness.start(PipelineSpec(dataset="bank", target="y"))
    outputs = execution.execute()
    run = harness.pipelines.get_run(execution.run_id)
    assert run.state == "Completed" and run.started and run.ended
    assert harness.states(execution) == [
        "Completed",
        "Completed",
        "Completed",
        "Skipped",
        "Skipped",
    ]
    # "latest" is resolved when the run starts.
    assert outputs["dataset_version"] == 2
    assert harness.automl.submitted[0].dataset_version == 2
    assert harness.models.registered[0][:2] == ("automl-1", "bank-y")
    assert run.steps[1].job_id == "automl-1"
    assert run.steps[3].outputs["skipped"].startswith("no deploy target")
    log = (execution.pipelines.step_log_path(run.id, "automl")).read_text()
    assert "AutoML job automl-1 is Running" in log


def test_pinned_version_and_no_live_model_deploys(harness: Harness) -> None:
    harness.endpoints.live = None
    spec = PipelineSpec(dataset="bank", target="y", dataset_version=1, deploy_endpoint="bank-ep")
    execution = harness.start(spec)
    execution.execute()
    run = harness.pipelines.get_run(execution.run_id)
    assert run.state == "Completed"
    assert run.outputs["dataset_version"] == 1
    assert run.outputs["gate"]["decision"] == "deploy"
    assert run.outputs["gate"]["champion"] is None
    assert harness.endpoints.deployed == [("bank-y", 2, "bank-ep")]
    assert run.steps[4].outputs["endpoint"] == "bank-ep"


def test_gate_keeping_the_champion_skips_deploy(harness: Harness, monkeypatch) -> None:
    monkeypatch.setattr(gate_module, "evaluate", keep_gate)
    harness.endpoints.live = ("bank-y", 1)
    execution = harness.start(PipelineSpec(dataset="bank", target="y", deploy_endpoint="bank-ep"))
    execution.execute()
    run = harness.pipelines.get_run(execution.run_id)
    assert run.state == "Completed"
    assert harness.states(execution)[3:] == ["Completed", "Skipped"]
    assert run.outputs["gate"]["champion"] == 0.93
    assert "kept the live model" in run.steps[4].outputs["skipped"]
    assert harness.endpoints.deployed == []


def test_ungated_deploy_and_failed_endpoint_fail_the_run(harness: Harness) -> None:
    harness.endpoints.live, harness.endpoints.outcome = ("bank-y", 1), "Failed"
    spec = PipelineSpec(dataset="bank", target="y", deploy_endpoint="bank-ep", gated=False)
    execution = harness.start(spec)
    with pytest.raises(StepFailed, match="bank-ep is Failed"):
        execution.execute()
    run = harness.pipelines.get_run(execution.run_id)
    assert run.state == "Failed"
    assert run.error.startswith("Step deploy failed: endpoint bank-ep is Failed")
    assert "could not be loaded" in run.steps[4].error
    assert harness.states(execution)[-1] == "Failed"


def test_failed_automl_job_stops_the_run_with_its_reason(harness: Harness) -> None:
    harness.automl.states = ["Running", "Failed"]
    harness.automl.error = "ValueError: no usable feature columns"
    execution = harness.start(PipelineSpec(dataset="bank", target="y", deploy_endpoint="bank-ep"))
    with pytest.raises(StepFailed):
        execution.execute()
    run = harness.pipelines.get_run(execution.run_id)
    assert run.state == "Failed"
    assert "no usable feature columns" in run.error and "automl" in run.error
    assert harness.states(execution) == ["Completed", "Failed", "Skipped", "Skipped", "Skipped"]
    assert harness.models.registered == []


def test_invalid_request_and_missing_version_fail_early(harness: Harness) -> None:
    harness.automl.problems = ["Target column 'y' is not in the dataset."]
    execution = harness.start(PipelineSpec(dataset="bank", target="y"))
    with pytest.raises(StepFailed):
        execution.execute()
    assert harness.automl.submitted == []
    assert "not in the dataset" in harness.pipelines.get_run(execution.run_id).error

    execution = harness.start(PipelineSpec(dataset="bank", target="y", dataset_version=9))
    with pytest.raises(StepFailed):
        execution.execute()
    assert harness.states(execution)[0] == "Failed"


def test_cancel_cancels_the_running_automl_job(harness: Harness) -> None:
    harness.automl.states = ["Running"]
    looks = iter(range(100))
    execution = harness.start(
        PipelineSpec(dataset="bank", target="y"), cancel=lambda: next(looks) >= 3
    )
    with pytest.raises(KeyboardInterrupt):
        execution.execute()
    run = harness.pipelines.get_run(execution.run_id)
    assert run.state == "Canceled"
    assert harness.automl.canceled == ["automl-1"]
    assert harness.states(execution) == ["Completed", "Canceled", "Skipped", "Skipped", "Skipped"]


def test_automl_job_canceled_elsewhere_cancels_the_run(harness: Harness) -> None:
    harness.automl.states = ["Running", "Canceled"]
    execution = harness.start(replace(PipelineSpec(dataset="bank", target="y")))
    with pytest.raises(KeyboardInterrupt):
        execution.execute()
    assert harness.pipelines.get_run(execution.run_id).state == "Canceled"


def test_a_deploy_is_in_the_audit_log_as_the_pipeline_run(harness: Harness) -> None:
    harness.endpoints.live = None
    spec = PipelineSpec(dataset="bank", target="y", deploy_endpoint="bank-ep")
    execution = harness.start(spec)
    execution.execute()
    events = AuditLog(harness.ws.settings.home).read()
    assert [(e.action, e.target, e.outcome) for e in events] == [
        ("endpoint.deploy", "bank-ep", "ok")
    ]
    assert events[0].actor == f"pipeline retrain run {execution.run_id}"
    assert events[0].detail.startswith("bank-y v2 (pipeline retrain v1")


def test_a_failed_deploy_is_in_the_audit_log_with_its_reason(harness: Harness) -> None:
    harness.endpoints.live, harness.endpoints.outcome = ("bank-y", 1), "Failed"
    spec = PipelineSpec(dataset="bank", target="y", deploy_endpoint="bank-ep", gated=False)
    execution = harness.start(spec)
    with pytest.raises(StepFailed):
        execution.execute()
    (event,) = AuditLog(harness.ws.settings.home).read()
    assert event.action == "endpoint.deploy" and event.target == "bank-ep"
    assert event.outcome.startswith("failed: endpoint bank-ep is Failed")
    assert event.actor == f"pipeline retrain run {execution.run_id}"


def test_a_register_only_run_audits_no_deploy(harness: Harness) -> None:
    harness.start(PipelineSpec(dataset="bank", target="y")).execute()
    assert AuditLog(harness.ws.settings.home).read() == []
