"""Swagger 2.0 / OpenAPI 3 documents built from the model, and the route serving them."""

from __future__ import annotations

import json
import re

import pytest
import requests
from openapi_spec_validator import validate

from lib.local.scoring import ScoringSettings, create_app
from lib.local.scoring.served_model import prepare_model
from lib.local.scoring.swagger import build_swagger, synthetic_record
from tests.local.scoring_models import CATEGORIES, records
from tests.support.servers import LiveServer


@pytest.mark.parametrize("version", [2, 3])
def test_swagger_documents_validate(fast_pyfunc, version):
    served = prepare_model(fast_pyfunc)
    spec = build_swagger(
        served, version, "t", served.predict(served.example_records), training_values=True
    )
    validate(spec)
    schemas = spec["definitions"] if version == 2 else spec["components"]["schemas"]
    assert {"ServiceInput", "ServiceOutput", "ErrorResponse"} <= set(schemas)
    assert set(spec["paths"]) == {"/", "/score", "/swagger.json"}
    bearer = (
        spec["securityDefinitions"] if version == 2 else spec["components"]["securitySchemes"]
    )["Bearer"]
    assert (bearer["in"], bearer["name"]) == ("header", "Authorization")
    example = schemas["ServiceInput"]["example"]
    assert set(example["Inputs"]["data"][0]) == {"age", "balance", "job", "contact"}
    assert schemas["ServiceOutput"]["example"]["Results"] == served.predict(
        example["Inputs"]["data"]
    )


@pytest.mark.parametrize("version", ["2", "3"])
def test_swagger_route_serves_valid_specs(fast_endpoint, version):
    r = requests.get(fast_endpoint.url + "/swagger.json", params={"version": version})
    assert r.status_code == 200
    spec = r.json()
    validate(spec)
    assert spec.get("swagger", spec.get("openapi")).startswith(version)


def test_swagger_default_and_unknown_versions(fast_endpoint):
    assert requests.get(fast_endpoint.url + "/swagger.json").json()["swagger"] == "2.0"
    r = requests.get(fast_endpoint.url + "/swagger.json?version=9")
    assert r.status_code == 404 and "version" in r.json()["message"]


def _training_values(models) -> list[str]:
    """Strings that only the training data can tell: categories, class names, real values."""
    values = [c for cats in CATEGORIES.values() for c in cats] + ['"yes"', '"no"']
    for row in records(models.frame, 3):
        values += [json.dumps(row["balance"]), f'"age": {row["age"]}', f'"age":{row["age"]}']
    return values


def test_public_spec_and_docs_carry_no_training_values_by_default(fast_endpoint, models):
    texts = [
        requests.get(f"{fast_endpoint.url}/swagger.json?version={v}", timeout=5).text
        for v in (2, 3)
    ]
    texts.append(requests.get(f"{fast_endpoint.url}/docs", timeout=5).text)
    for text in texts:
        leaked = [v for v in _training_values(models) if v in text]
        assert not leaked, leaked
        assert "Training range" not in text and "Known categories" not in text
    spec = json.loads(texts[0])
    example = spec["definitions"]["ServiceInput"]["example"]["Inputs"]["data"]
    assert example == [{"age": 0, "balance": 0.0, "job": "string", "contact": "string"}]
    assert spec["definitions"]["ServiceOutput"]["example"] == {"Results": ["string"]}
    validate(spec)


@pytest.mark.parametrize("version", [2, 3])
def test_training_values_only_when_the_operator_opts_in(fast_pyfunc, models, version):
    served = prepare_model(fast_pyfunc)
    app = create_app(served, ScoringSettings(swagger_training_values=True))
    with LiveServer(app) as server:
        text = requests.get(f"{server.url}/swagger.json?version={version}", timeout=5).text
    validate(json.loads(text))
    assert "technician" in text and "Training range" in text
    assert synthetic_record(served.columns) == {
        "age": 0,
        "balance": 0.0,
        "job": "string",
        "contact": "string",
    }


def test_docs_work_offline_with_swagger_ui_served_by_the_endpoint(fast_endpoint):
    page = requests.get(f"{fast_endpoint.url}/docs", timeout=5)
    assert page.status_code == 200
    # No absolute URL in a src/href: nothing is loaded from another host (no CDN).
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and not [r for r in refs if re.match(r"(?i)^(https?:)?//", r)], refs
    assert "validatorUrl: null" in page.text  # Swagger UI would send the spec to its validator
    for ref in ("docs/swagger-ui.css", "docs/swagger-ui-bundle.js"):
        assert ref in refs
        asset = requests.get(f"{fast_endpoint.url}/{ref}", timeout=5)
        assert asset.status_code == 200 and len(asset.content) > 100_000
    css = requests.get(f"{fast_endpoint.url}/docs/swagger-ui.css", timeout=5)
    assert css.headers["content-type"].startswith("text/css")
    assert requests.get(f"{fast_endpoint.url}/docs/other.js", timeout=5).status_code == 404


def test_a_date_columns_example_is_a_date_the_endpoint_reads() -> None:
    """The example for a date column was "string", which the endpoint refuses as no date."""
    from lib.local.scoring.payloads import Column, validate_records
    from lib.local.scoring.swagger import _property_schema

    columns = [
        Column("sold", "string", date_format="%d/%m/%Y"),
        Column("seen", "string", date_format=""),
        Column("city", "string"),
    ]
    record = synthetic_record(columns)
    assert record == {"sold": "2024-05-31", "seen": "2024-05-31", "city": "string"}
    validate_records([record], columns, 1)  # accepted as it is
    described = _property_schema(columns[0], 3, training_values=False)
    assert described["example"] == "2024-05-31" and "or as %d/%m/%Y" in described["description"]
    assert "description" not in _property_schema(columns[2], 3, training_values=False)
