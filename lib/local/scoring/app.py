"""The ASGI app: routing, auth hand-off, the request's path to the model, telemetry hand-off.

`create_app` builds it over an already-loaded model and a `ScoringSettings`. A `POST /score`
reads top-down: key check (`keys`), body read within the size limit, shape parsed and records
validated (`payloads`), predicted on the served path (`served_model`) inline or, for large
batches, on a worker thread; every answered request is handed to the telemetry sink.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from lib.local.scoring.keys import KeyStore
from lib.local.scoring.payloads import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    InputError,
    dumps,
    parse_json,
    parse_payload,
    render_response,
    validate_records,
)
from lib.local.scoring.served_model import ServedModel, as_list, prepare_model
from lib.local.scoring.swagger import build_swagger, render_docs_html
from lib.local.telemetry import RequestRecord

log = logging.getLogger("opsdeck.scoring")

# Larger batches are predicted on a worker thread so health probes stay responsive.
INLINE_ROWS = 256


class RequestSink(Protocol):
    def record_request(self, record: RequestRecord) -> None: ...


@dataclass(frozen=True)
class ScoringSettings:
    """Everything the app needs besides the model; `keys_file=None` disables auth."""

    endpoint: str = "local"
    model_version: str = ""
    keys_file: Path | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    telemetry: RequestSink | None = None
    check_records: list[dict] | None = None
    # Azure's inference server leaves liveness probes out of AppRequests; so do we by default.
    record_health_probes: bool = False
    title: str = ""


_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"
_HTML = b"text/html; charset=utf-8"


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


class ScoringApp:
    """The ASGI application; built by `create_app`."""

    def __init__(self, served: ServedModel, settings: ScoringSettings) -> None:
        self.served = served
        self.settings = settings
        self.keys = KeyStore(settings.keys_file) if settings.keys_file else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._base_url: str | None = None
        title = (
            settings.title or f"{settings.endpoint} (model version {settings.model_version or '?'})"
        )
        try:
            example_output = served.predict([dict(r) for r in served.example_records])
        except Exception:
            example_output = None
        self.swagger = {v: dumps(build_swagger(served, v, title, example_output)) for v in (2, 3)}
        self.docs_html = render_docs_html(build_swagger(served, 2, title, example_output)).encode()
        classes = dumps(served.classes) if served.classes is not None else None
        self._extra_headers = [(b"x-ms-classes", classes)] if classes else []

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self._executor.shutdown(wait=False)
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: dict, receive: Callable, send: Callable) -> None:
        start = time.perf_counter()
        wall = time.time()
        method, path = scope["method"], scope["path"]
        req_id = _header(scope, b"x-request-id")
        op_id = (
            req_id.decode("latin-1")
            if req_id and len(req_id) <= 64 and req_id.isascii()
            else uuid.uuid4().hex
        )
        rows: int | None = None
        headers = [(b"x-request-id", op_id.encode("latin-1"))]
        record = True
        try:
            if path == "/score":
                if method == "POST":
                    status, body, rows = await self._score(scope, receive)
                    ctype = _JSON
                    headers.append(
                        (
                            b"x-ms-run-fn-exec-ms",
                            f"{(time.perf_counter() - start) * 1000:.3f}".encode(),
                        )
                    )
                    if status == 200:
                        headers.extend(self._extra_headers)
                    elif status == 401:
                        headers.append((b"www-authenticate", b"Bearer"))
                else:
                    status, ctype, body = (
                        405,
                        _JSON,
                        dumps({"message": f"Method {method} not allowed on /score; use POST"}),
                    )
                    headers.append((b"allow", b"POST"))
            elif path == "/" and method in ("GET", "HEAD"):
                status, ctype, body = 200, _TEXT, b"Healthy"
                record = self.settings.record_health_probes
            elif path == "/swagger.json" and method in ("GET", "HEAD"):
                status, ctype, body = self._swagger(scope)
            elif path == "/docs" and method in ("GET", "HEAD"):
                status, ctype, body = 200, _HTML, self.docs_html
            elif path in ("/", "/swagger.json", "/docs"):
                status, ctype, body = (
                    405,
                    _JSON,
                    dumps({"message": f"Method {method} not allowed on {path}"}),
                )
            else:
                status, ctype, body = 404, _JSON, dumps({"message": f"Not found: {path}"})
        except Exception:
            log.exception("internal error while serving %s %s (operation %s)", method, path, op_id)
            status, ctype = 500, _JSON
            body = dumps({"message": f"Internal server error (operation id {op_id})"})
        headers.append((b"content-type", ctype))
        headers.append((b"content-length", str(len(body)).encode()))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        finally:
            sink = self.settings.telemetry
            if record and sink is not None:
                sink.record_request(
                    RequestRecord(
                        time=wall,
                        operation_id=op_id,
                        name=f"{method} {path}",
                        url=self._url(scope),
                        result_code=status,
                        duration_ms=(time.perf_counter() - start) * 1000,
                        endpoint=self.settings.endpoint,
                        model_version=self.settings.model_version,
                        rows=rows,
                    )
                )

    def _url(self, scope: dict) -> str:
        if self._base_url is None:
            server = scope.get("server") or ("localhost", None)
            host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
            self._base_url = f"{scope.get('scheme', 'http')}://{host}"
        qs = scope.get("query_string")
        return self._base_url + scope["path"] + ("?" + qs.decode("latin-1") if qs else "")

    def _swagger(self, scope: dict) -> tuple[int, bytes, bytes]:
        qs = scope.get("query_string") or b""
        version = parse_qs(qs.decode("latin-1")).get("version", ["2"])[0] if qs else "2"
        spec = {"2": 2, "2.0": 2, "3": 3, "3.0": 3}.get(version)
        if spec is None:
            return (
                404,
                _JSON,
                dumps({"message": f"Swagger version {version!r} is not available; use 2 or 3"}),
            )
        return 200, _JSON, self.swagger[spec]

    async def _read_body(self, scope: dict, receive: Callable) -> bytes | None:
        limit = self.settings.max_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise InputError("Content-Length is not a number") from None
            if size > limit:
                raise InputError(
                    f"Request body too large: {size} bytes (the limit is {limit})", 413
                )
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if chunk:
                total += len(chunk)
                if total > limit:
                    raise InputError(f"Request body too large: over {limit} bytes", 413)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _score(self, scope: dict, receive: Callable) -> tuple[int, bytes, int | None]:
        if self.keys is not None and not self.keys.check(_header(scope, b"authorization")):
            return (
                401,
                dumps({"message": "Missing or invalid key: send 'Authorization: Bearer <key>'"}),
                None,
            )
        rows = None
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                return 499, dumps({"message": "Client disconnected"}), None
            qs = scope.get("query_string")
            query_method = None
            if qs:
                values = parse_qs(qs.decode("latin-1")).get("method")
                query_method = values[0] if values else None
            parsed = parse_payload(parse_json(body), query_method)
            rows = len(parsed.records)
            served = self.served
            validate_records(
                parsed.records, served.columns, self.settings.max_rows, served.allows_null_integers
            )
            fn = served.predict_proba if parsed.method == "predict_proba" else served.predict
            if rows > INLINE_ROWS:
                values = await asyncio.get_running_loop().run_in_executor(
                    self._executor, fn, parsed.records
                )
            else:
                values = fn(parsed.records)
            return 200, dumps(render_response(parsed.shape, as_list(values))), rows
        except InputError as exc:
            return exc.status, dumps({"message": str(exc)}), rows


def create_app(model: Any, settings: ScoringSettings) -> ScoringApp:
    """Build the ASGI app over a loaded pyfunc model (or an already prepared `ServedModel`)."""
    served = (
        model if isinstance(model, ServedModel) else prepare_model(model, settings.check_records)
    )
    log.info("scoring path: %s (%s)", served.path, served.check_message)
    return ScoringApp(served, settings)
