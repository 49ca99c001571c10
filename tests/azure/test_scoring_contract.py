"""Contract: the bodies opsdeck sends are the ones Azure's serving images accept.

`tests.support.azure_serving` states what the two scoring scripts behind Azure endpoints take
(Azure's MLflow script for no-code deployments, AutoML's generated `scoring_file_v_2_0_0.py`).
An endpoint tells the seam which one it runs (`request_shape`, `probabilities`); `lib.scoring`
builds the body from that.
"""

from __future__ import annotations

import pytest
from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment

from lib.azure.endpoints import scoring_contract
from lib.scoring import LABELS_ONLY, build_payload, request_for, score
from tests.support.azure_serving import (
    ScoringEndpoint,
    ScoringRefused,
    automl_v2_script,
    mlflow_script,
)
from tests.support.azure_transport import requests_session

COLUMNS = ["age", "job", "duration"]
RECORDS = [
    {"age": 41, "job": "admin.", "duration": 871},
    {"age": 29, "job": "services", "duration": 95},
]
URI = "https://ep-bank.westeurope.inference.ml.azure.com/score"
KEYS = ("k1", "k2")


def deployment(script: str | None) -> ManagedOnlineDeployment:
    code = CodeConfiguration(code="./src", scoring_script=script) if script else None
    return ManagedOnlineDeployment(
        name="blue",
        endpoint_name="ep-bank",
        model="azureml:bank:1",
        code_configuration=code,
        instance_type="Standard_DS3_v2",
    )


@pytest.mark.parametrize(
    ("script", "contract"),
    [
        (None, ("input_data", False)),  # no script: Azure's MLflow scoring script
        ("scoring_file_v_2_0_0.py", ("inputs", True)),
        ("outputs/scoring_file_v_2_0_0.py", ("inputs", True)),
        ("scoring_file_v_1_0_0.py", ("data", False)),
        ("score.py", ("data", False)),
    ],
)
def test_the_deployment_says_what_it_accepts(script: str | None, contract: tuple) -> None:
    assert scoring_contract(deployment(script)) == contract


def test_mlflow_no_code_deployments_get_an_input_data_body_and_answer_labels() -> None:
    shape, method = request_for(*scoring_contract(deployment(None)))
    assert (shape, method) == ("input_data", "predict")
    body = build_payload(RECORDS, shape, method)
    assert body == {
        "input_data": {
            "columns": COLUMNS,
            "index": [0, 1],
            "data": [[41, "admin.", 871], [29, "services", 95]],
        }
    }
    assert mlflow_script(body, COLUMNS) == ["yes", "no"]


def test_what_the_score_page_used_to_send_is_refused_by_the_mlflow_script() -> None:
    # `Inputs`/`GlobalParameters` with predict_proba, whatever the deployment: not for MLflow.
    with pytest.raises(ScoringRefused, match="input_data"):
        mlflow_script(build_payload(RECORDS, "inputs", "predict_proba"), COLUMNS)


def test_asking_the_mlflow_script_for_probabilities_still_gets_labels() -> None:
    # `params` reach predict and are ignored: the answer would be read as probabilities.
    body = build_payload(RECORDS, "input_data", "predict_proba")
    assert body["params"] == {"method": "predict_proba"}
    assert mlflow_script(body, COLUMNS) == ["yes", "no"]


def test_automl_script_deployments_answer_probabilities() -> None:
    shape, method = request_for(*scoring_contract(deployment("scoring_file_v_2_0_0.py")))
    assert (shape, method) == ("inputs", "predict_proba")
    body = build_payload(RECORDS, shape, method)
    assert body == {"Inputs": {"data": RECORDS}, "GlobalParameters": {"method": "predict_proba"}}
    assert automl_v2_script(body, COLUMNS) == {"Results": [[0.129, 0.871], [0.905, 0.095]]}
    assert automl_v2_script(build_payload(RECORDS, shape, "predict"), COLUMNS) == {
        "Results": ["yes", "no"]
    }
    with pytest.raises(ScoringRefused, match="input_data|Inputs"):
        automl_v2_script(build_payload(RECORDS, "input_data", "predict"), COLUMNS)


def test_score_reads_each_answer_shape_over_http() -> None:
    mlflow = ScoringEndpoint("mlflow", COLUMNS, KEYS)
    labels = score(URI, "k1", RECORDS, *request_for("input_data", False), session=_to(mlflow))
    assert labels.predictions == ["yes", "no"] and labels.probabilities is None
    automl = ScoringEndpoint("automl_v2", COLUMNS, KEYS)
    probs = score(URI, "k2", RECORDS, *request_for("inputs", True), session=_to(automl))
    assert probs.probabilities == [[0.129, 0.871], [0.905, 0.095]]
    assert automl.bodies[-1]["GlobalParameters"] == {"method": "predict_proba"}


def test_the_page_note_for_label_only_endpoints_names_the_way_out() -> None:
    assert "predict_proba" in LABELS_ONLY and "scoring_file_v_2_0_0.py" in LABELS_ONLY
    with pytest.raises(ValueError, match="shape"):
        request_for("dataframe_split", True)


def _to(endpoint: ScoringEndpoint):  # noqa: ANN202
    return requests_session(endpoint)
