"""Local monitoring: the training profile of a deployed model, and drift read from roll-ups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from lib.drift import build_baseline
from lib.local.drift import LocalMonitoring, baseline_path, ensure_baseline, load_baseline
from lib.local.telemetry import TelemetryWriter

HOLDOUT = 4000


def _score(writer: TelemetryWriter, records: list[dict], deployment: str = "blue") -> None:
    """Hand rows over as the scoring app does: one request of 100 rows at a time."""
    for start in range(0, len(records), 100):
        batch = records[start : start + 100]
        writer.record_inputs(batch, ["no"] * len(batch), deployment)


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


@pytest.fixture
def bank(bank_csv):
    frame = pd.read_csv(bank_csv)
    training, holdout = frame.iloc[:-HOLDOUT], frame.iloc[-HOLDOUT:]
    baseline = build_baseline(training, target="y", source="bank v1, target y")
    return baseline, holdout.drop(columns="y")


def test_shifted_age_and_unseen_job_rank_first_as_drift(bank, tmp_path):
    baseline, holdout = bank
    db = tmp_path / "telemetry.db"
    writer = TelemetryWriter(db, endpoint="bank-ep", flush_interval=3600)
    writer.set_baseline(baseline, "blue")
    unchanged = _records(holdout.iloc[:2000])
    shifted = _records(
        holdout.iloc[2000:].assign(age=holdout["age"].iloc[2000:] + 20, job="astronaut")
    )
    _score(writer, unchanged + shifted)
    writer.close()
    monitoring = LocalMonitoring(db)
    now = datetime.now(UTC)
    report = monitoring.report("bank-ep", now - timedelta(hours=1), now)
    assert report.rows == 4000
    ranked = [(f.feature, f.state) for f in report.features]
    assert {name for name, _ in ranked[:2]} == {"age", "job"}
    assert ranked[0][1] == ranked[1][1] == "drift"
    assert all(state == "OK" for _, state in ranked[2:]), ranked
    job = next(f for f in report.features if f.feature == "job")
    assert job.unseen_live == pytest.approx(0.5)
    assert report.state == "drift"
    assert monitoring.states() == {"bank-ep": "drift"}


def test_holdout_alone_stays_ok(bank, tmp_path):
    baseline, holdout = bank
    db = tmp_path / "telemetry.db"
    writer = TelemetryWriter(db, endpoint="bank-ep", flush_interval=3600)
    writer.set_baseline(baseline, "blue")
    _score(writer, _records(holdout.iloc[:2000]))
    writer.close()
    now = datetime.now(UTC)
    report = LocalMonitoring(db).report("bank-ep", now - timedelta(hours=1), now)
    assert report.state == "OK", report.table()


def test_no_samples_say_why(tmp_path):
    now = datetime.now(UTC)
    report = LocalMonitoring(tmp_path / "none.db").report("ep", now - timedelta(hours=1), now)
    assert report.rows == 0 and "No sampled inputs" in report.message
    assert LocalMonitoring(tmp_path / "none.db").states() == {}


def test_training_profile_of_a_registered_model(local_workspace):
    ws = local_workspace
    store = ws.extras["store"]
    csv = "age,job,balance,y\n" + "".join(
        f"{20 + i % 50},{'abc'[i % 3]},{i * 10},{'yes' if i % 4 == 0 else 'no'}\n"
        for i in range(200)
    )
    version = ws.datasets.upload("people", csv.encode(), "people.csv")
    spec = {"request": {"dataset": "people", "dataset_version": version.version, "target": "y"}}
    with store.transaction() as tx:
        tx.execute(
            """INSERT INTO jobs(id, kind, display_name, state, spec, created, log_path)
               VALUES ('job-1', 'automl', 'people', 'Completed', ?, ?, '')""",
            (json.dumps(spec), datetime.now(UTC).isoformat()),
        )
    folder = store.home / "models" / "people-model" / "v1"
    folder.mkdir(parents=True)
    (folder / "info.json").write_text(json.dumps({"job_id": "job-1", "task": "classification"}))
    (folder / "feature_spec.json").write_text(json.dumps([{"name": "age"}, {"name": "job"}]))
    path = ensure_baseline(store, "people-model", 1)
    assert path == baseline_path(store.home, "people-model", 1) and path.exists()
    baseline = load_baseline(path)
    assert [f.name for f in baseline.features] == ["age", "job"]  # the model's inputs only
    assert baseline.prediction.name == "y" and baseline.source == "people v1, target y"
    assert ensure_baseline(store, "unknown-model", 3) is None
