"""The app over HTTP on a real server: shapes, probabilities, auth, bad input, routes, telemetry."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest
import requests

from lib.appinsights import TelemetryQuery
from lib.local.scoring import ScoringSettings, create_app, write_keys_file
from lib.local.telemetry import read_requests
from tests.local.scoring_models import LiveServer, records


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_health_and_docs_need_no_key(fast_endpoint):
    r = requests.get(fast_endpoint.url + "/")
    assert (r.status_code, r.text) == (200, "Healthy")
    r = requests.get(fast_endpoint.url + "/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for text in ("balance", "Bearer", "swagger.json?version=3", "predict_proba"):
        assert text in r.text
    assert "technician" not in r.text  # a training category: not published without a key


def test_every_shape_answers_in_its_own_shape(fast_endpoint, fast_pyfunc, models):
    rows = records(models.frame, 40)
    expected = list(fast_pyfunc.predict(models.frame.head(40)))
    url, h = fast_endpoint.url + "/score", auth(fast_endpoint.primary)
    r = requests.post(url, json={"data": rows}, headers=h)
    assert r.status_code == 200 and r.json() == {"result": expected}
    r = requests.post(
        url, json={"Inputs": {"data": rows}, "GlobalParameters": {"method": "predict"}}, headers=h
    )
    assert r.json() == {"Results": expected}
    cols = list(rows[0])
    split = {
        "columns": cols,
        "index": list(range(40)),
        "data": [[r[c] for c in cols] for r in rows],
    }
    r = requests.post(url, json={"input_data": split}, headers=h)
    assert r.json() == expected
    assert r.headers["x-request-id"] and float(r.headers["x-ms-run-fn-exec-ms"]) >= 0


def test_column_order_and_reordered_split_columns_do_not_matter(fast_endpoint, fast_pyfunc, models):
    rows = records(models.frame, 10)
    expected = list(fast_pyfunc.predict(models.frame.head(10)))
    cols = list(reversed(list(rows[0])))
    split = {"columns": cols, "data": [[r[c] for c in cols] for r in rows]}
    r = requests.post(
        fast_endpoint.url + "/score",
        json={"input_data": split},
        headers=auth(fast_endpoint.primary),
    )
    assert r.json() == expected


def test_probabilities_for_every_shape(fast_endpoint, fast_pyfunc, models):
    rows = records(models.frame, 5)
    ref = fast_pyfunc.unwrap_python_model().predict_proba(None, models.frame.head(5)).tolist()
    url, h = fast_endpoint.url + "/score", auth(fast_endpoint.secondary)
    r = requests.post(
        url,
        json={"Inputs": {"data": rows}, "GlobalParameters": {"method": "predict_proba"}},
        headers=h,
    )
    assert json.loads(r.headers["x-ms-classes"]) == ["no", "yes"]
    np.testing.assert_allclose(r.json()["Results"], ref)
    np.testing.assert_allclose(
        requests.post(url, json={"data": rows, "method": "predict_proba"}, headers=h).json()[
            "result"
        ],
        ref,
    )
    np.testing.assert_allclose(
        requests.post(url + "?method=predict_proba", json={"data": rows}, headers=h).json()[
            "result"
        ],
        ref,
    )
    split = {"input_data": rows, "params": {"method": "predict_proba"}}
    np.testing.assert_allclose(requests.post(url, json=split, headers=h).json(), ref)


def test_large_batch_matches_pyfunc(fast_endpoint, fast_pyfunc, models):
    rows = records(models.frame)  # 400 rows: predicted off the event loop
    r = requests.post(
        fast_endpoint.url + "/score", json={"data": rows}, headers=auth(fast_endpoint.primary)
    )
    assert r.json()["result"] == list(fast_pyfunc.predict(models.frame))


def test_sklearn_endpoint_serves_pyfunc_and_rejects_null_integers(
    sklearn_endpoint, sklearn_pyfunc, models
):
    rows = records(models.frame, 20)
    url, h = sklearn_endpoint.url + "/score", auth(sklearn_endpoint.primary)
    r = requests.post(url, json={"data": rows}, headers=h)
    assert r.json() == {"result": list(sklearn_pyfunc.predict(models.frame.head(20)))}
    r = requests.post(url, json={"data": [{**rows[0], "balance": None}]}, headers=h)
    assert r.status_code == 200  # null in a float column is a missing value the imputer fills
    r = requests.post(url, json={"data": [{**rows[0], "age": None}]}, headers=h)
    assert r.status_code == 400 and "'age'" in r.json()["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic abc"},
    ],
)
def test_score_needs_a_valid_key(fast_endpoint, models, headers):
    r = requests.post(
        fast_endpoint.url + "/score", json={"data": records(models.frame, 1)}, headers=headers
    )
    assert r.status_code == 401
    assert "Bearer" in r.json()["message"]
    assert fast_endpoint.primary not in r.text and fast_endpoint.secondary not in r.text


def test_both_keys_work_and_regenerated_keys_are_picked_up(tmp_path, fast_pyfunc, models):
    keys = tmp_path / "keys.json"
    old_primary, old_secondary = write_keys_file(keys)
    assert keys.stat().st_mode & 0o777 == 0o600
    server = LiveServer(create_app(fast_pyfunc, ScoringSettings(keys_file=keys)))
    try:
        body = {"data": records(models.frame, 1)}
        url = server.url + "/score"
        assert requests.post(url, json=body, headers=auth(old_primary)).status_code == 200
        assert requests.post(url, json=body, headers=auth(old_secondary)).status_code == 200
        new_primary, _ = write_keys_file(
            keys, secondary=old_secondary
        )  # regenerate the primary only
        assert requests.post(url, json=body, headers=auth(old_primary)).status_code == 401
        assert requests.post(url, json=body, headers=auth(new_primary)).status_code == 200
        assert requests.post(url, json=body, headers=auth(old_secondary)).status_code == 200
    finally:
        server.stop()


BAD_INPUTS = [
    (b"not json", 400, "not valid JSON"),
    (b'{"data": [{"age": 1}]', 400, "not valid JSON"),
    (b"[]", 400, "JSON object"),
    (b'{"records": []}', 400, "'data', 'Inputs' or 'input_data'"),
    (b'{"data": []}', 400, "No rows"),
    (b'{"data": [{"age": 30, "balance": 1.0, "job": "admin."}]}', 400, "missing column 'contact'"),
    (
        b'{"data": [{"age": 30, "balance": 1.0, "job": "admin.", "contact": "cellular", "y": "no"}]}',
        400,
        "unknown column 'y'",
    ),
    (
        b'{"data": [{"age": 30, "balance": "lots", "job": "admin.", "contact": "cellular"}]}',
        400,
        "'balance'",
    ),
    (
        b'{"data": [{"age": 30, "balance": 1.0, "job": true, "contact": "cellular"}]}',
        400,
        "'job': expected a string",
    ),
    (b'{"Inputs": {"data": [1]}}', 400, "Row 0: expected a JSON object"),
    (b'{"data": [{"age": 1}], "method": "explain"}', 400, "'method'"),
]


@pytest.mark.parametrize(("body", "status", "needle"), BAD_INPUTS)
def test_bad_input_is_a_4xx_naming_the_problem(fast_endpoint, body, status, needle):
    r = requests.post(fast_endpoint.url + "/score", data=body, headers=auth(fast_endpoint.primary))
    assert r.status_code == status, r.text
    assert needle in r.json()["message"]


def test_too_many_rows_and_too_large_bodies(fast_endpoint, models):
    h = auth(fast_endpoint.primary)  # this endpoint: max_rows=500, max_bytes=200_000
    row = records(models.frame, 1)[0]
    r = requests.post(fast_endpoint.url + "/score", json={"data": [row] * 501}, headers=h)
    assert r.status_code == 413 and "Too many rows: 501" in r.json()["message"]
    big = b'{"data": [' + b" " * 250_000 + b"]}"
    r = requests.post(fast_endpoint.url + "/score", data=big, headers=h)
    assert r.status_code == 413 and "too large" in r.json()["message"]

    def chunks():  # no Content-Length: the limit must hold on the bytes actually read
        yield b'{"data": ['
        for _ in range(30):
            yield b" " * 10_000
        yield b"]}"

    r = requests.post(fast_endpoint.url + "/score", data=chunks(), headers=h)
    assert "Content-Length" not in r.request.headers
    assert r.status_code == 413 and "too large" in r.json()["message"]


def test_wrong_routes_and_methods(fast_endpoint):
    r = requests.get(fast_endpoint.url + "/score")
    assert r.status_code == 405 and "POST" in r.json()["message"]
    assert requests.get(fast_endpoint.url + "/nope").status_code == 404
    assert requests.post(fast_endpoint.url + "/").status_code == 405


def _junk(rng: random.Random, row: dict) -> bytes:
    def value(depth: int = 0):
        kinds = ["int", "float", "str", "null", "bool"] + (["list", "dict"] if depth < 3 else [])
        k = rng.choice(kinds)
        if k == "int":
            return rng.choice([0, -1, 2**63, 10**30, rng.randint(-1000, 1000)])
        if k == "float":
            return rng.choice([0.5, -1e308, 1e-300, rng.random()])
        if k == "str":
            return rng.choice(
                ["", "x" * rng.randint(1, 50), "42", "1e999", "nan", "\u0000", "\ud7ff"]
            )
        if k == "null":
            return None
        if k == "bool":
            return rng.choice([True, False])
        if k == "list":
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {
            rng.choice(["data", "Inputs", "input_data", "age", "x"]): value(depth + 1)
            for _ in range(rng.randint(0, 3))
        }

    mode = rng.randrange(6)
    if mode == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if mode == 1:
        return json.dumps(value()).encode()
    if mode == 2:  # a valid record with one field broken
        bad = dict(row)
        bad[rng.choice(list(bad) + ["extra"])] = value()
        shape = rng.choice(
            [
                {"data": [bad]},
                {"Inputs": {"data": [bad]}, "GlobalParameters": {"method": value()}},
                {"input_data": [bad]},
            ]
        )
        return json.dumps(shape).encode()
    if mode == 3:  # a split payload with mismatched lengths / junk
        return json.dumps(
            {"input_data": {"columns": value(), "index": value(), "data": value()}}
        ).encode()
    if mode == 4:  # truncated valid JSON
        text = json.dumps({"data": [row, row]}).encode()
        return text[: rng.randint(0, len(text))]
    return json.dumps({"data": [{k: value() for k in row}]}).encode()


@pytest.mark.slow
def test_fuzzed_bodies_never_get_a_5xx(fast_endpoint, models):
    rng = random.Random(1234)
    row = records(models.frame, 1)[0]
    h = auth(fast_endpoint.primary)
    statuses = {}
    with requests.Session() as s:
        for _ in range(400):
            r = s.post(fast_endpoint.url + "/score", data=_junk(rng, row), headers=h)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, r.text
            assert "message" in r.json() or r.status_code == 200
    assert statuses.get(400, 0) > 100  # the fuzz really does reach validation
    assert requests.get(fast_endpoint.url + "/").text == "Healthy"
    ok = requests.post(fast_endpoint.url + "/score", json={"data": [row]}, headers=h)
    assert ok.status_code == 200


def test_every_request_lands_in_telemetry(fast_endpoint, models):
    marker = f"t-{time.time_ns()}"
    url = fast_endpoint.url + "/score"
    rows = records(models.frame, 3)
    # first, so that rows written in order would hold them by the time the others are there
    requests.get(fast_endpoint.url + "/docs", headers={"x-request-id": marker + "-docs"})
    css = fast_endpoint.url + "/docs/swagger-ui.css"
    assert requests.get(css, headers={"x-request-id": marker + "-css"}).status_code == 200
    requests.post(
        url,
        json={"data": rows},
        headers={**auth(fast_endpoint.primary), "x-request-id": marker + "-ok"},
    )
    requests.post(url, json={"data": rows}, headers={"x-request-id": marker + "-401"})
    requests.post(
        url, data=b"junk", headers={**auth(fast_endpoint.primary), "x-request-id": marker + "-400"}
    )
    requests.get(fast_endpoint.url + "/swagger.json", headers={"x-request-id": marker + "-swagger"})
    requests.get(fast_endpoint.url + "/", headers={"x-request-id": marker + "-health"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        df = read_requests(fast_endpoint.telemetry_db, TelemetryQuery(fast_endpoint.name))
        mine = df[df["OperationId"].str.startswith(marker)].set_index("OperationId")
        if len(mine) >= 4:
            break
        time.sleep(0.05)
    assert list(df.columns) == [
        "TimeGenerated", "OperationId", "Name", "Url", "ResultCode", "DurationMs",
        "Success", "Endpoint", "Deployment", "ModelVersion", "Rows",
    ]  # fmt: skip
    assert set(mine.index) == {
        marker + s for s in ("-ok", "-401", "-400", "-swagger")
    }  # no health probes, nor the docs page and its files a browser loads
    ok = mine.loc[marker + "-ok"]
    assert (ok["Name"], ok["ResultCode"], ok["Success"], ok["Rows"]) == (
        "POST /score",
        "200",
        True,
        3,
    )
    assert ok["Url"] == url and ok["Endpoint"] == "fast-ep" and ok["ModelVersion"] == "1"
    assert 0 < ok["DurationMs"] < 1000
    assert (mine.loc[marker + "-401", "ResultCode"], mine.loc[marker + "-401", "Success"]) == (
        "401",
        False,
    )
    assert mine.loc[marker + "-400", "ResultCode"] == "400"
    assert mine.loc[marker + "-swagger", "Name"] == "GET /swagger.json"
    assert str(df["TimeGenerated"].dtype) == "datetime64[us, UTC]" or "UTC" in str(
        df["TimeGenerated"].dtype
    )
