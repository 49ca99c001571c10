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
    """A stopped endpoint row (no server is needed to read its monitoring)."""
    now = datetime.now(UTC).isoformat()
    with ws.extras["store"].transaction() as tx:
        port = 59000 + tx.execute("SELECT COUNT(*) FROM endpoints").fetchone()[0]
        tx.execute(
            """INSERT INTO endpoints(name, model_name, model_version, port, state, desired,
               created, updated) VALUES (?, 'm', 1, ?, 'Stopped', 'stopped', ?, ?)""",
            (name, port, now, now),
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
    assert metrics["Input drift"].endswith("drift")
    assert metrics["Sampled rows"] == "400"
    # The dataset in the tile (it fits a 1,400 px wide window), the whole source in its help.
    assert metrics["Training data"] == "bank v1"
    assert next(m for m in at.metric if m.label == "Training data").help == "bank v1, target y"
    assert at.selectbox(key="monitoring_feature").value == "job"
    table = at.dataframe[0].value
    assert list(table["Feature"]) == ["job", "age"]
    assert list(table["State"]) == ["drift", "OK"]
    assert len(at.get("plotly_chart")) == 4
    # the predictions' own comparison is said beside them, apart from the inputs' state
    assert any("against the training labels. PSI" in c.value for c in at.caption)
    at.selectbox(key="monitoring_feature").set_value("age").run()
    assert not at.exception


def test_monitoring_says_when_nothing_was_sampled(local_workspace) -> None:
    _endpoint(local_workspace, "quiet-ep")
    at = open_page("monitoring.py")
    assert not at.exception
    assert any("No sampled inputs for quiet-ep" in i.value for i in at.info)


def test_home_and_endpoints_show_each_endpoints_drift_state(local_workspace) -> None:
    _endpoint(local_workspace, "bank-ep")
    _endpoint(local_workspace, "quiet-ep")
    writer = TelemetryWriter(local_workspace.telemetry.db_path, endpoint="bank-ep")
    writer.set_baseline(build_baseline(TRAINING, target="y"))
    writer.record_inputs(TRAINING.drop(columns="y").assign(job="astronaut").to_dict("records"), [])
    writer.close()
    home = open_page("home.py")
    lines = " ".join(m.value for m in home.markdown)
    assert "**bank-ep**" in lines and "drift 🔴 drift" in lines
    assert "drift ⚪ no data" in lines
    endpoints = open_page("endpoints.py")
    assert not endpoints.exception
    table = endpoints.dataframe[0].value
    assert dict(zip(table["endpoint"], table["drift (24 h)"], strict=True)) == {
        "bank-ep": "🔴 drift",
        "quiet-ep": "⚪ no data",
    }


def test_a_few_rows_of_the_training_data_are_not_called_drift(local_workspace) -> None:
    """81 rows taken from the training file read as 'drift' (PSI 0.25) on the page and the
    Endpoints list: on so few rows unchanged data already looks drifted."""
    _endpoint(local_workspace, "few-ep")
    writer = TelemetryWriter(local_workspace.telemetry.db_path, endpoint="few-ep")
    writer.set_baseline(build_baseline(TRAINING, target="y", source="bank v1, target y"))
    few = TRAINING.sample(81, random_state=3)
    writer.record_inputs(few.drop(columns="y").to_dict("records"), list(few["y"]))
    writer.close()
    at = open_page("monitoring.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sampled rows"] == "81" and metrics["Input drift"].endswith("no data")
    assert any(
        "81 rows sampled in this window: drift is judged from 200" in i.value for i in at.info
    )


def test_each_model_a_split_endpoint_serves_is_monitored(local_workspace) -> None:
    """blue v1 at 30 % and green v2 at 70 %: only blue's rows were counted, with no way to see
    green's."""
    _endpoint(local_workspace, "split-ep")
    writer = TelemetryWriter(local_workspace.telemetry.db_path, endpoint="split-ep")
    v2 = TRAINING.assign(age=TRAINING["age"] + 30)  # trained on older customers
    writer.set_baseline(build_baseline(TRAINING, target="y", source="bank v1, target y"), "blue")
    writer.set_baseline(build_baseline(v2, target="y", source="bank v2, target y"), "green")
    writer.record_inputs(TRAINING.drop(columns="y").to_dict("records"), ["no"] * 400, "blue")
    older = v2.drop(columns="y").iloc[:300].to_dict("records")
    writer.record_inputs(older, ["no"] * 300, "green")
    writer.close()
    at = open_page("monitoring.py")
    assert not at.exception, at.exception
    picker = at.selectbox(key="monitoring_model_split-ep")
    # the newest samples' model first (blue when both fall in one 5-minute bin: more rows)
    assert set(picker.options) == {
        "blue (bank v1, target y) — 400 rows",
        "green (bank v2, target y) — 300 rows",
    }
    first = picker.options[0]
    assert {m.label: m.value for m in at.metric}["Sampled rows"] == first.split("— ")[1][:3]
    picker.set_value("green (bank v2, target y) — 300 rows").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    # green's rows against green's own training data: no drift in age
    assert metrics["Sampled rows"] == "300" and metrics["Training data"] == "bank v2"
    assert metrics["Input drift"].endswith("OK")
