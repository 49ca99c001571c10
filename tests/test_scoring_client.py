from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lib.scoring import (
    BatchScoringError,
    ScoringError,
    build_payload,
    curl_snippet,
    date_help,
    decimals_format,
    fetch_swagger,
    number_help,
    parse_predictions,
    post_json,
    python_snippet,
    score,
    score_frame,
)
from tests.local.conftest import _serve
from tests.local.scoring_models import loaded, records, registered


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    registered(base)
    ep, server = _serve(
        tmp_path_factory.mktemp("client"), loaded(base, "fast"), "client-ep", max_rows=100
    )
    yield ep
    server.stop()
    ep.writer.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    models = registered(tmp_path_factory.getbasetemp())
    return models.frame, list(loaded(tmp_path_factory.getbasetemp(), "fast").predict(models.frame))


def test_build_payload_shapes():
    rows = [{"a": 1, "b": float("nan")}, {"a": np.int64(2), "b": "x"}]
    assert build_payload(rows) == {"data": [{"a": 1, "b": None}, {"a": 2, "b": "x"}]}
    assert build_payload(rows, "inputs", "predict_proba")["GlobalParameters"] == {
        "method": "predict_proba"
    }
    split = build_payload(rows, "input_data")["input_data"]
    assert split == {"columns": ["a", "b"], "index": [0, 1], "data": [[1, None], [2, "x"]]}
    with pytest.raises(ValueError):
        build_payload(rows, "csv")


def test_a_batch_files_dates_are_sent_as_iso_text():
    """A batch CSV read with a date column holds Timestamps: the request failed to serialise
    ('Object of type Timestamp is not JSON serializable') and the Score page crashed."""
    import datetime as dt

    import pandas as pd

    frame = pd.DataFrame(
        {"Date": pd.to_datetime(["03/15/2023", None], format="%m/%d/%Y"), "Price": [1.5, 2.0]}
    )
    frame["day"] = [dt.date(2023, 3, 15), dt.time(14, 35)]
    body = json.loads(json.dumps(build_payload(frame.to_dict("records"))))
    assert body["data"][0] == {"Date": "2023-03-15T00:00:00", "Price": 1.5, "day": "2023-03-15"}
    assert body["data"][1]["Date"] is None and body["data"][1]["day"] == "14:35:00"


def test_a_predicted_amount_reads_as_an_amount():
    from lib.scoring import prediction_text

    assert prediction_text(40604.118273) == "40,604.12"
    assert prediction_text(-1234567.891) == "-1,234,567.89"
    assert prediction_text(3.14159) == "3.142" and prediction_text(0.000123456) == "0.0001235"
    assert prediction_text("yes") == "yes" and prediction_text(1) == "1"
    assert prediction_text(True) == "True" and prediction_text(float("nan")) == "nan"


def test_parse_predictions_handles_every_answer_shape():
    assert parse_predictions({"Results": [1]}, "inputs") == [1]
    assert parse_predictions({"result": ["a"]}, "data") == ["a"]
    assert parse_predictions([0.5], "input_data") == [0.5]
    assert parse_predictions('{"result": ["yes", "no"]}', "data") == ["yes", "no"]  # classic ACI
    with pytest.raises(ScoringError):
        parse_predictions({"unexpected": 1}, "data")


@pytest.mark.parametrize("shape", ["data", "inputs", "input_data"])
def test_score_every_shape(endpoint, data, shape):
    frame, expected = data
    resp = score(endpoint.url + "/score", endpoint.primary, records(frame, 10), shape=shape)
    assert resp.status_code == 200 and resp.predictions == expected[:10]
    assert resp.probabilities is None and resp.latency_ms > 0
    proba = score(
        endpoint.url + "/score",
        endpoint.secondary,
        records(frame, 10),
        shape=shape,
        method="predict_proba",
    )
    assert proba.classes == ["no", "yes"]
    assert proba.predictions == expected[:10]  # derived from the probabilities
    assert all(abs(sum(p) - 1) < 1e-9 for p in proba.probabilities)


def test_errors_carry_the_server_message_not_the_key(endpoint, data):
    frame, _ = data
    with pytest.raises(ScoringError) as err:
        score(endpoint.url + "/score", endpoint.primary, [{**records(frame, 1)[0], "age": "old"}])
    assert err.value.status_code == 400 and "'age'" in err.value.message
    bad_key = "not-the-key-123"
    with pytest.raises(ScoringError) as err:
        score(endpoint.url + "/score", bad_key, records(frame, 1))
    assert err.value.status_code == 401 and bad_key not in str(err.value)
    with pytest.raises(ScoringError, match="could not reach"):
        score("http://127.0.0.1:9/score", endpoint.primary, records(frame, 1), timeout=2)


def test_score_frame_in_chunks_with_progress(endpoint, data):
    frame, expected = data
    calls = []
    out = score_frame(
        endpoint.url + "/score",
        endpoint.primary,
        frame,
        chunk_size=90,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert list(out["prediction"]) == expected
    assert calls == [(90, 400), (180, 400), (270, 400), (360, 400), (400, 400)]
    out = score_frame(
        endpoint.url + "/score",
        endpoint.primary,
        frame.head(7),
        chunk_size=3,
        method="predict_proba",
        shape="inputs",
    )
    assert list(out["prediction"]) == expected[:7]
    assert np.allclose(out["proba_no"] + out["proba_yes"], 1)


def test_rows_the_endpoint_refuses_are_set_aside_and_the_others_scored(endpoint, data):
    """One 'abc' in a 50-row file failed all 50 rows; now up to `skip_refused` rows are set
    aside, each with the endpoint's reason in the file's row numbers."""
    frame, expected = data
    bad = frame.head(20).copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc[[3, 11, 12], "age"] = ["abc", "old", "?!"]
    out = score_frame(endpoint.url + "/score", endpoint.primary, bad, chunk_size=8, skip_refused=5)
    assert len(out) == 20 and list(out.index) == list(bad.index)
    refused = out[out["error"] != ""]
    assert list(refused.index) == [3, 11, 12]
    assert refused["prediction"].isna().all()
    assert refused.loc[3, "error"] == "Row 4, column 'age': expected an integer, got \"abc\""
    assert refused.loc[12, "error"].startswith("Row 13, column 'age'")
    good = [i for i in range(20) if i not in (3, 11, 12)]
    assert list(out.loc[good, "prediction"]) == [expected[i] for i in good]
    # More refused rows than allowed stop the batch with the rows scored before it
    with pytest.raises(BatchScoringError) as err:
        score_frame(endpoint.url + "/score", endpoint.primary, bad, chunk_size=8, skip_refused=2)
    assert err.value.first == 8 and list(err.value.scored.index) == [0, 1, 2, 4, 5, 6, 7]
    # ... and so does a failure that names no row (a wrong key)
    with pytest.raises(BatchScoringError):
        score_frame(endpoint.url + "/score", "wrong-key", bad, skip_refused=5)


def test_curl_snippet_runs_as_shown_with_the_exported_key(endpoint, data):
    frame, expected = data
    rows = records(frame, 2)
    rows[0]["job"] = "it's"  # a quote inside the body survives the shell quoting
    snippet = curl_snippet(endpoint.url + "/score", rows, shape="inputs")
    assert endpoint.primary not in snippet and "SCORING_KEY" in snippet
    # Exactly as a user pastes it: the exported key first, then the snippet unchanged.
    script = f"export SCORING_KEY='{endpoint.primary}'\n{snippet}"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Results"][1] == expected[1]
    env = {k: v for k, v in os.environ.items() if k != "SCORING_KEY"}
    unset = subprocess.run(["bash", "-c", snippet], env=env, capture_output=True, text=True)
    assert unset.returncode != 0 and "export an endpoint key first" in unset.stderr


def test_python_snippet_runs_with_the_key_from_the_environment(endpoint, data):
    frame, expected = data
    rows = records(frame, 2)
    rows[0]["balance"] = None
    snippet = python_snippet(endpoint.url + "/score", rows, shape="input_data")
    assert endpoint.primary not in snippet and 'os.environ["SCORING_KEY"]' in snippet
    out = subprocess.run(
        [sys.executable, "-c", snippet],
        env={**os.environ, "SCORING_KEY": endpoint.primary},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.replace("'", '"'))[1] == expected[1]


def test_post_json_returns_any_answer_unchanged(endpoint, data):
    frame, expected = data
    good = post_json(endpoint.url + "/score", endpoint.primary, {"data": records(frame, 2)})
    assert good.ok and good.status_code == 200 and good.latency_ms > 0
    assert good.body == {"result": expected[:2]}
    bad = post_json(endpoint.url + "/score", endpoint.primary, {"rows": []})
    assert not bad.ok and 400 <= bad.status_code < 500
    assert "message" in bad.body and bad.text
    denied = post_json(endpoint.url + "/score", None, {"data": records(frame, 1)})
    assert denied.status_code == 401
    with pytest.raises(ScoringError, match="could not reach"):
        post_json("http://127.0.0.1:9/score", endpoint.primary, {"data": []}, timeout=2)


def test_fetch_swagger_or_none(endpoint):
    document = fetch_swagger(endpoint.url + "/swagger.json")
    assert document is not None and "/score" in document["paths"]
    assert fetch_swagger("http://127.0.0.1:9/swagger.json") is None
    assert fetch_swagger(endpoint.url + "/no-such-document.json") is None


def test_number_help_names_the_range_and_the_numbers_read_as_missing() -> None:
    assert number_help({"min": 0.0, "max": 99.5}) == "training range 0.0 … 99.5"
    station = {"min": 0.0, "max": 99.5, "missing_values": [-999.0]}
    assert number_help(station) == "training range 0.0 … 99.5; -999 is read as no value"
    both = {"min": None, "max": None, "missing_values": [-999.0, 9999.0]}
    assert number_help(both) == "-999, 9999 are read as no value"
    assert number_help({"min": None}) is None


def test_date_help_shows_the_uploads_format_beside_iso() -> None:
    assert date_help(None).startswith("ISO 8601")
    assert date_help("%d/%m/%Y").endswith("e.g. 31/05/2024")
    assert date_help("%m/%d/%Y %H:%M").endswith("e.g. 05/31/2024 13:45")


def test_a_number_field_shows_its_example_as_written() -> None:
    assert decimals_format(92.893) == "%.3f"  # Bank Marketing's cons.price.idx read 92.89
    assert decimals_format(-46.2) == "%.2f" and decimals_format(4963.6) == "%.2f"
    assert decimals_format(0.123456789) == "%.6f" and decimals_format(1e-9) == "%.2f"
    assert decimals_format(3.0) == "%.2f"
