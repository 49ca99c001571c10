"""Monitoring page over drift counts written by the telemetry writer."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from lib.drift import build_baseline
from lib.local.telemetry import TelemetryWriter
from tests.pages.conftest import open_page

TRAINING = pd.DataFrame(
    {
        "age": np.arange(400) % 60 + 20,
        "job": ["admin.", "technician", "services", "retired"] * 100,
        "y": ["no"] * 350 + ["yes"] * 50,
    }
)


def _endpoint(ws, name: str) -> None:
    now = datetime.now(UTC).isoformat()
    with ws.extras["store"].transaction() as tx:
        tx.execute(
            """INSERT INTO endpoints(name, model_name, model_version, port, state, desired,
               created, updated) VALUES (?, 'm', 1, 59998, 'Stopped', 'stopped', ?, ?)""",
            (name, now, now),
        )


def test_monitoring_ranks_the_drifted_feature_and_shows_predictions(local_workspace) -> None:
    _endpoint(local_workspace, "bank-ep")
    writer = TelemetryWriter(local_workspace.telemetry.db_path, endpoint="bank-ep")
    writer.set_baseline(build_baseline(TRAINING, target="y", source="bank v1, target y"))
    live = TRAINING.drop(columns="y").assign(job="astronaut").to_dict("records")
    writer.record_inputs(live, ["no"] * 300 + ["yes"] * 100)
    writer.close()
    at = open_page("monitoring.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["State"].endswith("drift")
    assert metrics["Sampled rows"] == "400"
    assert metrics["Training data"] == "bank v1, target y"
    assert at.selectbox(key="monitoring_feature").value == "job"
    table = at.dataframe[0].value
    assert list(table["Feature"]) == ["job", "age"]
    assert list(table["State"]) == ["drift", "OK"]
    assert len(at.get("plotly_chart")) == 4
    at.selectbox(key="monitoring_feature").set_value("age").run()
    assert not at.exception


def test_monitoring_says_when_nothing_was_sampled(local_workspace) -> None:
    _endpoint(local_workspace, "quiet-ep")
    at = open_page("monitoring.py")
    assert not at.exception
    assert any("No sampled inputs for quiet-ep" in i.value for i in at.info)
