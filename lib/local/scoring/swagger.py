"""The endpoint's API description: Swagger 2.0 / OpenAPI 3.0.3 from the model's columns, and `/docs`.

Both are public (no key), so by default they carry no training data: examples are generated from
the column types, and category lists, training ranges and class names are left out. An operator
can opt in to the real values (`Settings.swagger_training_values`). `/docs` is Swagger UI from
the pinned `swagger-ui-bundle` package, served by the endpoint itself: it works offline.
"""

from __future__ import annotations

import html
import json
import math
from functools import cache
from typing import TYPE_CHECKING, Any

from lib.local.scoring.payloads import METHODS, Column

if TYPE_CHECKING:
    from lib.local.scoring.served_model import ServedModel

# The Swagger UI files `/docs` loads, served from the installed package (no CDN).
DOCS_ASSETS = {
    "/docs/swagger-ui.css": ("swagger-ui.css", b"text/css; charset=utf-8"),
    "/docs/swagger-ui-bundle.js": ("swagger-ui-bundle.js", b"text/javascript; charset=utf-8"),
}
# A value of each type, for examples that must not come from the training data.
SYNTHETIC_VALUES: dict[str, Any] = {
    "number": 0.0,
    "integer": 0,
    "boolean": False,
    "string": "string",
}


def _json_safe(value: Any) -> Any:
    """NaN and infinity (e.g. in a training example) become null: the spec must be strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


# A date-time feature's example: "string" would be refused as no date.
SYNTHETIC_DATE = "2024-05-31"


def _synthetic(col: Column) -> Any:
    return SYNTHETIC_DATE if col.date_format is not None else SYNTHETIC_VALUES[col.kind]


def synthetic_record(columns: list[Column]) -> dict:
    """One example record built from the column types only."""
    return {c.name: _synthetic(c) for c in columns}


def _property_schema(col: Column, version: int, training_values: bool) -> dict:
    types = {
        "number": ("number", "double"),
        "integer": ("integer", "int64"),
        "boolean": ("boolean", None),
        "string": ("string", None),
    }
    t, fmt = types[col.kind]
    prop: dict[str, Any] = {"type": t}
    if fmt:
        prop["format"] = fmt
    prop["x-nullable" if version == 2 else "nullable"] = True
    if col.date_format is not None:
        written = f", or as {col.date_format}" if col.date_format else ""
        prop["description"] = f"A date: ISO 8601 (2024-05-31 or 2024-05-31T13:45:00){written}"
    if not training_values:
        prop["example"] = _synthetic(col)
        return prop
    desc = []
    if col.categories:
        cats = ", ".join(str(c) for c in col.categories[:30])
        desc.append(f"Known categories: {cats}{' ...' if len(col.categories) > 30 else ''}")
    if col.minimum is not None and col.maximum is not None:
        desc.append(f"Training range {col.minimum} to {col.maximum}")
    if desc:
        prop["description"] = ". ".join([*desc, *filter(None, [prop.get("description")])])
    if col.example is not None:
        prop["example"] = _json_safe(col.example)
    return prop


def build_swagger(
    served: ServedModel,
    version: int = 2,
    title: str = "",
    example_output: list | None = None,
    training_values: bool = False,
) -> dict:
    """Swagger 2.0 (`version=2`) or OpenAPI 3.0.3 (`version=3`) document for the endpoint.

    Without `training_values` the examples are synthetic and no category, range or class name
    of the training data appears (`example_output` is then ignored).
    """
    if version not in (2, 3):
        raise ValueError("version must be 2 or 3")
    ref = "#/definitions/" if version == 2 else "#/components/schemas/"
    label_type = "string"
    if served.classes and all(
        isinstance(c, bool | int) and not isinstance(c, bool) for c in served.classes
    ):
        label_type = "integer"
    elif served.task == "regression":
        label_type = "number"
    if training_values:
        records = [
            {c.name: _json_safe(r.get(c.name)) for c in served.columns}
            for r in served.example_records
        ]
        outputs = _json_safe(example_output) if example_output is not None else []
    else:
        records = [synthetic_record(served.columns)]
        outputs = [SYNTHETIC_VALUES[label_type]]
    example_in = {"Inputs": {"data": records}, "GlobalParameters": {"method": "predict"}}
    example_out = {"Results": outputs}
    record_schema = {
        "type": "object",
        "required": [c.name for c in served.columns if c.required],
        "properties": {
            c.name: _property_schema(c, version, training_values) for c in served.columns
        },
        "additionalProperties": False,
    }
    records_schema = {"type": "array", "items": {"$ref": ref + "ServiceRecord"}}
    method_schema = {"type": "string", "enum": list(METHODS), "default": "predict"}
    if training_values and served.classes:
        classes_note = f" Classes, in probability order: {served.classes}."
    elif served.classes:
        classes_note = " The classes, in probability order, are in the `x-ms-classes` header."
    else:
        classes_note = ""
    prediction = {
        "description": (
            "One prediction per input row, in input order; with method=predict_proba a list of "
            "class probabilities per row." + classes_note
        ),
    }
    if version == 3:
        prediction["oneOf"] = [{"type": label_type}, {"type": "array", "items": {"type": "number"}}]
    schemas = {
        "ServiceRecord": record_schema,
        "ServiceInput": {
            "type": "object",
            "description": (
                "Send exactly one of: `Inputs` (+ optional `GlobalParameters`), answered with "
                "`Results`; `data` (+ optional `method`), answered with `result`; or `input_data` "
                "({columns, index, data}, + optional `params.method`), answered with a bare array."
            ),
            "properties": {
                "Inputs": {
                    "type": "object",
                    "properties": {"data": records_schema},
                    "required": ["data"],
                },
                "GlobalParameters": {"type": "object", "properties": {"method": method_schema}},
                "data": records_schema,
                "method": method_schema,
                "input_data": {
                    "type": "object",
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "index": {"type": "array", "items": {"type": "integer"}},
                        "data": {"type": "array", "items": {"type": "array", "items": {}}},
                    },
                    "required": ["columns", "data"],
                },
                "params": {"type": "object", "properties": {"method": method_schema}},
            },
            "example": example_in,
        },
        "ServiceOutput": {
            "type": "object",
            "description": "`Results` for `Inputs` requests, `result` for `data` requests; `input_data` requests get the bare list.",
            "properties": {
                "Results": {"type": "array", "items": prediction},
                "result": {"type": "array", "items": prediction},
            },
            "example": example_out,
        },
        "ErrorResponse": {
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
            "example": {"message": "Row 0, column 'age': expected a number, got \"abc\""},
        },
    }
    title = title or "opsdeck scoring endpoint"
    examples_note = "" if training_values else " Examples are generated from the column types."
    info = {
        "title": title,
        "description": f"API specification for the scoring endpoint {title}.{examples_note}",
        "version": "1.0",
    }
    errors = {
        "400": "Bad input; the message names the field or row",
        "401": "Missing or invalid key",
        "413": "Body or row count over the limit",
    }
    method_param = {
        "name": "method",
        "in": "query",
        "required": False,
        "description": "predict_proba returns class probabilities for any request shape",
    }
    version_param = {
        "name": "version",
        "in": "query",
        "required": False,
        "description": "2 (Swagger 2.0, default) or 3 (OpenAPI 3.0.3)",
    }

    def _resp(desc: str, schema_name: str, media: str = "application/json") -> dict:
        if version == 2:
            return {"description": desc, "schema": {"$ref": ref + schema_name}}
        return {"description": desc, "content": {media: {"schema": {"$ref": ref + schema_name}}}}

    score_responses = {"200": _resp("Predictions in the shape of the request", "ServiceOutput")}
    score_responses |= {code: _resp(desc, "ErrorResponse") for code, desc in errors.items()}
    score_responses["default"] = _resp("Server fault", "ErrorResponse")
    health_ok = {"description": "The server is up"}
    if version == 2:
        health_ok["schema"] = {"type": "string", "example": "Healthy"}
        spec_ok = {"description": "This document", "schema": {"type": "object"}}
        score_params = [
            {
                "name": "serviceInputPayload",
                "in": "body",
                "required": True,
                "schema": {"$ref": ref + "ServiceInput"},
            },
            method_param | {"type": "string", "enum": list(METHODS)},
        ]
        version_param = version_param | {"type": "string", "enum": ["2", "3"]}
    else:
        health_ok["content"] = {"text/plain": {"schema": {"type": "string", "example": "Healthy"}}}
        spec_ok = {
            "description": "This document",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
        score_params = [method_param | {"schema": {"type": "string", "enum": list(METHODS)}}]
        version_param = version_param | {"schema": {"type": "string", "enum": ["2", "3"]}}
    score_op: dict[str, Any] = {
        "operationId": "RunMLService",
        "summary": "Score records with the deployed model",
        "description": "Run the model on the rows of the request. Authorization: 'Bearer <key>'.",
        "security": [{"Bearer": []}],
        "parameters": score_params,
        "responses": score_responses,
    }
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "operationId": "ServiceHealthCheck",
                "summary": "Liveness",
                "responses": {"200": health_ok},
            }
        },
        "/score": {"post": score_op},
        "/swagger.json": {
            "get": {
                "operationId": "GetSwaggerSpec",
                "summary": "This API specification",
                "parameters": [version_param],
                "responses": {"200": spec_ok},
            }
        },
    }
    bearer = {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "For example: Bearer abc123",
    }
    if version == 2:
        paths["/"]["get"]["produces"] = ["text/plain"]
        score_op["consumes"] = ["application/json"]
        score_op["produces"] = ["application/json"]
        return {
            "swagger": "2.0",
            "info": info,
            "schemes": ["http"],
            "consumes": ["application/json"],
            "produces": ["application/json"],
            "securityDefinitions": {"Bearer": bearer},
            "paths": paths,
            "definitions": schemas,
        }
    score_op["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": ref + "ServiceInput"}, "example": example_in}
        },
    }
    return {
        "openapi": "3.0.3",
        "info": info,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"Bearer": bearer}},
    }


def render_docs_html(spec: dict) -> str:
    """The `/docs` page: a static description that Swagger UI (served beside it) replaces."""
    e = html.escape
    schemas = spec.get("definitions") or spec["components"]["schemas"]
    record = schemas["ServiceRecord"]
    rows = []
    for name, prop in record["properties"].items():
        rows.append(
            f"<tr><td><code>{e(name)}</code></td><td>{e(prop['type'])}</td>"
            f"<td><code>{e(json.dumps(prop.get('example')))}</code></td>"
            f"<td>{e(prop.get('description', ''))}</td></tr>"
        )
    example = json.dumps(schemas["ServiceInput"]["example"], indent=2)
    output = json.dumps(schemas["ServiceOutput"]["example"], indent=2)
    title = e(spec["info"]["title"])
    curl = (
        'curl -X POST "$SCORING_URI" -H "Content-Type: application/json" '
        '-H "Authorization: Bearer $KEY" -d @body.json'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; }}
pre {{ background: #f6f8fa; padding: .8rem; overflow-x: auto; }} code {{ font-size: .95em; }}
.route {{ font-family: monospace; font-weight: bold; }}
</style></head><body>
<div id="swagger-ui"><div id="static-doc">
<h1>{title}</h1>
<p>Specification: <a href="swagger.json?version=2">swagger.json (Swagger 2.0)</a> ·
<a href="swagger.json?version=3">swagger.json?version=3 (OpenAPI 3.0.3)</a></p>
<h2>Routes</h2>
<table><tr><th>route</th><th>auth</th><th>what it does</th></tr>
<tr><td class="route">GET /</td><td>none</td><td>liveness: answers <code>Healthy</code></td></tr>
<tr><td class="route">POST /score</td><td><code>Authorization: Bearer &lt;key&gt;</code></td><td>predictions for the rows of the body</td></tr>
<tr><td class="route">GET /swagger.json</td><td>none</td><td>this API as Swagger 2.0 or OpenAPI 3 (<code>?version=3</code>)</td></tr>
</table>
<h2>Request shapes</h2>
<table><tr><th>body</th><th>answer</th><th>probabilities</th></tr>
<tr><td><code>{{"Inputs": {{"data": [records]}}, "GlobalParameters": {{"method": "predict"}}}}</code></td><td><code>{{"Results": [...]}}</code></td><td><code>"method": "predict_proba"</code></td></tr>
<tr><td><code>{{"data": [records]}}</code></td><td><code>{{"result": [...]}}</code></td><td><code>"method": "predict_proba"</code> or <code>?method=predict_proba</code></td></tr>
<tr><td><code>{{"input_data": {{"columns": [...], "index": [...], "data": [[...]]}}}}</code></td><td><code>[...]</code></td><td><code>"params": {{"method": "predict_proba"}}</code> or <code>?method=predict_proba</code></td></tr>
</table>
<p>Errors are <code>{{"message": "..."}}</code> with a 4xx status that names the row and column.</p>
<h2>Input columns (one record)</h2>
<table><tr><th>column</th><th>type</th><th>example</th><th>notes</th></tr>
{"".join(rows)}
</table>
<h2>Example request</h2><pre>{e(example)}</pre>
<h2>Example response</h2><pre>{e(output)}</pre>
<h2>curl</h2><pre>{e(curl)}</pre>
</div></div>
<link rel="stylesheet" href="docs/swagger-ui.css">
<script src="docs/swagger-ui-bundle.js"></script>
<script>
if (window.SwaggerUIBundle) {{
  window.SwaggerUIBundle({{url: "swagger.json?version=2", dom_id: "#swagger-ui", validatorUrl: null}});
}}
</script>
</body></html>
"""


@cache
def _asset(name: str) -> bytes | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    try:
        return (swagger_ui_path / name).read_bytes()
    except OSError:
        return None


def docs_asset(path: str) -> tuple[bytes, bytes] | None:
    """(content type, bytes) of a Swagger UI file under `/docs/`, or None if there is none."""
    entry = DOCS_ASSETS.get(path)
    if entry is None:
        return None
    body = _asset(entry[0])
    return None if body is None else (entry[1], body)
