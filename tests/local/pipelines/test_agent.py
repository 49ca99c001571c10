"""The pipeline agent as a real process on 127.0.0.1: REST, schedules, data triggers, restarts.

Runs started here train on a 30-row dataset, so each fails fast in its AutoML step ("at least
50 rows are needed") instead of training: these tests are about starting runs, not training.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from lib.local import supervisor
from lib.local.pipelines.agent import Agent
from lib.local.pipelines.service import LocalPipelines
from lib.pipeline_snippets import curl_snippet, python_snippet
from lib.workspace import PipelineRun, PipelineSpec, Schedule, Workspace
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

TINY = b"x,y\n" + b"".join(f"{i},{'yes' if i % 3 else 'no'}\n".encode() for i in range(30))


@pytest.fixture
def ws(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("OPSDECK_TRIGGER_POLL_S", "0.3")
    from lib.backend import open_workspace

    workspace = open_workspace()
    workspace.datasets.upload("tiny", TINY, "tiny.csv")
    workspace.pipelines.save("retrain", PipelineSpec(dataset="tiny", target="y"))
    yield workspace
    pipelines: LocalPipelines = workspace.pipelines
    pipelines.agent_manager.stop()
    for run in pipelines.runs():
        if not run.is_terminal:
            pipelines.cancel_run(run.id)


def running_agent(ws: Workspace) -> Any:
    return wait_for(lambda: (a := ws.pipelines.agent()).state == "Running" and a, 60, 0.2)


def runs_by(ws: Workspace, trigger: str) -> list[PipelineRun]:
    return [r for r in ws.pipelines.runs() if r.trigger == trigger]


def test_rest_api_auth_validation_keys_and_snippets(ws: Workspace) -> None:
    pipeline = ws.pipelines.publish("retrain")
    url = pipeline.rest_endpoint
    assert url.endswith("/pipelines/retrain") and pipeline.published_version == 1
    running_agent(ws)
    primary, secondary = ws.pipelines.keys("retrain")
    body = {"ExperimentName": "nightly", "ParameterAssignments": {"time_budget_s": 20}}

    def post(payload: Any = body, key: str | None = primary, raw: bytes | None = None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if raw is not None:
            return requests.post(url, data=raw, headers=headers, timeout=10)
        return requests.post(url, json=payload, headers=headers, timeout=10)

    missing = post(key=None)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert "key" in missing.json()["message"]
    assert post(key="not-the-key").status_code == 401
    bad = [
        (
            post({"ExperimentName": "x", "ParameterAssignments": {"time_budget": 9}}),
            "ParameterAssignments.time_budget",
            "unknown parameter",
        ),
        (
            post({"ParameterAssignments": {"time_budget_s": "60"}}),
            "ParameterAssignments.time_budget_s",
            "must be a whole number of seconds",
        ),
        (
            post({"ParameterAssignments": {"primary_metric": "rmse"}}),
            "ParameterAssignments.primary_metric",
            "not a classification metric",
        ),
        (post({"ExperimentName": "x", "Parameters": {}}), "Parameters", "Unknown field"),
        (post({"ExperimentName": 7}), "ExperimentName", "string"),
        (post({"ExperimentName": "has spaces"}), "ExperimentName", "letters, digits"),
        (post({"ParameterAssignments": [1]}), "ParameterAssignments", "object"),
    ]
    for response, field, words in bad:
        assert response.status_code == 400, response.text
        assert response.json()["field"] == field and words in response.json()["message"]
    not_json = post(raw=b"{not json")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["message"]
    assert ws.pipelines.runs() == []  # nothing refused started a run

    accepted = post(key=secondary)
    assert accepted.status_code == 202, accepted.text
    document = accepted.json()
    assert document["Status"] == "Queued" and document["Trigger"] == "rest"
    assert document["ExperimentName"] == "nightly"
    assert accepted.headers["Location"] == document["StatusUrl"]
    # The run is listed as soon as the POST has answered.
    run = ws.pipelines.get_run(document["Id"])
    assert run.trigger == "rest" and run.parameters == {"time_budget_s": 20}

    status = requests.get(document["StatusUrl"], timeout=10)
    assert status.status_code == 401
    status = requests.get(
        document["StatusUrl"], headers={"Authorization": f"Bearer {primary}"}, timeout=10
    )
    assert status.status_code == 200
    assert [s["Name"] for s in status.json()["Steps"]] == [
        "dataset",
        "automl",
        "register",
        "gate",
        "deploy",
    ]
    ended = wait_for(lambda: (r := ws.pipelines.get_run(document["Id"])).is_terminal and r, 90)
    assert ended.state == "Failed" and "at least 50 are needed" in ended.error
    final = requests.get(
        document["StatusUrl"], headers={"Authorization": f"Bearer {primary}"}, timeout=10
    ).json()
    assert final["Status"] == "Failed" and final["Steps"][1]["Status"] == "Failed"

    # The curl snippet the page shows works as shown.
    snippet = curl_snippet(url, primary, "from-curl", {"time_budget_s": 15})
    done = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    from_curl = json.loads(done.stdout)
    assert from_curl["Id"] and ws.pipelines.get_run(from_curl["Id"]).experiment == "from-curl"
    python = python_snippet(url, secondary, "from-python", {})
    done = subprocess.run(
        [os.sys.executable, "-c", python], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Queued" in done.stdout or "Running" in done.stdout

    # A regenerated key stops working at once; the other key keeps working.
    new_primary, kept = ws.pipelines.regenerate_key("retrain", "primary")
    assert kept == secondary and new_primary != primary
    assert post(key=primary).status_code == 401
    assert post(key=new_primary).status_code == 202

    ws.pipelines.unpublish("retrain")
    assert post(key=new_primary).status_code == 404


def test_schedules_fire_survive_restarts_and_catch_up_once(ws: Workspace) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=3)
    first = ws.pipelines.set_schedule(
        Schedule(
            name="every-minute",
            pipeline="retrain",
            trigger="",
            enabled=True,
            frequency="minute",
            start=soon,
            parameters={"time_budget_s": 15},
        )
    )
    assert first.trigger == "every minute (UTC)"
    assert first.next_run == soon  # from the trigger until the agent records its own
    agent = running_agent(ws)
    fired = wait_for(lambda: runs_by(ws, "schedule:every-minute"), 60)
    assert fired[0].parameters == {"time_budget_s": 15}
    stored = wait_for(
        lambda: (
            (s := ws.pipelines.get_schedule("every-minute")).next_run > datetime.now(UTC)
            and s.last_run_id
            and s
        ),
        10,
    )
    assert stored.last_run_id == fired[0].id
    assert fired[0].created < soon + timedelta(minutes=1)  # the first slot, not the second

    # The agent dies; while it is down ten slots pass (its store says the fire was due then).
    os.kill(agent.pid, signal.SIGKILL)
    wait_for(lambda: not supervisor.is_alive(ws.pipelines.agent_manager.ref()), 10)
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    db = Path(ws.settings.home) / "pipelines" / "schedules.db"
    offline = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{db}")}, timezone="UTC"
    )
    offline.start(paused=True)
    offline.modify_job("every-minute", next_run_time=datetime.now(UTC) - timedelta(minutes=10))
    offline.shutdown(wait=False)

    # The next look restarts the agent; the missed slots run once, not ten times.
    restarted = running_agent(ws)
    assert restarted.pid != agent.pid
    wait_for(lambda: len(runs_by(ws, "schedule:every-minute")) >= 2, 60)
    wait_for(
        lambda: (
            (s := ws.pipelines.get_schedule("every-minute")).next_run
            and s.next_run > datetime.now(UTC)
        ),
        10,
    )
    assert len(runs_by(ws, "schedule:every-minute")) == 2
    assert [s.name for s in ws.pipelines.schedules()] == ["every-minute"]

    # Disabled: no next fire; enabled again: a next fire in the future.
    assert ws.pipelines.enable_schedule("every-minute", False).next_run is None
    wait_for(lambda: ws.pipelines.get_schedule("every-minute").next_run is None, 10)
    again = ws.pipelines.enable_schedule("every-minute", True)
    assert again.next_run > datetime.now(UTC)


def test_data_trigger_fires_on_a_new_version(ws: Workspace) -> None:
    trigger = ws.pipelines.set_schedule(
        Schedule(
            name="on-new-data",
            pipeline="retrain",
            trigger="",
            enabled=True,
            kind="data",
            dataset="tiny",
        )
    )
    assert trigger.next_run is None
    running_agent(ws)
    ws.datasets.upload("tiny", TINY + b"99,yes\n", "tiny.csv")
    fired = wait_for(lambda: runs_by(ws, "data:tiny"), 30)
    assert fired[0].parameters == {"dataset_version": 2}
    wait_for(lambda: ws.pipelines.get_run(fired[0].id).is_terminal, 90)
    assert ws.pipelines.get_run(fired[0].id).outputs["dataset_version"] == 2
    assert len(runs_by(ws, "data:tiny")) == 1


class RecordingPipelines(LocalPipelines):
    """The real service, except that `run` records instead of starting a job."""

    started: list[tuple[str, dict, str]]

    def run(self, name, parameters=None, trigger="manual", experiment="", version=None):  # noqa: ANN001, ANN201
        self.started.append((name, dict(parameters or {}), trigger))
        return None if False else type("R", (), {"id": f"run-{len(self.started)}"})()


def test_data_trigger_once_per_poll_on_the_newest_version(ws: Workspace) -> None:
    base: LocalPipelines = ws.pipelines
    pipelines = RecordingPipelines(base.store.store, base.jobs, base.datasets)
    pipelines.started = []
    pipelines.store.put_schedule(
        Schedule(
            name="t", pipeline="retrain", trigger="", enabled=True, kind="data", dataset="tiny"
        ),
        last_version=1,
    )
    agent = Agent(base.store.store, pipelines, poll_s=1)
    agent.poll_data_triggers()
    assert pipelines.started == []  # v1 existed when the trigger was made

    ws.datasets.upload("tiny", TINY + b"1,yes\n", "tiny.csv")
    ws.datasets.upload("tiny", TINY + b"2,yes\n", "tiny.csv")  # two versions, one interval
    agent.poll_data_triggers()
    agent.poll_data_triggers()
    assert pipelines.started == [("retrain", {"dataset_version": 3}, "data:tiny")]

    # A version the last run already used (e.g. a manual run on "latest") does not fire.
    ws.datasets.upload("tiny", TINY + b"3,yes\n", "tiny.csv")
    run_id = base.store.create_run(
        base.store.get("retrain"), base.store.get("retrain").spec, {}, "manual", "retrain"
    )
    base.store.update_step(
        run_id, "dataset", outputs={"dataset": "tiny", "dataset_version": 4}, state="Completed"
    )
    agent.poll_data_triggers()
    assert len(pipelines.started) == 1
    assert base.store.last_version("t") == 4
