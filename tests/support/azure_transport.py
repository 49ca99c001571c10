"""An azure-core `HttpTransport` that answers from a handler instead of the network.

Plugged into `MLClient(..., transport=...)`, `LogsQueryClient(..., transport=...)` and the storage
clients, it lets every SDK build its real requests and parse real-looking answers: only the last
hop (sockets) is replaced. The answers come from `tests.support.azure_service`.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import urllib3
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline._tools import is_rest
from azure.core.pipeline.transport import HttpTransport
from azure.core.pipeline.transport._requests_basic import RequestsTransportResponse
from azure.core.rest._requests_basic import RestRequestsTransportResponse

TOKEN = "fake-aad-token"


class FakeCredential:
    """A TokenCredential that signs in at once; records the scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **_: Any) -> AccessTokenInfo:
        self.scopes.append(scopes)
        return AccessTokenInfo(TOKEN, int(time.time()) + 3600)


@dataclass
class Sent:
    """One request as it left the SDK."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """What the fake service answers: status, JSON (or raw bytes) body, headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Sent], Reply]


def _body_bytes(request: Any) -> bytes:
    body = getattr(request, "content", None) if is_rest(request) else None
    if body is None:
        body = getattr(request, "data", None)
    if body is None:
        body = getattr(request, "body", None)
    if body is None:
        return b""
    if hasattr(body, "read"):
        body = body.read()
    elif not isinstance(body, (bytes, bytearray, str)) and hasattr(body, "__iter__"):
        body = b"".join(c if isinstance(c, bytes) else str(c).encode() for c in body)
    return body.encode() if isinstance(body, str) else bytes(body)


class FakeTransport(HttpTransport):
    """Sends every request to `handler` and wraps its `Reply` as azure-core wraps `requests`.

    The response classes are azure-core's own (those `RequestsTransport` returns), so status
    mapping, JSON decoding and streaming behave as with the real transport.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[Sent] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def send(self, request: Any, **kwargs: Any) -> Any:
        sent = Sent(
            method=request.method,
            url=request.url,
            headers={k: str(v) for k, v in request.headers.items()},
            body=_body_bytes(request),
        )
        with self._lock:
            self.sent.append(sent)
        reply = self.handler(sent)
        content = (
            reply.body
            if isinstance(reply.body, (bytes, bytearray))
            else (b"" if reply.body is None else json.dumps(reply.body).encode())
        )
        response = requests.Response()
        response.status_code = reply.status
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        headers.setdefault("Content-Length", str(len(content)))
        response.headers.update(headers)
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(bytes(content)),
            status=reply.status,
            headers=headers,
            preload_content=False,
            request_method=request.method,  # a HEAD answer has a length but no body
        )
        response.url = request.url
        response.request = requests.Request(request.method, request.url).prepare()
        if is_rest(request):
            rest = RestRequestsTransportResponse(request=request, internal_response=response)
            if not kwargs.get("stream"):
                rest.read()
            return rest
        return RequestsTransportResponse(request, response)

    def requests_to(self, host_part: str) -> list[Sent]:
        """The requests whose host contains `host_part`, in order."""
        return [s for s in self.sent if host_part in s.host]


def route_storage_through(transport: FakeTransport, monkeypatch: Any) -> None:
    """Make the SDK's blob uploads and downloads use `transport` too.

    azure-ai-ml builds its `BlobServiceClient` itself (azure/ai/ml/_artifacts/
    _blob_storage_helper.py) without passing the MLClient's transport on; the storage SDK accepts
    one, so the test hands it over there.
    """
    from azure.ai.ml._artifacts import _blob_storage_helper
    from azure.storage.blob import BlobServiceClient

    def with_transport(*args: Any, **kwargs: Any) -> BlobServiceClient:
        return BlobServiceClient(*args, transport=transport, **kwargs)

    monkeypatch.setattr(_blob_storage_helper, "BlobServiceClient", with_transport)


class HandlerAdapter(requests.adapters.BaseAdapter):
    """The same handler behind `requests` (lib.scoring speaks plain HTTP, not azure-core)."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.sent: list[Sent] = []

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        body = request.body or b""
        sent = Sent(
            method=str(request.method),
            url=str(request.url),
            headers=dict(request.headers),
            body=body.encode() if isinstance(body, str) else bytes(body),
        )
        self.sent.append(sent)
        reply = self.handler(sent)
        content = (
            reply.body
            if isinstance(reply.body, (bytes, bytearray))
            else json.dumps(reply.body).encode()
        )
        response = requests.Response()
        response.status_code = reply.status
        response.headers.update({"Content-Type": "application/json", **reply.headers})
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(bytes(content)), status=reply.status, preload_content=False
        )
        response.request, response.url = request, str(request.url)
        return response

    def close(self) -> None:
        pass


def requests_session(handler: Handler) -> requests.Session:
    """A requests Session whose https requests all go to `handler`."""
    session = requests.Session()
    session.mount("https://", HandlerAdapter(handler))
    return session
