"""Swagger 2.0 / OpenAPI 3 documents built from the model, and the route serving them."""

from __future__ import annotations

import pytest
import requests
from openapi_spec_validator import validate

from lib.local.scoring.served_model import prepare_model
from lib.local.scoring.swagger import build_swagger


@pytest.mark.parametrize("version", [2, 3])
def test_swagger_documents_validate(fast_pyfunc, version):
    served = prepare_model(fast_pyfunc)
    spec = build_swagger(served, version, "t", served.predict(served.example_records))
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
