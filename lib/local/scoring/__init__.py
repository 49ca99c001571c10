"""The local scoring server: an ASGI app over an already-loaded model, answering like Azure's.

Routes follow Azure's inference server: `GET /` (liveness, `Healthy`), `POST /score`,
`GET /swagger.json` (`?version=2` Swagger 2.0, default; `?version=3` OpenAPI 3.0.3) and
`GET /docs` (Swagger UI, served by the endpoint from a pinned package: it works offline). Both
public documents carry synthetic examples, not training values, unless the operator opts in.
Probabilities come back as one list per row in the order given by the `x-ms-classes` response
header (a JSON list).

A request's path, one module per phase: `app` (ASGI routing, auth and telemetry hand-off) ->
`keys` (the `Bearer` check) -> `payloads` (the three request shapes, validation, response
shape) -> `served_model` (fast path or pyfunc, chosen and checked at start-up). `swagger`
describes the API; `serve` is the process entry point (`python -m lib.local.scoring.serve`),
with `connections` (request-receipt deadline, connection cap) and `server_log` (rotation).

The hot path is plain Python over the parsed JSON: no pandas and no per-request schema objects.
Pandas is used only when the model has no verified fast path (see `prepare_model`).
"""

from lib.local.scoring.app import ScoringApp, ScoringSettings, create_app
from lib.local.scoring.keys import KeyStore, read_keys_file, write_keys_file
from lib.local.scoring.payloads import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    METHODS,
    Column,
    InputError,
    parse_json,
    parse_payload,
    render_response,
    validate_records,
)
from lib.local.scoring.served_model import (
    ServedModel,
    columns_from_model,
    prepare_compiled,
    prepare_model,
)
from lib.local.scoring.swagger import build_swagger, render_docs_html

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "METHODS",
    "Column",
    "InputError",
    "KeyStore",
    "ScoringApp",
    "ScoringSettings",
    "ServedModel",
    "build_swagger",
    "columns_from_model",
    "create_app",
    "parse_json",
    "parse_payload",
    "prepare_compiled",
    "prepare_model",
    "read_keys_file",
    "render_docs_html",
    "render_response",
    "validate_records",
    "write_keys_file",
]
