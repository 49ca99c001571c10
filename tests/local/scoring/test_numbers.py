"""Hostile numbers: overflowing literals, integers past int64, values far outside the training
range. Each gets a 4xx naming the field or a finite answer; never a 500 or a NaN in a response."""

from __future__ import annotations

import json
import math

import pytest
import requests

from lib.local.scoring import ScoringSettings, create_app
from lib.local.scoring.payloads import Column, InputError, render_body, validate_records
from lib.local.scoring.served_model import ServedModel
from tests.local.scoring.test_app import auth
from tests.support.servers import LiveServer

COLUMNS = [
    Column("age", "integer", minimum=18, maximum=89),
    Column("balance", "number", minimum=-1500.0, maximum=3900.0),
    Column("ratio", "number", dtype="float", required=False),
    Column("job", "string"),
]
GOOD = {"age": 41, "balance": 10.5, "job": "admin."}


def _row(**values) -> dict:
    return {**GOOD, **values}


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        (_row(balance=math.inf), "column 'balance': number out of range"),
        (_row(balance=-math.inf), "column 'balance': number out of range"),
        (_row(balance=10**400), "column 'balance': number out of range"),
        (_row(balance="9" * 400), "column 'balance': number out of range"),
        (_row(balance="1e999"), "column 'balance': expected a number"),
        (_row(ratio=1e39), "column 'ratio': number out of range"),  # float32 overflows
        (_row(age=2**63), "column 'age': integer out of range"),
        (_row(age=-(2**63) - 1), "column 'age': integer out of range"),
        (_row(age=10**400), "column 'age': integer out of range"),
        (_row(age=1e300), "column 'age': integer out of range"),
        (_row(age="9" * 30), "column 'age': integer out of range"),
        (_row(age=math.inf), "column 'age': expected an integer"),
    ],
)
def test_out_of_range_numbers_name_the_column(record, needle):
    with pytest.raises(InputError) as err:
        validate_records([dict(GOOD), record], COLUMNS, 10)
    assert "Row 1" in str(err.value) and needle in str(err.value)
    assert err.value.status == 400


def test_the_extremes_that_fit_are_accepted():
    rows = [
        _row(age=2**63 - 1, balance=1.7e308, ratio=3.4e38),
        _row(age=-(2**63), balance=-1.7e308),
        _row(age="-9223372036854775808", balance="1e308"),
    ]
    validate_records(rows, COLUMNS, 10)
    assert rows[2]["age"] == -(2**63) and rows[2]["balance"] == 1e308


def test_a_nan_prediction_is_a_422_naming_the_row_and_the_unusual_columns():
    records = [dict(GOOD), _row(balance=1e300)]
    with pytest.raises(InputError) as err:
        render_body("data", ["no", math.nan], records, COLUMNS)
    message = str(err.value)
    assert err.value.status == 422
    assert message.startswith("Row 1: the model gave no finite prediction")
    assert "column 'balance' = 1e+300 is outside its training range (-1500.0 to 3900.0)" in message
    with pytest.raises(InputError, match="Row 0: .*no column is outside"):
        render_body("inputs", [[0.5, math.inf]], [dict(GOOD)], COLUMNS)
    assert render_body("input_data", [[0.25, 0.75]], [dict(GOOD)], COLUMNS) == b"[[0.25,0.75]]"


def _body(**values) -> str:
    row = {"age": 40, "balance": 1, "job": "admin.", "contact": "cellular"}
    row.update(values)
    # Raw JSON text: 1e999 and 400-digit integers must reach the server as literals.
    text = json.dumps({"data": [row]})
    for literal in values.values():
        if isinstance(literal, str) and literal.startswith("RAW:"):
            text = text.replace(json.dumps(literal), literal[4:])
    return text


HOSTILE = {
    "1e999 in a number column": _body(balance="RAW:1e999"),
    "-1e999 in a number column": _body(balance="RAW:-1e999"),
    "1e999 in an integer column": _body(age="RAW:1e999"),
    "a 400-digit integer in an integer column": _body(age="RAW:" + "9" * 400),
    "a 400-digit integer in a number column": _body(balance="RAW:" + "9" * 400),
    "a 5,000-digit integer in an integer column": _body(age="RAW:" + "9" * 5000),
    "a 5,000-digit integer in a number column": _body(balance="RAW:-" + "9" * 5000),
    "2**63 in an integer column": _body(age="RAW:9223372036854775808"),
    "1e300 in an integer column": _body(age="RAW:1e300"),
    "a 30-digit string in an integer column": _body(age="9" * 30),
}


@pytest.mark.parametrize("which", ["fast_endpoint", "sklearn_endpoint"])
@pytest.mark.parametrize("method", ["predict", "predict_proba"])
@pytest.mark.parametrize("label", list(HOSTILE))
def test_hostile_numbers_get_a_4xx_naming_the_column(request, which, method, label):
    ep = request.getfixturevalue(which)
    r = requests.post(
        f"{ep.url}/score?method={method}",
        data=HOSTILE[label],
        headers={**auth(ep.primary), "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 400, r.text
    column = "balance" if "number column" in label else "age"
    assert f"column '{column}'" in r.json()["message"]


@pytest.mark.parametrize("which", ["fast_endpoint", "sklearn_endpoint"])
def test_values_far_outside_the_training_range_get_a_finite_answer(request, which):
    ep = request.getfixturevalue(which)
    rows = [
        {"age": 2**62, "balance": 1.7e308, "job": "admin.", "contact": "cellular"},
        {"age": -(2**62), "balance": -1.7e308, "job": "technician", "contact": "telephone"},
        {"age": 0, "balance": 5e-324, "job": "unseen", "contact": "cellular"},
    ]
    for method in ("predict", "predict_proba"):
        r = requests.post(
            f"{ep.url}/score?method={method}",
            json={"data": rows},
            headers=auth(ep.primary),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        # Strict parsing: a NaN or Infinity token in the body would raise here.
        text = r.text
        result = json.loads(text, parse_constant=lambda c, t=text: pytest.fail(f"{c} in {t}"))
        assert len(result["result"]) == 3
        if method == "predict_proba":
            for p in result["result"]:
                assert all(math.isfinite(x) for x in p) and math.isclose(sum(p), 1.0)


def test_a_model_answering_nan_gives_a_422_not_a_500():
    def nan_model(records: list[dict]) -> list:
        return [math.nan if r["balance"] > 1e6 else 0.5 for r in records]

    served = ServedModel(
        pyfunc=None,
        columns=COLUMNS,
        path="fast",
        check_message="",
        task="regression",
        _fast_predict=nan_model,
    )
    with LiveServer(create_app(served, ScoringSettings(endpoint="nan-ep"))) as server:
        ok = requests.post(server.url + "/score", json={"data": [GOOD]}, timeout=10)
        assert (ok.status_code, ok.json()) == (200, {"result": [0.5]})
        r = requests.post(
            server.url + "/score", json={"data": [GOOD, _row(balance=1e300)]}, timeout=10
        )
    assert r.status_code == 422
    assert "Row 1" in r.json()["message"] and "column 'balance'" in r.json()["message"]


def test_a_compressed_body_is_refused_by_name(fast_endpoint):
    import gzip

    r = requests.post(
        f"{fast_endpoint.url}/score",
        data=gzip.compress(_body().encode()),
        headers={**auth(fast_endpoint.primary), "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert r.status_code == 415
    assert r.json()["message"] == (
        "Content-Encoding 'gzip' is not supported: send the JSON uncompressed"
    )
