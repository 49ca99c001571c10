from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from lib.local.tabular_model import (
    CATEGORICAL,
    NUMERIC,
    Encoder,
    Member,
    TabularModel,
    write_model_code,
)
from lib.tabular import date_formats, parse_table

REPO = Path(__file__).resolve().parents[2]


def _frame(n: int = 800, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "amount": rng.normal(100, 30, n).round(2),
            "count": rng.integers(0, 20, n),
            "colour": rng.choice(["red", "green", "blue", "amber"], n),
            "flag": rng.choice([True, False], n),
        }
    )
    X.loc[rng.choice(n, n // 20, replace=False), "amount"] = np.nan
    X.loc[rng.choice(n, n // 20, replace=False), "colour"] = None
    logit = 0.04 * (X["amount"].fillna(100) - 100) + (X["colour"] == "red") * 1.5 - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y


def _binary_model(kinds: tuple[str, ...] = ("lgbm",), threshold: float = 0.5) -> TabularModel:
    X_df, y = _frame()
    enc = Encoder.from_frame(X_df)
    X = enc.encode_frame(X_df)
    members = []
    for kind in kinds:
        if kind == "lgbm":
            m = lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(
                X, y, categorical_feature=enc.categorical_indices
            )
            members.append(Member("lgbm", m.booster_, weight=2.0, name="lgbm"))
        elif kind == "xgboost":
            m = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
            members.append(Member("xgboost", m.get_booster(), name="xgboost"))
        else:
            m = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
            members.append(Member("sklearn", m, name="rf"))
    return TabularModel(
        task="classification",
        encoder=enc,
        members=members,
        classes=["no", "yes"],
        threshold=threshold,
        positive_label="yes",
    )


def _records(df: pd.DataFrame) -> list[dict]:
    """Records as a JSON client would send them (NaN -> null)."""
    return json.loads(df.to_json(orient="records"))


def test_feature_spec_describes_training_columns() -> None:
    spec = {f["name"]: f for f in _binary_model().feature_spec}
    assert spec["amount"]["kind"] == NUMERIC and spec["amount"]["min"] < spec["amount"]["max"]
    assert spec["count"]["kind"] == NUMERIC and isinstance(spec["count"]["example"], int)
    assert spec["colour"]["kind"] == CATEGORICAL
    assert sorted(spec["colour"]["categories"]) == ["amber", "blue", "green", "red"]
    assert spec["colour"]["example"] in spec["colour"]["categories"]
    assert spec["flag"]["kind"] == NUMERIC


def test_encoding_of_records_matches_frame_including_unseen_and_missing() -> None:
    enc = Encoder.from_frame(_frame()[0])
    df = pd.DataFrame(
        {
            "amount": [1.5, np.nan, 3.0],
            "count": [1, 2, 3],
            "colour": ["red", "violet", None],
            "flag": [True, False, True],
        }
    )
    a = enc.encode_frame(df)
    b = enc.encode_records(_records(df))
    np.testing.assert_array_equal(a, b)
    col = enc.columns.index("colour")
    assert not math.isnan(a[0, col])
    assert math.isnan(a[1, col]) and math.isnan(a[2, col])  # unseen and missing
    # a missing column is missing, strings that look numeric are numbers
    c = enc.encode_records([{"amount": "2.5", "colour": "red"}])
    assert c[0, enc.columns.index("amount")] == 2.5
    assert math.isnan(c[0, enc.columns.index("count")])


def test_numbers_written_for_people_encode_as_the_upload_read_them() -> None:
    """A client sending the text an uploaded file had ("$1,234.50", "12%") gets the number the
    model was trained on, on the record and the frame path alike; other text stays missing."""
    written = ["$1,234.50", "12%", "-$5", "1,000,000", " 7 ", ".5%", "(1,234.50)", "( $5 )"]
    written += ["1,5", "abc", "$", "1,23", "(-5)", "()"]
    data = ("amount,n\n" + "".join(f'"{v}",{i}\n' for i, v in enumerate(written[:8]))).encode()
    uploaded = parse_table("people.csv", data).frame["amount"].tolist()
    assert uploaded == [1234.5, 12.0, -5.0, 1_000_000.0, 7.0, 0.5, -1234.5, -5.0]
    enc = Encoder.from_frame(pd.DataFrame({"amount": uploaded}))
    records = enc.encode_records([{"amount": v} for v in written])[:, 0]
    frame = enc.encode_frame(pd.DataFrame({"amount": written}))[:, 0]
    np.testing.assert_array_equal(records, frame)
    assert records[:8].tolist() == uploaded
    # a decimal comma, words, a bare sign, a signed or empty accounting amount: not numbers
    assert np.isnan(records[8:]).all()
    # the same text is no number to the upload either: such a column stays text
    kept = parse_table("t.csv", b'v\n"1,5"\nabc\n$\n"1,23"\n').frame["v"]
    assert str(kept.dtype) == "str"
    # the minus sign of tables copied from web pages (U+2212), in the file and from a client
    minus = parse_table("w.csv", 'amount\n"\u22121,234.5"\n3\n'.encode()).frame["amount"]
    assert minus.tolist() == [-1234.5, 3.0]
    assert enc.encode_records([{"amount": "\u22121,234.5"}])[0, 0] == -1234.5


def test_times_of_day_encode_as_the_upload_read_them() -> None:
    """A client sends "14:35" as the file wrote it; the model reads the hour and the time."""
    parsed = parse_table("t.csv", b"at,n\n14:35,1\n09:05,2\n23:59,3\n")
    enc = Encoder.from_frame(
        parsed.frame[["at"]], datetime_formats=date_formats(parsed.table.schema)
    )
    records = enc.encode_records([{"at": "14:35"}, {"at": "1900-01-01T09:05"}, {"at": "noon"}])
    frame = enc.encode_frame(parsed.frame[["at"]])
    np.testing.assert_array_equal(records[:2], frame[:2])
    hour = enc.encoded_columns.index("at (hour)")
    assert records[:2, hour].tolist() == [14.0, 9.0]
    assert np.isnan(records[2]).all()


def test_a_portals_12_hour_datetimes_encode_as_the_upload_read_them() -> None:
    parsed = parse_table("t.csv", b"at,n\n01/05/2024 02:35:00 PM,1\n07/04/2024 12:00:00 AM,2\n")
    enc = Encoder.from_frame(
        parsed.frame[["at"]], datetime_formats=date_formats(parsed.table.schema)
    )
    sent = [{"at": "01/05/2024 02:35:00 PM"}, {"at": "7/4/2024 12:00:00 am"}]
    np.testing.assert_array_equal(enc.encode_records(sent), enc.encode_frame(parsed.frame[["at"]]))
    assert enc.encode_records(sent)[0, enc.encoded_columns.index("at (hour)")] == 14.0
    # A zone named after the time (BigQuery) reads as the upload reads it: UTC.
    zoned = parse_table("z.csv", b"at,n\n2024-01-05 14:35:00 UTC,1\n2024-07-04 00:00:00 UTC,2\n")
    enc = Encoder.from_frame(zoned.frame[["at"]])
    np.testing.assert_array_equal(
        enc.encode_records([{"at": "2024-01-05 14:35:00 UTC"}, {"at": "2024-07-04T00:00:00Z"}]),
        enc.encode_frame(zoned.frame[["at"]]),
    )


def test_categories_match_without_the_spaces_a_file_left_around_them() -> None:
    # "a, b" files (the Adult census data) keep a leading space in every text value.
    enc = Encoder.from_frame(pd.DataFrame({"work": [" Private", " State-gov", "Self emp"]}))
    codes = enc.encode_records(
        [{"work": v} for v in (" Private", "Private", "Private ", "State-gov", "Self emp", "x")]
    )[:, 0]
    frame = enc.encode_frame(pd.DataFrame({"work": ["Private", " State-gov", "Self  emp"]}))[:, 0]
    assert codes[0] == codes[1] == codes[2] == frame[0]
    assert codes[3] == frame[1] != codes[0]
    assert codes[4] != codes[3] and not math.isnan(codes[4])
    assert math.isnan(codes[5]) and math.isnan(frame[2])  # spaces inside still matter


@pytest.mark.parametrize("kinds", [("lgbm",), ("xgboost",), ("sklearn",), ("lgbm", "xgboost")])
def test_fast_path_is_identical_to_predict(kinds: tuple[str, ...]) -> None:
    model = _binary_model(kinds, threshold=0.4)
    X_df, _ = _frame(200, seed=5)
    labels = model.predict(None, X_df)
    proba = model.predict_proba_frame(X_df)
    records = _records(X_df)
    assert list(labels) == model.fast_predict(records)
    np.testing.assert_array_equal(np.array(model.fast_predict_proba(records)), proba)
    # one row at a time (single-threaded native path) gives the same answers
    assert [model.fast_predict([r])[0] for r in records[:20]] == list(labels[:20])
    # labels are the thresholded positive-class probability, in the original label space
    expected = np.where(proba[:, 1] >= 0.4, "yes", "no")
    assert list(labels) == list(expected)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_ensemble_is_the_weighted_average_of_members() -> None:
    both = _binary_model(("lgbm", "xgboost"))
    lg = _binary_model(("lgbm",))
    xg = _binary_model(("xgboost",))
    X_df, _ = _frame(50, seed=3)
    expected = (2 * lg.predict_proba_frame(X_df) + xg.predict_proba_frame(X_df)) / 3
    np.testing.assert_allclose(both.predict_proba_frame(X_df), expected, rtol=1e-12)


def test_regression_model() -> None:
    X_df, y = _frame()
    enc = Encoder.from_frame(X_df)
    X = enc.encode_frame(X_df)
    target = y * 10.0 + np.nan_to_num(X[:, 0])
    rf = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, target)
    booster = lgb.LGBMRegressor(n_estimators=20, verbose=-1).fit(X, target).booster_
    model = TabularModel(
        task="regression",
        encoder=enc,
        members=[Member("sklearn", rf), Member("lgbm", booster)],
    )
    out = model.predict(None, X_df.head(30))
    assert out.dtype == np.float64 and out.shape == (30,)
    assert model.fast_predict(_records(X_df.head(30))) == out.tolist()
    with pytest.raises(ValueError):
        model.fast_predict_proba(_records(X_df.head(1)))


@pytest.mark.slow
@pytest.mark.parametrize("where", ["repository", "elsewhere"])
def test_saved_model_loads_in_a_fresh_process(tmp_path: Path, where: str) -> None:
    """In the repository its own ``lib`` wins; elsewhere only the code shipped in the model."""
    model = _binary_model(("lgbm", "xgboost"))
    X_df, _ = _frame(30, seed=9)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    code_dir = write_model_code(tmp_path / "code")
    example = X_df.head(3).astype({"colour": object})
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            input_example=example,
            signature=mlflow.models.infer_signature(example, model.predict(None, example)),
            code_paths=[str(code_dir)],
            pip_requirements=["lightgbm", "xgboost"],
        )
    uri = f"runs:/{run.info.run_id}/model"
    X_df.to_json(tmp_path / "rows.json", orient="records")
    script = f"""
import json, sys, mlflow, pandas as pd
mlflow.set_tracking_uri("sqlite:///{tmp_path}/mlflow.db")
m = mlflow.pyfunc.load_model("{uri}")
raw = m.unwrap_python_model()
records = json.load(open("{tmp_path}/rows.json"))
df = pd.DataFrame(records)
print(json.dumps({{"pyfunc": [str(v) for v in m.predict(df)],
                  "fast": raw.fast_predict(records),
                  "proba": raw.fast_predict_proba(records),
                  "classes": raw.classes_, "threshold": raw.threshold,
                  "module": type(raw).__module__,
                  "encoder": sys.modules[type(raw.encoder).__mro__[1].__module__].__file__}}))
"""
    cwd = REPO if where == "repository" else tmp_path
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["pyfunc"] == got["fast"] == list(model.predict(None, X_df))
    np.testing.assert_allclose(got["proba"], model.predict_proba_frame(X_df), rtol=1e-12)
    assert got["classes"] == ["no", "yes"] and got["threshold"] == 0.5
    assert got["module"] == "lib.local.tabular_model"
    shipped = not got["encoder"].startswith(str(REPO / "lib"))
    assert shipped == (where == "elsewhere"), got["encoder"]


def test_encoder_state_of_registered_models_still_unpickles() -> None:
    """Registered models pickle the encoder's attributes: they must keep working as they are."""
    enc = Encoder.from_frame(_frame()[0])
    # What models registered before the shared record encoder carry in their pickles.
    assert set(enc.__dict__) == {
        "feature_spec",
        "columns",
        "kinds",
        "_lookups",
        "categorical_indices",
    }
    state = pickle.loads(pickle.dumps(dict(enc.__dict__)))
    restored = Encoder.__new__(Encoder)
    restored.__dict__.update(state)  # what unpickling does
    records = [{"amount": 1.5, "count": 2, "colour": "red", "flag": True}, {"colour": None}]
    np.testing.assert_array_equal(restored.encode_records(records), enc.encode_records(records))
    frame = pd.DataFrame(records)
    np.testing.assert_array_equal(restored.encode_frame(frame), enc.encode_frame(frame))
