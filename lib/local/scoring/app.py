"""The ASGI app: routing, auth hand-off, the request's path to the model, telemetry hand-off.

`create_app` builds it over an already-loaded model and a `ScoringSettings`; a server with
several deployments builds it over `Routes` (`routing`) and swaps them with `set_routes`. A
`POST /score` reads top-down: key check (`keys`), the deployment that answers (the split, or the
`azureml-model-deployment` header), body read within the size limit, shape parsed and records
validated (`payloads`), predicted on the served path (`served_model`) inline or, for large
batches, on a worker thread; every answered request is handed to the telemetry sink, naming the
deployment. A mirrored copy is scored after the answer was sent (`MirrorWorker`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from lib.local.scoring.connections import RECEIPT_EXPIRED
from lib.local.scoring.keys import KeyStore
from lib.local.scoring.payloads import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    InputError,
    dumps,
    parse_json,
    parse_payload,
    render_body,
    validate_records,
)
from lib.local.scoring.routing import Deployed, Routes
from lib.local.scoring.served_model import ServedModel, as_list, prepare_model
from lib.local.scoring.swagger import build_swagger, docs_asset, render_docs_html
from lib.local.telemetry import RequestRecord

log = logging.getLogger("opsdeck.scoring")

# Larger batches are predicted on a worker thread so health probes stay responsive.
INLINE_ROWS = 256
# Mirrored requests waiting to be scored; past this, copies are dropped (and counted).
MIRROR_QUEUE = 256
DEPLOYMENT_HEADER = b"azureml-model-deployment"
MIRROR_NAME = "POST /score (mirror)"


class RequestSink(Protocol):
    def record_request(self, record: RequestRecord) -> None: ...


@dataclass(frozen=True)
class ScoringSettings:
    """Everything the app needs besides the model; `keys_file=None` disables auth."""

    endpoint: str = "local"
    model_version: str = ""
    # The deployment a single-model app serves as (`create_app`).
    deployment: str = "default"
    keys_file: Path | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    telemetry: RequestSink | None = None
    check_records: list[dict] | None = None
    # Azure's inference server leaves liveness probes out of AppRequests; so do we by default.
    record_health_probes: bool = False
    title: str = ""
    # Public /swagger.json and /docs show training values only when the operator opts in.
    swagger_training_values: bool = False


_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"
_HTML = b"text/html; charset=utf-8"


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


class MirrorWorker:
    """Scores mirrored copies on one background thread, after the live answer was sent.

    The queue is bounded: when the mirrored deployment cannot keep up, copies are dropped and
    counted rather than slowing the live path. Each copy's answer is recorded (telemetry row
    named `MIRROR_NAME`, and the drift sample) and never returned to anyone.
    """

    def __init__(self, app: ScoringApp, capacity: int = MIRROR_QUEUE) -> None:
        self.app = app
        self._queue: queue.Queue[tuple] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self.submitted = 0
        self.dropped = 0
        self.scored = 0

    def submit(self, deployed: Deployed, records: list, method: str, url: str, op_id: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mirror", daemon=True)
            self._thread.start()
        self.submitted += 1
        try:
            self._queue.put_nowait((time.time(), deployed, records, method, url, op_id))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            wall, deployed, records, method, url, op_id = self._queue.get()
            start = time.perf_counter()
            served = deployed.served
            status, values = 200, None
            try:
                validate_records(
                    records,
                    served.columns,
                    self.app.settings.max_rows,
                    served.allows_null_integers,
                    served.ignored,
                )
                fn = served.predict_proba if method == "predict_proba" else served.predict
                values = as_list(fn(records))
            except InputError as exc:
                status = exc.status
            except Exception:
                log.exception("mirror deployment %s failed (operation %s)", deployed.name, op_id)
                status = 500
            self.scored += 1
            self.app.record(
                RequestRecord(
                    time=wall,
                    operation_id=op_id,
                    name=MIRROR_NAME,
                    url=url,
                    result_code=status,
                    duration_ms=(time.perf_counter() - start) * 1000,
                    endpoint=self.app.settings.endpoint,
                    model_version=deployed.model_version,
                    rows=len(records),
                    deployment=deployed.name,
                )
            )
            if values is not None:
                self.app.offer_inputs(records, values, deployed, method)


class ScoringApp:
    """The ASGI application; built by `create_app`."""

    def __init__(self, routes: Routes, settings: ScoringSettings) -> None:
        self.settings = settings
        self.keys = KeyStore(settings.keys_file) if settings.keys_file else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._base_url: str | None = None
        sink = settings.telemetry
        self.record = sink.record_request if sink is not None else _discard
        self._offer = getattr(sink, "record_inputs", None)
        self.mirror = MirrorWorker(self)
        # Set while the server hands its port to a new process: every answer closes its
        # connection, so keep-alive clients reconnect (to the new server) between requests.
        self.draining = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.routes = self._described(routes)

    @property
    def served(self) -> ServedModel:
        """The model of the deployment taking the most traffic."""
        return self.routes.primary.served

    def set_routes(self, routes: Routes) -> None:
        """Serve another routing table from the next request on (one atomic assignment)."""
        self.routes = self._described(routes)

    def _described(self, routes: Routes) -> Routes:
        primary = routes.primary
        served = primary.served
        title = self.settings.title or (
            f"{self.settings.endpoint} (model version {primary.model_version or '?'})"
        )
        try:
            example_output = served.predict([dict(r) for r in served.example_records])
        except Exception:
            example_output = None
        real = self.settings.swagger_training_values
        routes.swagger = {
            v: dumps(build_swagger(served, v, title, example_output, real)) for v in (2, 3)
        }
        routes.docs_html = render_docs_html(
            build_swagger(served, 2, title, example_output, real)
        ).encode()
        return routes

    def offer_inputs(self, records: list, values: list, deployed: Deployed, method: str) -> None:
        """Hand scored rows to drift sampling (cheap; the sink keeps few or none)."""
        if self._offer is not None:
            classes = deployed.served.classes if method == "predict_proba" else None
            self._offer(records, values, deployed.name, classes)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.loop = asyncio.get_running_loop()
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
        routes = self.routes
        deployed: Deployed | None = None
        copy: tuple | None = None
        try:
            if path == "/score":
                if method == "POST":
                    status, body, rows, deployed, copy = await self._score(scope, receive, routes)
                    ctype = _JSON
                    headers.append(
                        (
                            b"x-ms-run-fn-exec-ms",
                            f"{(time.perf_counter() - start) * 1000:.3f}".encode(),
                        )
                    )
                    if deployed is not None:
                        headers.extend(deployed.ok_headers if status == 200 else deployed.headers)
                    if status == 401:
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
                status, ctype, body = self._swagger(scope, routes)
            elif path == "/docs" and method in ("GET", "HEAD"):
                # A person reading the API docs in a browser, not a call of the API: the page
                # and its files stay out of AppRequests (they made the Logs page's counts).
                status, ctype, body = 200, _HTML, routes.docs_html
                record = False
            elif method in ("GET", "HEAD") and (asset := docs_asset(path)) is not None:
                status, (ctype, body) = 200, asset
                record = False
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
        if self.draining:
            headers.append((b"connection", b"close"))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        finally:
            if record:
                self.record(
                    RequestRecord(
                        time=wall,
                        operation_id=op_id,
                        name=f"{method} {path}",
                        url=self._url(scope),
                        result_code=status,
                        duration_ms=(time.perf_counter() - start) * 1000,
                        endpoint=self.settings.endpoint,
                        model_version=(deployed or routes.primary).model_version,
                        rows=rows,
                        deployment=deployed.name if deployed is not None else "",
                    )
                )
            if copy is not None:
                self.mirror.submit(*copy, self._url(scope), op_id)

    def _url(self, scope: dict) -> str:
        if self._base_url is None:
            server = scope.get("server") or ("localhost", None)
            host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
            self._base_url = f"{scope.get('scheme', 'http')}://{host}"
        qs = scope.get("query_string")
        return self._base_url + scope["path"] + ("?" + qs.decode("latin-1") if qs else "")

    def _swagger(self, scope: dict, routes: Routes) -> tuple[int, bytes, bytes]:
        qs = scope.get("query_string") or b""
        version = parse_qs(qs.decode("latin-1")).get("version", ["2"])[0] if qs else "2"
        spec = {"2": 2, "2.0": 2, "3": 3, "3.0": 3}.get(version)
        if spec is None:
            return (
                404,
                _JSON,
                dumps({"message": f"Swagger version {version!r} is not available; use 2 or 3"}),
            )
        return 200, _JSON, routes.swagger[spec]

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

    async def _score(
        self, scope: dict, receive: Callable, routes: Routes
    ) -> tuple[int, bytes, int | None, Deployed | None, tuple | None]:
        """(status, body, rows, the deployment that answered, the mirrored copy to score)."""
        if self.keys is not None and not self.keys.check(_header(scope, b"authorization")):
            return (
                401,
                dumps({"message": "Missing or invalid key: send 'Authorization: Bearer <key>'"}),
                None,
                None,
                None,
            )
        wanted = _header(scope, DEPLOYMENT_HEADER)
        if wanted is None:
            deployed = routes.pick()
        else:
            # Azure's header for testing one deployment whatever the split.
            name = wanted.decode("latin-1").strip()
            found = routes.get(name)
            if found is None:
                message = f"Deployment {name[:64]!r} is not serving on this endpoint"
                return 404, dumps({"message": message}), None, None, None
            deployed = found
        rows = None
        encoding = _header(scope, b"content-encoding")
        if encoding is not None and encoding.strip().lower() not in (b"", b"identity"):
            name = encoding.decode("latin-1")[:32]
            message = f"Content-Encoding {name!r} is not supported: send the JSON uncompressed"
            return 415, dumps({"message": message}), None, deployed, None
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                if scope.get(RECEIPT_EXPIRED):
                    message = "Request body not received in time"
                    return 408, dumps({"message": message}), None, deployed, None
                return 499, dumps({"message": "Client disconnected"}), None, deployed, None
            qs = scope.get("query_string")
            query_method = None
            if qs:
                values = parse_qs(qs.decode("latin-1")).get("method")
                query_method = values[0] if values else None
            parsed = parse_payload(parse_json(body), query_method)
            rows = len(parsed.records)
            served = deployed.served
            validate_records(
                parsed.records,
                served.columns,
                self.settings.max_rows,
                served.allows_null_integers,
                served.ignored,
            )
            fn = served.predict_proba if parsed.method == "predict_proba" else served.predict
            if rows > INLINE_ROWS:
                values = await asyncio.get_running_loop().run_in_executor(
                    self._executor, fn, parsed.records
                )
            else:
                values = fn(parsed.records)
            values = as_list(values)
            self.offer_inputs(parsed.records, values, deployed, parsed.method)
            target = routes.mirror() if wanted is None else None
            copy = None if target is None else (target, parsed.records, parsed.method)
            body = render_body(parsed.shape, values, parsed.records, served.columns)
            return 200, body, rows, deployed, copy
        except InputError as exc:
            return exc.status, dumps({"message": str(exc)}), rows, deployed, None


def _discard(record: RequestRecord) -> None:
    return None


def create_app(model: Any, settings: ScoringSettings) -> ScoringApp:
    """Build the ASGI app over a loaded pyfunc model (or an already prepared `ServedModel`).

    The model is served as the one deployment `settings.deployment`, taking all the traffic.
    """
    served = (
        model if isinstance(model, ServedModel) else prepare_model(model, settings.check_records)
    )
    log.info("scoring path: %s (%s)", served.path, served.check_message)
    deployed = Deployed.of(settings.deployment, settings.model_version, served)
    return ScoringApp(Routes({deployed.name: deployed}, {deployed.name: 100}), settings)
