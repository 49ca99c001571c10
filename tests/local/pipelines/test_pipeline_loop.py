"""Retrain pipelines end to end on Bank Marketing: real job runner, FLAML, registry, endpoint.

One worker slot on purpose: a pipeline run waits on its AutoML job, so it must not hold the
only slot. Budgets are FLAML's minimum (10 s) on a 4,000-row sample.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import requests

from lib.audit import AuditLog
from lib.pipeline_gate import validation_rows
from lib.workspace import PipelineSpec, Workspace
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def ws(hermetic_env: Path, bank_csv: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("OPSDECK_WORKER_SLOTS", "1")
    from lib.backend import open_workspace

    workspace = open_workspace()
    frame = pd.read_csv(bank_csv).sample(4000, random_state=1)
    workspace.datasets.upload("bank", frame.to_csv(index=False).encode(), "bank.csv")
    workspace.pipelines.save(
        "retrain",
        PipelineSpec(
            dataset="bank",
            target="y",
            time_budget_s=10,
            estimators=["lgbm"],
            ensemble=False,
            deploy_endpoint="bank-ep",
        ),
    )
    yield workspace
    for run in workspace.pipelines.runs():
        if not run.is_terminal:
            workspace.pipelines.cancel_run(run.id)
    workspace.pipelines.agent_manager.stop()
    for endpoint in workspace.endpoints.list():
        workspace.endpoints.delete(endpoint.name)


def finished(ws: Workspace, run_id: str, timeout: float = 300):  # noqa: ANN201
    return wait_for(lambda: (r := ws.pipelines.get_run(run_id)).is_terminal and r, timeout, 0.5)


def test_run_deploys_then_the_gate_keeps_the_champion(ws: Workspace) -> None:
    first = finished(ws, ws.pipelines.run("retrain").id)
    assert first.state == "Completed", (first.error, ws.pipelines.step_log(first.id, "automl"))
    assert [s.state for s in first.steps] == ["Completed"] * 5
    out = first.outputs
    assert out["gate"]["decision"] == "deploy" and out["gate"]["champion"] is None
    assert (out["model_name"], out["model_version"], out["endpoint"]) == ("bank-y", 1, "bank-ep")
    endpoint = ws.endpoints.get("bank-ep")
    assert (endpoint.state, endpoint.model_version) == ("Succeeded", 1)
    job = ws.automl.get(out["automl_job"])
    assert job.kind == "automl" and job.state == "Completed"  # the job the AutoML page lists
    assert out["automl_job"] in {j.id for j in ws.automl.jobs()}

    # The gate's rows are the run's own validation rows: same size and class counts as the
    # confusion matrix the engine computed on them.
    frame = ws.datasets.load("bank", 1)
    _, y = validation_rows(frame, "y", "classification", "holdout", 0.2)
    confusion = ws.automl.details(out["automl_job"])["confusion"]
    by_class = dict(zip(confusion["labels"], map(sum, confusion["matrix"]), strict=True))
    assert by_class == y.value_counts().to_dict()

    # The deploy is audited as the run that made it.
    deploys = [e for e in AuditLog(ws.settings.home).read() if e.action == "endpoint.deploy"]
    assert [(e.actor, e.target, e.outcome) for e in deploys] == [
        (f"pipeline retrain run {first.id}", "bank-ep", "ok")
    ]

    # Scored on validation rows it was trained on, the live model would flatter itself: it is
    # scored on the ones its training table lacks (here: told it saw only the first half).
    from lib.local.pipelines.gate import evaluate

    request = job.spec["request"]
    X, y_val = validation_rows(frame, "y", "classification", "holdout", 0.2)
    half = frame.iloc[: len(frame) // 2]
    unseen = [i for i in X.index if i >= len(frame) // 2]
    judged = evaluate(
        home=ws.settings.home,
        frame=frame,
        request=request,
        result=ws.automl.result(job.id),
        champion=("bank-y", 1),
        margin=0.0,
        champion_rows=half,
        champion_score=0.5,
    )
    assert judged.rows == len(unseen) >= 200 and "not trained on" in judged.rows_kind
    assert 0.5 < judged.champion <= 1

    # Publish a version whose gate asks an unbeatable margin (REST callers cannot change the
    # gate); a REST run; the agent is killed mid-run.
    ws.pipelines.save("retrain", replace(ws.pipelines.get("retrain").spec, gate_margin=0.5))
    pipeline = ws.pipelines.publish("retrain")
    wait_for(lambda: ws.pipelines.agent().state == "Running", 60, 0.2)
    key = ws.pipelines.keys("retrain")[0]
    answer = requests.post(
        pipeline.rest_endpoint,
        json={"ExperimentName": "gated", "ParameterAssignments": {"time_budget_s": 10}},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["Id"]
    wait_for(lambda: ws.pipelines.get_run(run_id).steps[1].state == "Running", 120, 0.2)
    os.kill(ws.pipelines.agent().pid, signal.SIGKILL)
    second = finished(ws, run_id)
    # The run is a job of the job runner: losing the agent does not stop it.
    assert second.state == "Completed", second.error
    gate = second.outputs["gate"]
    assert gate["decision"] == "keep" and gate["champion_model"] == "bank-y v1"
    assert 0.5 < gate["challenger"] <= 1 and 0.5 < gate["champion"] <= 1
    # The same rows again: the live model was trained on every validation row, so its own
    # run's validation score stands for it.
    assert gate["champion"] == ws.models.get("bank-y", 1).metrics["AUC_weighted"]
    assert gate["rows"] == 0 and gate["rows_kind"] == "the live model's own validation rows"
    assert "the live model's own validation score" in gate["reason"] and gate["margin"] == 0.5
    assert [s.state for s in second.steps][3:] == ["Completed", "Skipped"]
    assert ws.endpoints.get("bank-ep").model_version == 1  # the champion still serves
    assert second.outputs["model_version"] == 2  # the challenger is registered all the same
    # The next look brings the agent back.
    assert wait_for(lambda: ws.pipelines.agent().state == "Running", 60, 0.2)


def test_killed_run_process_ends_the_run_failed_with_a_reason(ws: Workspace) -> None:
    run = ws.pipelines.run("retrain", {"time_budget_s": 30})
    automl_job = wait_for(lambda: ws.pipelines.get_run(run.id).steps[1].job_id, 120, 0.2)
    wait_for(lambda: ws.automl.get(automl_job).state == "Running", 60, 0.2)
    pid = (
        ws.extras["store"]
        .connect()
        .execute(
            "SELECT pid FROM jobs WHERE id=(SELECT job_id FROM pipeline_runs WHERE id=?)", (run.id,)
        )
        .fetchone()[0]
    )
    os.kill(pid, signal.SIGKILL)
    ended = finished(ws, run.id, 60)
    assert ended.state == "Failed"
    assert "ended without reporting a result" in ended.error
    assert ended.steps[1].state == "Failed" and ended.steps[2].state == "Skipped"
    # Its AutoML job does not go on holding the worker slot.
    assert wait_for(lambda: ws.automl.get(automl_job).is_terminal, 30)
    # ... and says why, not that a user canceled it
    child = ws.automl.get(automl_job)
    assert child.error.startswith("Canceled: its pipeline run ended ("), child.error
    assert "ended without reporting a result" in child.error
