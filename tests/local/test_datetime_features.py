"""Datetime columns are date features: parsed from any record form, expanded into date parts."""

from __future__ import annotations

import math
import pickle
from datetime import date, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from lib.drift import build_baseline
from lib.local import tracking
from lib.local.automl_engine import AutoMLSpec, run_automl
from lib.local.fastpath import RecordEncoder, compile_model, load
from lib.local.fastpath.encoder import DATETIME, date_parts, to_datetime
from lib.local.pipelines.gate import score_model
from lib.local.scoring.served_model import prepare_compiled, prepare_model
from lib.local.tabular_model import Encoder
from lib.model_signature import column_from_signature, learn_feature_spec, merge_feature_spec
from lib.tabular import parse_table
from tests.support.populate import trained
from tests.support.waiting import wait_for

PARTS = ["days", "year", "month", "day", "weekday"]


def _uploaded(n: int, seed: int) -> pd.DataFrame:
    """Rows as an upload reads them: dates over two years; summer months say yes."""
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 730, n)
    when = pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D")
    frame = pd.DataFrame(
        {
            "when": [d.strftime("%Y-%m-%d") for d in when],
            "noise": rng.normal(size=n).round(3),
            "plan": rng.choice(["a", "b", "c"], n),
            "bought": np.where(when.month.isin([5, 6, 7, 8, 9]), "yes", "no"),
        }
    )
    return parse_table("sales.csv", frame.to_csv(index=False).encode()).frame


def test_values_of_every_form_parse_to_the_same_parts() -> None:
    expected = date_parts("2024-05-01T13:45:00", [*PARTS, "hour"])
    assert expected == [19844 + (13 * 60 + 45) / 1440, 2024.0, 5.0, 1.0, 2.0, 13.0]
    for value in (
        "2024-05-01 13:45:00",
        " 2024-05-01T13:45:00 ",
        "2024-05-01T13:45:00Z",
        "2024-05-01T15:45:00+02:00",  # aware values are compared in UTC
        datetime(2024, 5, 1, 13, 45),
        pd.Timestamp("2024-05-01 13:45", tz="UTC"),
        np.datetime64("2024-05-01T13:45:00"),
    ):
        assert date_parts(value, [*PARTS, "hour"]) == expected, value
    assert to_datetime(date(2024, 5, 1)) == datetime(2024, 5, 1)
    assert date_parts("2024-05-01", PARTS) == [19844.0, 2024.0, 5.0, 1.0, 2.0]
    for missing in (None, math.nan, pd.NaT, np.datetime64("NaT"), "", "soon", "01/05/2024", 3):
        assert all(math.isnan(v) for v in date_parts(missing, PARTS)), missing
    # The column's own format, when the spec has one, after ISO.
    assert date_parts("01/05/2024", PARTS, "%d/%m/%Y") == date_parts("2024-05-01", PARTS)
    # ISO 8601's month is its first day, with or without a format of the column's own
    for fmt in (None, "%b-%Y"):
        assert date_parts("2024-05", PARTS, fmt) == date_parts("2024-05-01", PARTS)
    assert all(math.isnan(v) for v in date_parts("2024-13", PARTS))


def test_frame_and_records_encode_alike_with_shifted_category_positions() -> None:
    frame = pd.DataFrame(
        {
            "plan": ["a", "b", None],
            "when": pd.to_datetime(["2024-05-01", None, "2023-12-31"]),
            "colour": ["red", "red", "blue"],
        }
    )
    enc = Encoder.from_frame(frame)
    when = enc.feature_spec[1]
    assert when["kind"] == DATETIME and when["parts"] == PARTS  # no time of day: no hour
    assert when["example"] == "2024-05-01"
    assert [f["name"] for f in enc.feature_spec] == ["plan", "when", "colour"]
    assert enc.encoded_columns == [
        "plan",
        "when",
        "when (year)",
        "when (month)",
        "when (day)",
        "when (weekday)",
        "colour",
    ]
    assert enc.categorical_indices == [0, 6] and enc.width == 7
    x = enc.encode_frame(frame)
    iso = [
        {**r, "when": None if r["when"] is pd.NaT else r["when"].isoformat()}
        for r in frame.to_dict("records")
    ]
    for got in (enc.encode_records(iso), RecordEncoder(enc.feature_spec).encode(iso)):
        np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(x[2, 1:6], [19722.0, 2023.0, 12.0, 31.0, 6.0])
    assert np.isnan(x[1, 1:6]).all()
    restored = pickle.loads(pickle.dumps(enc))
    np.testing.assert_array_equal(restored.encode_records(iso), x)
    # A column without a single value still encodes (all missing).
    np.testing.assert_array_equal(enc.encode_records([{}]), np.full((1, 7), np.nan))


def test_a_spec_without_datetimes_encodes_and_pickles_as_before() -> None:
    spec = [
        {"name": "n", "kind": "numeric", "categories": None},
        {"name": "c", "kind": "categorical", "categories": ["x", "y"]},
    ]
    enc = RecordEncoder(spec)
    assert set(enc.__dict__) == {"feature_spec", "columns", "_lookups"}
    assert enc.width == 2 and enc.offsets == [0, 1] and enc.encoded_columns == ["n", "c"]
    np.testing.assert_array_equal(
        enc.encode([{"n": "2.5", "c": "y"}, {"n": None, "c": "z"}]),
        [[2.5, 1.0], [np.nan, np.nan]],
    )


def _run(home: Path, frame: pd.DataFrame, **spec) -> tuple:
    tracking.ensure_store(home)
    logs: list[str] = []
    result = run_automl(
        frame,
        AutoMLSpec(time_budget_s=5, max_trials=4, estimators=["lgbm"], ensemble=False, **spec),
        tracking_uri=tracking.tracking_uri(home),
        artifact_dir=home / "artifacts",
        fastpath_dir=home / "fastpath",
        log=logs.append,
    )
    return result, logs


@pytest.fixture(scope="module")
def month_model(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A small AutoML run on a frame whose date's month decides the target."""
    home = tmp_path_factory.mktemp("dates")
    result, logs = _run(
        home, _uploaded(600, seed=3), target="bought", features=["when", "noise", "plan"]
    )
    return home, result, logs


def _iso_records(frame: pd.DataFrame) -> list[dict]:
    return [{**r, "when": r["when"].date().isoformat()} for r in frame.to_dict("records")]


def test_automl_learns_the_month_and_every_path_scores_iso_text_alike(month_model) -> None:
    home, result, logs = month_model
    holdout = _uploaded(300, seed=4)
    assert [(f["name"], f["kind"]) for f in result.feature_spec] == [
        ("when", "datetime"),
        ("noise", "numeric"),
        ("plan", "categorical"),
    ]
    assert not any("High cardinality" in m and "when" in m for m in logs)
    model = mlflow.pyfunc.load_model(result.model_uri)
    raw = model.unwrap_python_model()
    X = holdout.drop(columns=["bought"])
    expected = list(raw.predict(None, X))
    truth = holdout["bought"].tolist()
    accuracy = np.mean([p == t for p, t in zip(expected, truth, strict=True)])
    majority = max(truth.count("yes"), truth.count("no")) / len(truth)
    assert accuracy >= majority + 0.25, (accuracy, majority)
    top = result.details["feature_importance"][0]["feature"]
    assert top.startswith("when"), result.details["feature_importance"]

    records = _iso_records(X)
    assert raw.fast_predict(records) == expected
    # The registered signature types the date as text, which is what JSON clients send.
    assert list(model.predict(pd.DataFrame(records))) == expected
    assert compile_model(raw).predict_records(records) == expected
    assert result.fastpath["ok"], result.fastpath  # compiled and verified at training
    assert load(home / "fastpath").predict_records(records) == expected


def test_served_paths_take_iso_dates(month_model) -> None:
    home, result, _ = month_model
    records = _iso_records(_uploaded(50, seed=5).drop(columns=["bought"]))
    records[0]["when"] = "2024-07-14T09:30:00Z"
    records[1]["when"] = "not a date"  # missing, as a non-number in a numeric column
    pyfunc = mlflow.pyfunc.load_model(result.model_uri)
    expected = list(pyfunc.predict(pd.DataFrame(records)))
    served = prepare_model(pyfunc, check_records=records)
    assert served.path == "fast", served.check_message  # checked against pyfunc on ISO text
    assert [c.kind for c in served.columns] == ["string", "number", "string"]
    assert served.predict([dict(r) for r in records]) == expected
    compiled = prepare_compiled(load(home / "fastpath"))
    assert compiled.predict([dict(r) for r in records]) == expected
    assert expected[0] == "yes"


def test_gate_scores_a_date_regressor_on_dataset_rows(tmp_path: Path) -> None:
    frame = _uploaded(500, seed=6)
    frame["spend"] = frame["when"].dt.month * 10.0 + frame["noise"]
    result, _ = _run(
        tmp_path,
        frame.drop(columns=["bought"]),
        target="spend",
        task="regression",
        primary_metric="r2_score",
        features=["when", "noise"],
    )
    rows = _uploaded(200, seed=7)
    rows["spend"] = rows["when"].dt.month * 10.0 + rows["noise"]
    r2 = score_model(
        result.model_uri,
        tracking.tracking_uri(tmp_path),
        rows[["when", "noise"]],
        rows["spend"],
        "regression",
        "r2_score",
    )
    assert r2 > 0.9


def test_signature_spec_and_drift_baseline_know_datetimes() -> None:
    frame = pd.DataFrame(
        {"when": pd.to_datetime(["2024-05-01 13:45", None, "2024-06-01 00:00"]), "n": [1, 2, 3]}
    )
    spec = learn_feature_spec(frame)
    assert spec[0] | {"dtype": "x"} == {
        "name": "when",
        "kind": "datetime",
        "dtype": "x",
        "example": "2024-05-01T13:45:00",
        "categories": None,
        "min": None,
        "max": None,
    }
    assert column_from_signature("when", "datetime")["kind"] == "datetime"
    assert merge_feature_spec([("when", "datetime")], [])[0]["kind"] == "datetime"
    assert [p.name for p in build_baseline(frame).profiles] == ["n"]


@pytest.mark.slow
def test_a_deployed_endpoint_scores_iso_dates_and_the_uploads_own_format(local_workspace) -> None:
    ws = local_workspace
    source = _uploaded(600, seed=8)
    # Day first, as many spreadsheets write dates: the model reads that text from clients too.
    frame = source[["when", "plan", "bought"]].assign(when=source["when"].dt.strftime("%d/%m/%Y"))
    ws.datasets.upload("sales", frame.to_csv(index=False).encode(), "sales.csv")
    assert ws.datasets.date_formats("sales", 1) == {"when": "%d/%m/%Y"}
    job = trained(ws, "sales", "bought", 20)
    ws.models.register(job.id, "sales-model", "dates")
    spec = ws.models.feature_spec("sales-model", 1)
    assert [c["kind"] for c in spec] == ["datetime", "categorical"]
    assert spec[0]["format"] == "%d/%m/%Y"  # the Score form's help shows it
    ws.endpoints.deploy("sales-model", 1, "sales-ep")
    try:
        ep = wait_for(lambda: (e := ws.endpoints.get("sales-ep")).state != "Creating" and e, 90)
        assert ep.state == "Succeeded", ws.endpoints.logs("sales-ep")
        assert "scoring path: compiled" in ws.endpoints.logs("sales-ep")
        records = [
            {"when": "2025-07-14", "plan": "a"},
            {"when": "2025-01-03T08:00:00Z", "plan": "b"},
            {"when": "N/A", "plan": "c"},
            {"when": "14/07/2025", "plan": "a"},
            {"when": "03/01/2025", "plan": "b"},
        ]
        resp = requests.post(
            ep.scoring_uri,
            json={"data": records},
            headers={"Authorization": f"Bearer {ws.endpoints.keys('sales-ep')[0]}"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        mlflow.set_tracking_uri(tracking.tracking_uri(ws.settings.home))
        model = mlflow.pyfunc.load_model("models:/sales-model/1")
        assert resp.json()["result"] == list(model.predict(pd.DataFrame(records)))
        assert resp.json()["result"][:2] == ["yes", "no"]
        assert resp.json()["result"][3:] == ["yes", "no"]  # the same days in the upload's format
        # A date the model cannot read is refused with the forms it can, not scored as missing.
        for bad in ("never", "13/45/2025", "July 14, 2025", 20250714):
            resp = requests.post(
                ep.scoring_uri,
                json={"data": [{"when": bad, "plan": "a"}]},
                headers={"Authorization": f"Bearer {ws.endpoints.keys('sales-ep')[0]}"},
                timeout=10,
            )
            assert resp.status_code == 400, (bad, resp.text)
            assert "column 'when': expected a date" in resp.json()["message"]
            assert "e.g. 31/05/2024" in resp.json()["message"]
    finally:
        ws.endpoints.delete("sales-ep")
