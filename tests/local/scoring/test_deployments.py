"""Several deployments behind one app over HTTP: routing, swaps under load, mirror, telemetry."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections import Counter

import pytest
import requests

from lib.local.scoring import ScoringApp, ScoringSettings, prepare_model, write_keys_file
from lib.local.scoring.app import MIRROR_NAME, MirrorWorker
from lib.local.scoring.routing import Deployed, Routes
from lib.local.scoring.served_model import ServedModel
from lib.local.telemetry import TelemetryWriter
from tests.local.scoring_models import LiveServer, records
from tests.support.load import Load
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def two_models(fast_pyfunc, sklearn_pyfunc) -> dict[str, Deployed]:
    return {
        "blue": Deployed.of("blue", "1", prepare_model(fast_pyfunc)),
        "green": Deployed.of("green", "2", prepare_model(sklearn_pyfunc)),
    }


@pytest.fixture
def server(tmp_path, two_models):
    keys = tmp_path / "keys.json"
    key, _ = write_keys_file(keys)
    writer = TelemetryWriter(tmp_path / "t.db", endpoint="split-ep", flush_interval=0.05)
    settings = ScoringSettings(endpoint="split-ep", keys_file=keys, telemetry=writer)
    app = ScoringApp(Routes({"blue": two_models["blue"]}, {"blue": 100}), settings)
    live = LiveServer(app)
    yield live, app, key, writer
    live.stop()
    writer.close()


def routes(two_models: dict, traffic: dict, mirror: dict | None = None, seed: int = 0) -> Routes:
    serving = {n: d for n, d in two_models.items() if traffic.get(n) or (mirror or {}).get(n)}
    return Routes(serving, traffic, mirror, rng=random.Random(seed))


def telemetry(writer: TelemetryWriter, sql: str) -> list[tuple]:
    writer.flush()
    with sqlite3.connect(writer.db_path) as conn:
        return conn.execute(sql).fetchall()


def test_answers_name_their_deployment_and_the_header_picks_one(server, two_models, models):
    live, app, key, writer = server
    app.set_routes(routes(two_models, {"blue": 50, "green": 50}))
    body = {"data": records(models.frame, 3)}
    auth = {"Authorization": f"Bearer {key}"}
    seen = Counter(
        requests.post(live.url + "/score", json=body, headers=auth).headers[
            "azureml-model-deployment"
        ]
        for _ in range(100)
    )
    assert seen == {"blue": 50, "green": 50}
    # Each deployment answers with its own model.
    expected = {
        name: d.served.predict([dict(r) for r in body["data"]]) for name, d in two_models.items()
    }
    for name in ("blue", "green"):
        r = requests.post(
            live.url + "/score", json=body, headers=auth | {"azureml-model-deployment": name}
        )
        assert r.status_code == 200 and r.headers["azureml-model-deployment"] == name
        assert r.json()["result"] == expected[name]
    r = requests.post(
        live.url + "/score", json=body, headers=auth | {"azureml-model-deployment": "gold"}
    )
    assert r.status_code == 404 and "gold" in r.json()["message"]
    # The telemetry row of each request names the deployment that answered it.
    rows = dict(
        telemetry(
            writer,
            "SELECT Deployment, COUNT(*) FROM AppRequests WHERE ResultCode='200' GROUP BY 1",
        )
    )
    assert rows == {"blue": 51, "green": 51}
    versions = telemetry(writer, "SELECT DISTINCT Deployment, ModelVersion FROM AppRequests")
    assert set(versions) >= {("blue", "1"), ("green", "2")}


def test_swapping_routes_under_load_fails_no_request(server, two_models, models):
    live, app, key, _ = server
    tables = [
        {"blue": 90, "green": 10},
        {"blue": 50, "green": 50},
        {"green": 100},
        {"blue": 100},
    ]
    with Load(live.url + "/score", {"data": records(models.frame, 2)}, key, threads=8) as load:
        load.wait_for_more(200)
        for i, traffic in enumerate(tables * 3):
            app.set_routes(routes(two_models, traffic, seed=i))
            load.wait_for_more(100)
    assert load.count() >= 1_400
    assert load.failures() == []
    assert set(load.deployments()) == {"blue", "green"}


def test_mirrored_answers_are_recorded_and_never_returned(server, two_models, models):
    live, app, key, writer = server
    app.set_routes(routes(two_models, {"blue": 100}, {"green": 50}))
    body = {"data": records(models.frame, 4)}
    blue_answer = two_models["blue"].served.predict([dict(r) for r in body["data"]])
    auth = {"Authorization": f"Bearer {key}"}
    # One whole 100-slot cycle: a 50 % mirror copies exactly 50 of its requests.
    for _ in range(100):
        r = requests.post(live.url + "/score", json=body, headers=auth)
        assert r.headers["azureml-model-deployment"] == "blue"
        assert r.json()["result"] == blue_answer

    def mirrored() -> list[tuple]:
        return telemetry(
            writer,
            f"SELECT Deployment, ResultCode, Rows FROM AppRequests WHERE Name='{MIRROR_NAME}'",
        )

    wait_for(lambda: len(mirrored()) == 50, what="50 mirrored answers recorded")
    assert set(mirrored()) == {("green", "200", 4)}
    live_rows = telemetry(
        writer, "SELECT Deployment, COUNT(*) FROM AppRequests WHERE Name='POST /score' GROUP BY 1"
    )
    assert live_rows == [("blue", 100)]


def test_a_slow_mirror_drops_copies_instead_of_slowing_the_answers(server, two_models, models):
    live, app, key, _ = server
    release = threading.Event()
    fast = two_models["blue"].served

    def stuck(rows: list[dict]) -> list:
        release.wait(30)
        return fast.predict(rows)

    slow = Deployed.of(
        "green",
        "2",
        ServedModel(
            pyfunc=None,
            columns=fast.columns,
            path="fast",
            check_message="blocks until released",
            _fast_predict=stuck,
        ),
    )
    app.mirror = MirrorWorker(app, capacity=2)
    app.set_routes(
        Routes({"blue": two_models["blue"], "green": slow}, {"blue": 100}, {"green": 50})
    )
    body = {"data": records(models.frame, 1)}
    auth = {"Authorization": f"Bearer {key}"}
    try:
        for _ in range(30):
            r = requests.post(live.url + "/score", json=body, headers=auth, timeout=5)
            assert r.status_code == 200
        # Of the copies (half the requests), one is stuck in the model and two wait in the
        # queue: the rest are dropped and counted, and every answer came without waiting.
        assert app.mirror.submitted > 3
        assert app.mirror.dropped == app.mirror.submitted - 3
    finally:
        release.set()
    wait_for(lambda: app.mirror.scored == 3, what="the queued copies are scored once released")
