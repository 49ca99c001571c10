"""The local workspace end to end: dataset → AutoML job → register → deploy → score → telemetry."""

from __future__ import annotations

import json
import os
import signal

import pandas as pd
import pytest
import requests

from lib.workspace import AutoMLRequest, Workspace
from tests.conftest import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bank_csv_path):
    """One AutoML run on a Bank Marketing sample, shared by the tests of this module."""
    home = tmp_path_factory.mktemp("loop-home")
    os.environ["OPSDECK_HOME"] = str(home)
    from lib.backend import open_workspace
    from lib.settings import load_settings

    ws = open_workspace(load_settings())
    frame = pd.read_csv(bank_csv_path).sample(4000, random_state=1)
    ws.datasets.upload("bank", frame.to_csv(index=False).encode(), "bank.csv")
    job = ws.automl.submit(
        # The budget counts from the job's start (imports included): max_trials ends it sooner.
        AutoMLRequest(dataset="bank", dataset_version=1, target="y", time_budget_s=60, max_trials=8)
    )
    assert job.state in ("Queued", "Running")
    done = wait_for(lambda: ws.automl.get(job.id).is_terminal and ws.automl.get(job.id), 240)
    assert done.state == "Completed", ws.automl.log_tail(job.id)
    yield ws, job.id, frame
    for ep in ws.endpoints.list():
        ws.endpoints.delete(ep.name)


@pytest.fixture(scope="module")
def bank_csv_path():
    from lib.settings import find_sample_data

    path = find_sample_data()
    if path is None:
        pytest.skip("bankmarketing_train.csv not found (set OPSDECK_SAMPLE_DATA or ../shared/data)")
    return path


def test_job_records_trials_leaderboard_and_details(trained) -> None:
    ws, job_id, _ = trained
    trials = ws.automl.trials(job_id)
    assert len(trials) >= 5
    assert trials["best_so_far"].is_monotonic_increasing
    board = ws.automl.leaderboard(job_id)
    assert board["AUC_weighted"].is_monotonic_decreasing
    per_est = ws.automl.leaderboard(job_id, per_estimator=True)
    assert {"estimator", "AUC_weighted", "accuracy"} <= set(per_est.columns)
    details = ws.automl.details(job_id)
    assert details["roc"] and details["confusion"]["matrix"]
    assert sum(map(sum, details["confusion"]["matrix"])) > 0
    names = {g["name"] for g in ws.automl.guardrails(job_id)}
    assert any("class" in n.lower() for n in names)


def test_register_deploy_score_and_telemetry(trained) -> None:
    ws, job_id, frame = trained
    model = ws.models.register(job_id, "bank-model", "test model")
    assert model.version == 1 and model.metrics["AUC_weighted"] > 0.8
    spec = ws.models.feature_spec("bank-model", 1)
    assert [c["name"] for c in spec] == [c for c in frame.columns if c != "y"]

    ep = ws.endpoints.deploy("bank-model", 1, "bank-ep")
    assert ep.state == "Creating"
    ep = wait_for(lambda: (e := ws.endpoints.get("bank-ep")).state != "Creating" and e, 60)
    assert ep.state == "Succeeded", ws.endpoints.logs("bank-ep")
    primary, secondary = ws.endpoints.keys("bank-ep")

    # The classic endpoint.py client: scoring URI, Bearer key, {"data": [two records]}.
    records = frame.drop(columns="y").head(2).to_dict("records")
    resp = requests.post(
        ep.scoring_uri,
        json={"data": records},
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {primary}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["result"]) == 2
    assert set(resp.json()["result"]) <= {"yes", "no"}
    assert requests.post(ep.scoring_uri, json={"data": records}, timeout=10).status_code == 401
    assert primary not in ws.endpoints.logs("bank-ep")

    # Served by the compiled numpy model, and identical to the registered model's predict.
    assert "scoring path: compiled" in ws.endpoints.logs("bank-ep")
    import mlflow.pyfunc

    from lib.local import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri(ws.settings.home))
    holdout = frame.drop(columns="y").tail(500)
    expected = list(mlflow.pyfunc.load_model("models:/bank-model/1").predict(holdout))
    served = requests.post(
        ep.scoring_uri,
        data=json.dumps({"data": json.loads(holdout.to_json(orient="records"))}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {primary}"},
        timeout=30,
    ).json()["result"]
    assert served == expected

    # Three requests so far: 2 rows (200), no key (401), 500 holdout rows (200).
    wait_for(lambda: len(ws.endpoints.requests("bank-ep")) >= 3, 10)
    recent = ws.endpoints.requests("bank-ep")
    assert {"TimeGenerated", "ResultCode", "DurationMs", "Success", "Rows"} <= set(recent.columns)
    assert recent["ResultCode"].astype(int).tolist() == [200, 401, 200]
    assert recent["Rows"].tolist()[::2] == [2, 500]
    assert recent["Success"].tolist() == [True, False, True]


def test_kill_shows_unhealthy_and_restart_recovers(trained) -> None:
    ws, _, frame = trained
    ep = ws.endpoints.get("bank-ep")
    pid = (
        ws.endpoints.store.connect()
        .execute("SELECT pid FROM endpoints WHERE name='bank-ep'")
        .fetchone()[0]
    )
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: ws.endpoints.get("bank-ep").state == "Unhealthy", 10)
    ws.endpoints.restart("bank-ep")
    assert wait_for(lambda: ws.endpoints.get("bank-ep").state == "Succeeded", 60)
    assert ws.endpoints.get("bank-ep").scoring_uri == ep.scoring_uri


def test_redeploy_keeps_uri_and_keys_and_regenerate(trained) -> None:
    ws, job_id, frame = trained
    before = ws.endpoints.get("bank-ep")
    keys_before = ws.endpoints.keys("bank-ep")
    ws.models.register(job_id, "bank-model")  # v2
    ws.endpoints.deploy("bank-model", 2, "bank-ep")
    after = wait_for(lambda: (e := ws.endpoints.get("bank-ep")).state != "Creating" and e, 60)
    assert after.state == "Succeeded" and after.model_version == 2
    assert after.scoring_uri == before.scoring_uri
    assert ws.endpoints.keys("bank-ep") == keys_before

    old_primary, secondary = keys_before
    new_primary, same_secondary = ws.endpoints.regenerate_key("bank-ep", "primary")
    assert new_primary != old_primary and same_secondary == secondary
    body = {"data": frame.drop(columns="y").head(1).to_dict("records")}

    def status(key: str) -> int:
        return requests.post(
            after.scoring_uri, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ).status_code

    assert wait_for(lambda: status(old_primary) == 401, 10)
    assert status(new_primary) == 200 and status(secondary) == 200


def test_bad_endpoint_names_are_refused(trained) -> None:
    ws: Workspace = trained[0]
    from lib.workspace import WorkspaceError

    for bad in ("a", "1abc", "bad_name", "ends-", "x" * 40):
        with pytest.raises(WorkspaceError, match="Endpoint name"):
            ws.endpoints.deploy("bank-model", 1, bad)


def test_pages_drive_the_loop(trained, monkeypatch) -> None:
    """AutoML, Endpoints and Score pages against the trained workspace (AppTest, real HTTP)."""
    ws, job_id, _ = trained
    monkeypatch.setenv("OPSDECK_HOME", str(ws.settings.home))
    from tests.pages.conftest import button, open_page

    at = open_page("automl.py")
    assert any(job_id in m.value for m in at.markdown)
    board = next(d.value for d in at.dataframe if "estimator" in getattr(d.value, "columns", []))
    board = getattr(board, "data", board)  # a Styler when the best row is highlighted
    assert "AUC_weighted" in board.columns and len(board) >= 2
    assert len(at.get("plotly_chart")) == 3  # best score over time, algorithms, ROC
    # The model-detail tabs each build their own chart when opened.
    for tab in ("Precision-recall", "Confusion matrix", "Calibration", "Feature importance"):
        at.session_state["automl_details"] = tab
        at.run()
        assert not at.exception and len(at.get("plotly_chart")) == 3, tab

    at = open_page("endpoints.py")
    assert any("bank-ep — Succeeded" in s.label for s in at.status)
    assert any("/score" in c.value for c in at.code)
    # Keys are masked until revealed.
    at.session_state["endpoints_tab"] = "Keys"
    at.run()
    primary = ws.endpoints.keys("bank-ep")[0]
    masked = [t.value for t in at.text_input if t.key and t.key.startswith("endpoints_primary")]
    assert masked and all(primary not in (v or "") for v in masked)
    # Regenerated, the masked box shows the new key's end (it kept the old one's)
    button(at, "Regenerate primary").click().run()
    assert not at.exception, at.exception
    fresh = ws.endpoints.keys("bank-ep")[0]
    assert fresh != primary
    assert at.text_input(key="endpoints_primary_bank-ep").value.endswith(fresh[-4:])
    assert any("Primary key of **bank-ep** regenerated" in s.value for s in at.success)

    at = open_page("score.py")
    button(at, "Score").click().run()
    assert not at.exception
    prediction = {m.label: m.value for m in at.metric}["Prediction"]
    assert prediction in ("yes", "no")


def test_benchmark_page_loads_the_endpoint_with_real_rows(trained, monkeypatch) -> None:
    ws, _, _ = trained
    monkeypatch.setenv("OPSDECK_HOME", str(ws.settings.home))
    from tests.pages.conftest import button, open_page

    at = open_page("benchmarks.py")
    assert at.selectbox(key="bench_target").value == "bank-ep"
    assert at.selectbox(key="bench_dataset_bank-ep").value == "bank"
    at.number_input(key="bench_requests").set_value(300).run()
    button(at, "Run benchmark").click().run()
    assert not at.exception
    job_id = at.session_state["bench_job"]
    job = wait_for(lambda: (j := ws.benchmarks.get(job_id)).is_terminal and j, 60)
    assert job.state == "Completed", ws.benchmarks.log_tail(job_id)
    result, _ = ws.benchmarks.result(ws.benchmarks.run_id(job_id))
    assert result.requests == 300 and result.status_counts == {"200": 300}


def test_models_page_shows_which_version_is_live(trained, monkeypatch) -> None:
    ws, _, _ = trained
    monkeypatch.setenv("OPSDECK_HOME", str(ws.settings.home))
    from tests.pages.conftest import open_page

    at = open_page("models.py")
    table = at.dataframe(key="models_table").value
    live = dict(zip(table["version"], table["live on"], strict=True))
    assert live[2] == "bank-ep (Succeeded)" and live[1] == ""
