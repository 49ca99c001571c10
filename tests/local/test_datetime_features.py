"""Datetime columns are date features: parsed from any record form, expanded into date parts."""

from __future__ import annotations

import math
import pickle
from datetime import date, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from lib.local import tracking
from lib.local.automl_engine import AutoMLSpec, run_automl
from lib.local.fastpath import RecordEncoder, compile_model, load
from lib.local.fastpath.encoder import DATETIME, date_parts, to_datetime
from lib.local.tabular_model import Encoder
from lib.tabular import parse_table

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


def test_automl_learns_the_month_and_every_path_scores_iso_text_alike(tmp_path: Path) -> None:
    train, holdout = _uploaded(600, seed=3), _uploaded(300, seed=4)
    assert pd.api.types.is_datetime64_any_dtype(train["when"])  # detected at upload
    tracking.ensure_store(tmp_path)
    result = run_automl(
        train,
        AutoMLSpec(
            target="bought",
            time_budget_s=5,
            max_trials=4,
            estimators=["lgbm"],
            ensemble=False,
            features=["when", "noise", "plan"],
        ),
        tracking_uri=tracking.tracking_uri(tmp_path),
        artifact_dir=tmp_path / "artifacts",
        fastpath_dir=tmp_path / "fastpath",
        log=lambda _: None,
    )
    assert [(f["name"], f["kind"]) for f in result.feature_spec] == [
        ("when", "datetime"),
        ("noise", "numeric"),
        ("plan", "categorical"),
    ]
    model = mlflow.pyfunc.load_model(result.model_uri)
    raw = model.unwrap_python_model()
    X = holdout.drop(columns=["bought"])
    expected = list(raw.predict(None, X))
    truth = holdout["bought"].tolist()
    accuracy = np.mean([p == t for p, t in zip(expected, truth, strict=True)])
    majority = max(truth.count("yes"), truth.count("no")) / len(truth)
    assert accuracy >= majority + 0.25, (accuracy, majority)
    assert any(r["feature"].startswith("when") for r in result.details["feature_importance"][:2])

    records = [{**r, "when": r["when"].date().isoformat()} for r in X.to_dict("records")]
    assert raw.fast_predict(records) == expected
    # The registered signature types the date as text, which is what JSON clients send.
    assert list(model.predict(pd.DataFrame(records))) == expected
    compiled = compile_model(raw)
    assert compiled.predict_records(records) == expected
    if result.fastpath and result.fastpath["ok"]:
        assert load(tmp_path / "fastpath").predict_records(records) == expected
