"""Pipeline metadata in the workspace SQLite: versions, runs and steps, schedules, keys."""

from __future__ import annotations

import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.errors import WorkspaceError
from lib.local.pipelines.store import PipelineStore
from lib.local.store import MIGRATIONS, Store
from lib.workspace import PIPELINE_STEPS, PipelineSpec, Schedule

SPEC = PipelineSpec(dataset="bank", target="y")


@pytest.fixture
def pipelines(hermetic_env: Path) -> PipelineStore:
    return PipelineStore(Store(hermetic_env))


def test_schema_is_migrated(pipelines: PipelineStore) -> None:
    conn = pipelines.store.connect()
    assert Store.schema_version(conn) == len(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"pipelines", "pipeline_runs", "pipeline_steps", "pipeline_schedules"} <= tables


def test_saving_a_changed_spec_adds_a_version(pipelines: PipelineStore) -> None:
    assert pipelines.save("retrain", SPEC) == 1
    assert pipelines.save("retrain", SPEC) == 1  # unchanged: no new version
    assert pipelines.save("retrain", replace(SPEC, time_budget_s=30)) == 2
    assert pipelines.save("retrain", replace(SPEC, time_budget_s=30), "described") == 3
    latest = pipelines.get("retrain")
    assert (latest.version, latest.latest_version, latest.description) == (3, 3, "described")
    assert pipelines.get("retrain", 1).spec == SPEC
    assert [p.version for p in pipelines.versions("retrain")] == [3, 2, 1]
    assert [(p.name, p.version) for p in pipelines.list()] == [("retrain", 3)]
    with pytest.raises(WorkspaceError, match="no version 9"):
        pipelines.get("retrain", 9)
    with pytest.raises(WorkspaceError, match="does not exist"):
        pipelines.get("other")


def test_run_steps_outputs_and_end(pipelines: PipelineStore) -> None:
    pipelines.save("retrain", SPEC)
    pipeline = pipelines.get("retrain")
    run_id = pipelines.create_run(
        pipeline, replace(SPEC, time_budget_s=20), {"time_budget_s": 20}, "rest", "exp"
    )
    run = pipelines.get_run(run_id)
    assert run.state == "NotStarted" and run.trigger == "rest" and run.experiment == "exp"
    assert [s.name for s in run.steps] == list(PIPELINE_STEPS)
    assert {s.state for s in run.steps} == {"NotStarted"}
    assert pipelines.run_spec(run_id).time_budget_s == 20
    pipelines.update_step(
        run_id, "dataset", outputs={"dataset": "bank", "dataset_version": 2}, state="Completed"
    )
    pipelines.update_step(run_id, "automl", outputs={"automl_job": "j1"}, state="Running")
    pipelines.update_step(run_id, "automl", outputs={"score": 0.9})
    run = pipelines.get_run(run_id)
    assert run.steps[1].outputs == {"automl_job": "j1", "score": 0.9}
    assert run.outputs == {
        "dataset": "bank",
        "dataset_version": 2,
        "automl_job": "j1",
        "score": 0.9,
    }
    assert pipelines.active_runs() == [(run_id, None)]

    pipelines.close_steps(run_id, "Failed", "boom")
    assert pipelines.finish_run(run_id, "Failed", "Step automl failed: boom")
    assert not pipelines.finish_run(run_id, "Completed")  # an ended run stays ended
    run = pipelines.get_run(run_id)
    assert run.state == "Failed" and run.error == "Step automl failed: boom"
    assert [s.state for s in run.steps] == ["Completed", "Failed", "Skipped", "Skipped", "Skipped"]
    assert run.steps[1].error == "boom"
    assert pipelines.active_runs() == []
    assert pipelines.last_dataset_version("retrain", "bank") == 2


def test_schedules_round_trip_and_data_trigger_claims(pipelines: PipelineStore) -> None:
    start = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    schedule = Schedule(
        name="nightly",
        pipeline="retrain",
        trigger="every day at 06:00 (UTC)",
        enabled=True,
        frequency="day",
        at_time="06:00",
        start=start,
        parameters={"time_budget_s": 30},
    )
    pipelines.put_schedule(schedule)
    stored = pipelines.get_schedule("nightly")
    assert stored.start == start and stored.parameters == {"time_budget_s": 30}
    assert stored.frequency == "day" and stored.created is not None
    first = pipelines.schedule_fingerprints()["nightly"][0]
    pipelines.put_schedule(replace(schedule, at_time="07:00"))
    assert pipelines.schedule_fingerprints()["nightly"][0] != first
    pipelines.set_enabled("nightly", False)
    assert pipelines.get_schedule("nightly").enabled is False

    data = Schedule(
        name="on-data", pipeline="retrain", trigger="", enabled=True, kind="data", dataset="bank"
    )
    pipelines.put_schedule(data, last_version=1)
    assert pipelines.last_version("on-data") == 1
    assert pipelines.claim_version("on-data", 1, 3)
    assert not pipelines.claim_version("on-data", 1, 3)  # a second poller loses
    assert pipelines.last_version("on-data") == 3
    pipelines.put_schedule(replace(data, parameters={"gated": False}), last_version=7)
    assert pipelines.last_version("on-data") == 3  # editing keeps what was handled
    pipelines.mark_fired("on-data", "run-1")
    assert pipelines.get_schedule("on-data").last_run_id == "run-1"
    assert [s.name for s in pipelines.schedules("retrain")] == ["nightly", "on-data"]


def test_keys_are_private_and_regenerable(pipelines: PipelineStore) -> None:
    pipelines.save("retrain", SPEC)
    pipelines.publish("retrain", 1)
    primary, secondary = pipelines.keys("retrain")
    assert primary != secondary and len(primary) >= 32
    mode = stat.S_IMODE(pipelines.keys_file("retrain").stat().st_mode)
    assert mode == 0o600
    assert pipelines.publication("retrain")[0] == 1
    pipelines.publish("retrain", 1)  # republishing keeps the keys
    assert pipelines.keys("retrain") == (primary, secondary)
    new_primary, kept = pipelines.write_keys("retrain", secondary=secondary)
    assert kept == secondary and new_primary != primary
    pipelines.delete("retrain")
    assert pipelines.publication("retrain") is None
    with pytest.raises(WorkspaceError, match="not published"):
        pipelines.keys("retrain")
