"""Score, Endpoints and Models pages against a stub scoring endpoint (real HTTP, fake services)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from lib.workspace import Deployment, DeploymentEvent, Endpoint, Model
from tests.pages.conftest import button, open_page
from tests.support.ports import free_port

NOW = datetime(2026, 1, 31, tzinfo=UTC)
KEY = "primary-key-123"
SPEC = [{"name": "age", "kind": "numeric", "dtype": "int64", "min": 18, "max": 90, "example": 30}]
SWAGGER = {"swagger": "2.0", "paths": {"/score": {}}}


class StubScoring(BaseHTTPRequestHandler):
    """Answers like a scoring server: 200 for a `data` body with the right key, else 4xx."""

    bodies: list = []  # every JSON body received, for tests to read

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/swagger.json":
            self._send(200, SWAGGER)
        else:
            self._send(404, {"message": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        StubScoring.bodies.append(body)
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self._send(401, {"message": "Invalid or missing key"})
        elif "data" not in body:
            self._send(400, {"message": "Expected 'data', 'Inputs' or 'input_data'"})
        elif any(r.get("fare") == "bad" for r in body["data"]):
            row = next(i for i, r in enumerate(body["data"]) if r.get("fare") == "bad")
            self._send(400, {"message": f"Row {row}, column 'fare': not a fare"})
        else:
            self._send(200, {"result": ["yes" for _ in body["data"]]})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubScoring)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class FakeModels:
    spec = SPEC
    metrics = {"AUC_weighted": 0.91}

    def list(self) -> list[Model]:
        return [self.get("churn", 1)]

    def get(self, name: str, version: int | None = None) -> Model:
        return Model(name, version or 1, "job-1", "run", f"models:/{name}/1", NOW, self.metrics)

    def feature_spec(self, name: str, version: int) -> list[dict]:
        return self.spec


class FakeEndpoints:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.deployed: list[tuple[str, int, str]] = []

    def _endpoint(self, name: str = "churn") -> Endpoint:
        return Endpoint(
            name,
            "Succeeded",
            f"{self.base_url}/score",
            f"{self.base_url}/swagger.json",
            "churn",
            1,
            NOW,
            NOW,
            # The stub is a classic endpoint: `data` bodies, labels only.
            request_shape="data",
            probabilities=False,
        )

    def list(self) -> list[Endpoint]:
        return [self._endpoint()]

    def get(self, name: str) -> Endpoint:
        return self._endpoint(name)

    def keys(self, name: str) -> tuple[str, str]:
        return KEY, "secondary-key-456"

    def deploy(self, model_name: str, model_version: int, endpoint_name: str) -> Endpoint:
        self.deployed.append((model_name, model_version, endpoint_name))
        return self._endpoint(endpoint_name)

    def requests(self, name: str | None = None, limit: int = 20) -> pd.DataFrame:
        return pd.DataFrame()

    def logs(self, name: str, lines: int = 80) -> str:
        return ""

    def deployments(self, name: str) -> list[Deployment]:
        return [Deployment(name, "blue", "churn", 1, traffic=100, note="fast: test model")]

    def history(self, name: str, limit: int = 50) -> list[DeploymentEvent]:
        return []


def use_fakes(ws, base_url: str) -> FakeEndpoints:  # noqa: ANN001
    endpoints = FakeEndpoints(base_url)
    ws.models, ws.endpoints = FakeModels(), endpoints
    return endpoints


def test_score_page_sends_the_raw_json_body_and_shows_the_answer(local_workspace, stub_url):
    use_fakes(local_workspace, stub_url)
    at = open_page("score.py")
    assert json.loads(at.text_area(key="score_json").value) == {"data": [{"age": 30}]}
    button(at, "Send").click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("HTTP 200") for s in at.success)
    assert any(j.value == json.dumps({"result": ["yes"]}) for j in at.json)
    at.text_area(key="score_json").set_value('{"rows": [1]}').run()
    button(at, "Send").click().run()
    assert any(e.value.startswith("HTTP 400") for e in at.error)
    at.text_area(key="score_json").set_value("{not json").run()
    button(at, "Send").click().run()
    assert any("Not valid JSON" in e.value for e in at.error)


def test_the_labels_only_note_is_for_classifiers(local_workspace, stub_url):
    """A regression model has no class probabilities to miss: the note about Azure's no-code
    deployments was shown on a local regression endpoint."""
    use_fakes(local_workspace, stub_url)
    at = open_page("score.py")
    assert any("labels only" in c.value for c in at.caption)
    local_workspace.models.metrics = {"r2_score": 0.8, "rmse": 3.0}
    at = open_page("score.py")
    assert not at.exception, at.exception
    assert not any("labels only" in c.value for c in at.caption)


def test_score_page_says_when_the_endpoint_cannot_be_reached(local_workspace):
    use_fakes(local_workspace, f"http://127.0.0.1:{free_port()}")
    at = open_page("score.py")
    button(at, "Send").click().run()
    assert not at.exception, at.exception
    assert any("could not reach" in e.value for e in at.error)


def open_tab(at, label: str) -> None:  # noqa: ANN001
    """Select a tab of the endpoint detail (only the open tab's content runs)."""
    at.session_state["endpoints_tab"] = label
    at.run()
    assert not at.exception, at.exception


def test_endpoints_page_shows_the_swagger_document(local_workspace, stub_url):
    use_fakes(local_workspace, stub_url)
    at = open_page("endpoints.py")
    assert not at.exception, at.exception
    assert not at.json and not at.get("iframe")  # a closed tab fetches and loads nothing
    open_tab(at, "Swagger")
    assert not [w for w in at.warning if "not answering" in w.value]
    at.radio(key="endpoints_swagger_view_churn").set_value("JSON").run()
    assert any(json.loads(j.value) == SWAGGER for j in at.json)


def test_endpoints_page_when_the_endpoint_is_down(local_workspace):
    use_fakes(local_workspace, f"http://127.0.0.1:{free_port()}")
    at = open_page("endpoints.py")
    open_tab(at, "Swagger")
    assert any("not answering" in w.value for w in at.warning)


def test_an_empty_endpoint_name_deploys_nothing(local_workspace, stub_url):
    """It fell back to the model's default endpoint and redeployed over the live one at 100 %,
    without the traffic choice an existing name gets."""
    endpoints = use_fakes(local_workspace, stub_url)
    at = open_page("endpoints.py")
    at.text_input(key="endpoints_name_churn").set_value("   ").run()
    button(at, "Deploy").click().run()
    assert not at.exception, at.exception
    assert any("Give the endpoint a name" in e.value for e in at.error)
    assert endpoints.deployed == []


def test_register_and_deploy_from_the_automl_page_is_audited(local_workspace, stub_url):
    from lib.audit import AuditLog
    from tests.support.populate import finished_automl_run

    job = finished_automl_run(local_workspace)
    endpoints = use_fakes(local_workspace, stub_url)
    registered: list[str] = []

    def register(job_id: str, name: str, description: str = "") -> Model:
        registered.append(job_id)
        return Model(name, 1, job_id, "run", f"models:/{name}/1", NOW)

    local_workspace.models.register = register
    at = open_page("automl.py")
    at.text_input(key="automl_model_name").set_value("churn").run()
    button(at, "Register and deploy").click().run()
    assert registered == [job.id] and endpoints.deployed == [("churn", 1, "churn")]
    deploys = list(AuditLog(local_workspace.settings.home).read())
    assert [(e.action, e.target, e.outcome) for e in deploys] == [
        ("endpoint.deploy", "churn", "ok")
    ]
    assert job.id in deploys[0].detail


def test_models_page_deploys_to_the_endpoint_named_after_the_model(local_workspace, stub_url):
    endpoints = use_fakes(local_workspace, stub_url)
    live = endpoints.list
    endpoints.list = lambda: []  # no endpoint yet: one click creates it
    at = open_page("models.py")
    button(at, "Deploy churn v1").click().run()
    assert not at.exception, at.exception
    assert endpoints.deployed == [("churn", 1, "churn")]
    # A live endpoint's traffic is not moved by one click: the deploy form asks how much
    endpoints.list = live
    at = open_page("models.py")
    button(at, "Deploy churn v1").click().run()
    assert not at.exception, at.exception
    assert endpoints.deployed == [("churn", 1, "churn")]  # nothing more
    assert at.selectbox(key="endpoints_model").value == "churn v1"
    assert at.slider(key="endpoints_deploy_traffic").value == 100


def test_batch_csv_sends_dates_in_the_training_files_form_as_written(local_workspace, stub_url):
    """Day-first training dates: a batch whose days are all 12 or less is not read month first."""
    use_fakes(local_workspace, stub_url)
    local_workspace.models.spec = [
        *SPEC,
        {"name": "sold", "kind": "datetime", "dtype": "datetime64[ns]", "format": "%d/%m/%Y"},
        {"name": "seen", "kind": "datetime", "dtype": "datetime64[ns]", "format": None},
    ]
    StubScoring.bodies.clear()
    at = open_page("score.py")
    rows = b"age,sold,seen\n30,01/11/2021,2021-11-01\n41,12/11/2021,2021-11-12\n"
    at.file_uploader(key="score_batch_file").set_value(("new.csv", rows, "text/csv"))
    at.run()
    button(at, "Score file").click().run()
    assert not at.exception, at.exception
    sent = [r for b in StubScoring.bodies for r in b["data"]]
    assert [(r["sold"], r["seen"][:10]) for r in sent] == [
        ("01/11/2021", "2021-11-01"),
        ("12/11/2021", "2021-11-12"),
    ]


def test_batch_csv_sends_text_columns_as_written_and_says_when_it_fails(local_workspace, stub_url):
    """A column the model learnt as text keeps "22" and "19.9667"; a failed batch stops."""
    use_fakes(local_workspace, stub_url)
    local_workspace.models.spec = [
        *SPEC,
        {"name": "fare", "kind": "categorical", "dtype": "object", "categories": None},
    ]
    StubScoring.bodies.clear()
    at = open_page("score.py")
    # A text column known only by its signature is a text field in the form, not a number.
    assert at.text_input(key="score_f_fare").value == ""
    good = b"age,fare\n22,22\n30,19.9667\n41,7.0\n"
    at.file_uploader(key="score_batch_file").set_value(("rows.csv", good, "text/csv"))
    at.run()
    button(at, "Score file").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    sent = [r for b in StubScoring.bodies for r in b["data"]]
    assert sent == [
        {"age": 22, "fare": "22"},
        {"age": 30, "fare": "19.9667"},
        {"age": 41, "fare": "7.0"},
    ]
    assert [list(d.value["prediction"]) for d in at.dataframe] == [["yes", "yes", "yes"]]

    bad = good + b"50,bad\n"
    at.number_input(key="score_batch_chunk").set_value(2).run()
    at.file_uploader(key="score_batch_file").set_value(("rows.csv", bad, "text/csv"))
    at.run()
    button(at, "Score file").click().run()
    assert not at.exception, at.exception
    # By default the refused row is set aside and the others are scored
    (said,) = [w.value for w in at.warning if "refused" in w.value]
    assert "1 of 4 rows were refused" in said and "Row 4, column 'fare': not a fare" in said
    (result,) = [d.value for d in at.dataframe if "error" in d.value.columns]
    assert list(result["prediction"].isna()) == [False, False, False, True]
    assert list(result["error"])[3] == "Row 4, column 'fare': not a fare"
    # Asked to stop at the first refused row, it does
    at.toggle(key="score_batch_skip").set_value(False).run()
    button(at, "Score file").click().run()
    assert not at.exception, at.exception
    message = " ".join(e.value for e in at.error)
    assert "failed in the request for rows 3–4 of 4" in message and "not a fare" in message
    # the server's row of the request is named as the file's row
    assert "Row 4, column 'fare'" in message
    # the rows answered before it are kept
    (partial,) = [
        b for b in at.get("download_button") if b.proto.id.endswith("score_batch_partial")
    ]
    assert "Download the 2 rows scored before it" in partial.proto.label
    # The progress bar is gone, not left on "Scoring …".
    assert not list(at.get("progress")), [p.proto for p in at.get("progress")]


def test_score_page_says_a_stopped_endpoint_needs_a_restart(local_workspace, stub_url):
    endpoints = use_fakes(local_workspace, stub_url)
    stopped = replace(endpoints._endpoint(), state="Stopped")
    endpoints.list = lambda: [stopped]
    at = open_page("score.py")
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == [
        "Endpoint **churn** is stopped — restart it on the Endpoints page."
    ]


class StatefulEndpoints(FakeEndpoints):
    """Stop and Restart change the state every later read sees."""

    state = "Succeeded"

    def _endpoint(self, name: str = "churn") -> Endpoint:
        return replace(super()._endpoint(name), state=self.state)

    def stop(self, name: str) -> None:
        self.state = "Stopped"

    def restart(self, name: str) -> None:
        self.state = "Succeeded"


def test_endpoints_page_agrees_with_itself_after_stop_and_restart(local_workspace, stub_url):
    use_fakes(local_workspace, stub_url)
    local_workspace.endpoints = StatefulEndpoints(stub_url)

    def shown(at) -> tuple[str, str]:  # noqa: ANN001
        table = at.dataframe(key="endpoints_table").value
        status = next(b for b in at.get("status") if "churn —" in b.label)
        return table["state"].iloc[0], status.label.split(" — ")[1]

    at = open_page("endpoints.py")
    open_tab(at, "Swagger")
    assert shown(at) == ("Succeeded", "Succeeded")
    button(at, "Stop").click().run()
    assert not at.exception, at.exception
    assert shown(at) == ("Stopped", "Stopped")
    assert any("is Stopped: **Restart** it" in i.value for i in at.info)
    button(at, "Restart").click().run()
    assert shown(at) == ("Succeeded", "Succeeded")
    assert not any("Restart" in i.value for i in at.info)


def test_score_form_offers_a_datetime_as_iso_text(local_workspace, stub_url):
    use_fakes(local_workspace, stub_url)
    local_workspace.models.spec = [
        *SPEC,
        {"name": "when", "kind": "datetime", "dtype": "datetime64[us]", "example": "2024-05-01"},
    ]
    StubScoring.bodies.clear()
    at = open_page("score.py")
    field = at.text_input(key="score_f_when")
    assert field.value == "2024-05-01" and "ISO 8601" in field.help
    field.set_value("2024-07-14T09:30:00")
    at.button[0].click().run()  # the form's Score button submits the typed value
    assert not at.exception, at.exception
    assert StubScoring.bodies[-1]["data"] == [{"age": 30, "when": "2024-07-14T09:30:00"}]


def test_score_form_fields_can_send_no_value(local_workspace, stub_url):
    """A cleared number box went back to the example, and a category had no blank choice."""
    use_fakes(local_workspace, stub_url)
    local_workspace.models.spec = [
        *SPEC,
        {"name": "color", "kind": "categorical", "categories": ["red", "blue"], "example": "red"},
    ]
    StubScoring.bodies.clear()
    at = open_page("score.py")
    assert at.number_input(key="score_f_age").value == 30  # seeded with the example row
    at.button[0].click().run()
    assert StubScoring.bodies[-1]["data"] == [{"age": 30, "color": "red"}]
    assert at.selectbox(key="score_f_color").options == ["red", "blue", "(no value)"]
    at.number_input(key="score_f_age").set_value(None)
    at.selectbox(key="score_f_color").select_index(2)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert StubScoring.bodies[-1]["data"] == [{"age": None, "color": None}]


def test_score_form_offers_true_and_false_for_a_boolean_column(local_workspace, stub_url):
    """A True/False column was a number box at 0.00, which the endpoint refused."""
    use_fakes(local_workspace, stub_url)
    local_workspace.models.spec = [
        *SPEC,
        {"name": "observed_ok", "kind": "numeric", "dtype": "bool", "example": True},
    ]
    StubScoring.bodies.clear()
    at = open_page("score.py")
    field = at.selectbox(key="score_f_observed_ok")
    assert field.options == ["True", "False", "(no value)"] and field.value is True
    at.button[0].click().run()
    at.selectbox(key="score_f_observed_ok").select_index(1)
    at.button[0].click().run()
    assert not at.exception, at.exception
    sent = [b["data"][0]["observed_ok"] for b in StubScoring.bodies]
    assert sent == [True, False]


def test_the_json_body_is_the_chosen_endpoints_model(local_workspace, stub_url):
    """Another endpoint kept the first model's row, which it refused as unknown columns."""

    class TwoEndpoints(FakeEndpoints):
        def list(self) -> list[Endpoint]:
            return [self._endpoint("churn"), replace(self._endpoint("house"), model_name="house")]

    class TwoModels(FakeModels):
        def feature_spec(self, name: str, version: int) -> list[dict]:
            if name == "house":
                return [{"name": "rooms", "kind": "numeric", "dtype": "int64", "example": 4}]
            return SPEC

    use_fakes(local_workspace, stub_url)
    local_workspace.endpoints = TwoEndpoints(stub_url)
    local_workspace.models = TwoModels()
    at = open_page("score.py")
    assert json.loads(at.text_area(key="score_json").value) == {"data": [{"age": 30}]}
    at.number_input(key="score_f_age").set_value(41).run()
    at.selectbox(key="score_endpoint").set_value("house").run()
    assert not at.exception, at.exception
    assert json.loads(at.text_area(key="score_json").value) == {"data": [{"rooms": 4}]}
    at.selectbox(key="score_endpoint").set_value("churn").run()
    assert at.number_input(key="score_f_age").value == 30  # the example again, not 41


def test_score_form_of_a_wide_model_shows_its_first_columns(local_workspace, stub_url):
    from lib.scoring import FORM_FIELDS_MAX

    use_fakes(local_workspace, stub_url)
    local_workspace.models.spec = [
        {"name": f"g{i}", "kind": "numeric", "dtype": "float64", "example": i / 2}
        for i in range(FORM_FIELDS_MAX + 40)
    ]
    StubScoring.bodies.clear()
    at = open_page("score.py")
    assert not at.exception, at.exception
    fields = [w for w in at.number_input if str(w.key).startswith("score_f_")]
    assert len(fields) == FORM_FIELDS_MAX
    assert any(f"reads {FORM_FIELDS_MAX + 40:,} columns" in c.value for c in at.caption)
    at.number_input(key="score_f_g0").set_value(7.0)
    at.button[0].click().run()
    [row] = StubScoring.bodies[-1]["data"]
    assert len(row) == FORM_FIELDS_MAX + 40 and row["g0"] == 7.0
    assert row[f"g{FORM_FIELDS_MAX + 39}"] == (FORM_FIELDS_MAX + 39) / 2
