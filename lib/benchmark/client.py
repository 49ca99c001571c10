"""The raw HTTP/1.1 client: request bytes built once, one asyncio protocol per connection.

``HttpConnection`` writes a prebuilt request and parses exactly one response (content-length,
chunked, or read-until-close), so the load loop never touches an HTTP library's per-request work.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lib.benchmark.config import (
    STATUS_CONNECTION_ERROR,
    STATUS_PROTOCOL_ERROR,
    BenchmarkConfig,
    status_name,
)

_MAX_HEAD_BYTES = 64 * 1024


def encode_body(body: Any) -> bytes:
    """A request body as bytes: bytes/str as given, anything else as compact JSON."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


def load_bodies(path: Path) -> list[Any]:
    """Bodies from a file: .jsonl = one body per line; .json list = several bodies, else one."""
    text = Path(path).read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    return data if isinstance(data, list) else [data]


def build_requests(config: BenchmarkConfig, bodies: Sequence[Any] | None) -> list[bytes]:
    """Serialise every request once, so the hot loop only writes bytes."""
    parts = urlsplit(config.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {config.url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if parts.scheme == "https" else 80
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    host_header = host if (parts.port or default_port) == default_port else f"{host}:{parts.port}"
    method = config.method.upper()
    headers = {"Host": host_header, "User-Agent": "opsdeck-bench", "Accept": "*/*"}
    if config.key:
        headers["Authorization"] = f"Bearer {config.key}"
    headers.update(config.headers)
    if not config.keep_alive:
        headers["Connection"] = "close"
    encoded = [encode_body(b) for b in bodies] if bodies else [b""]
    out = []
    for payload in encoded:
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if payload or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Type: {config.content_type}")
            lines.append(f"Content-Length: {len(payload)}")
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
    return out


class RequestFailed(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status_name(status))
        self.status = status


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection: write a request, parse exactly one response."""

    def __init__(self, head_only: bool) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.must_close = False
        self.t_done = 0
        self.head_only = head_only
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.need = -1  # body bytes still expected; -1 = headers not parsed yet
        self.chunked = False
        self.until_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            try:
                self._parse()
            except (ValueError, IndexError):
                self._fail(STATUS_PROTOCOL_ERROR)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self.until_close and self.need == 0:
                self._complete()
            else:
                self.waiter = None
                waiter.set_exception(RequestFailed(STATUS_CONNECTION_ERROR))

    def send(self, request: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[int]:
        self._reset()
        self.waiter = fut = loop.create_future()
        self.transport.write(request)  # type: ignore[union-attr]
        if self.buf:
            self._parse()
        return fut

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, status: int) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(RequestFailed(status))
        self.abort()

    def _complete(self) -> None:
        self.t_done = time.monotonic_ns()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self.status)

    def _parse(self) -> None:
        buf = self.buf
        while self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD_BYTES:
                    raise ValueError("response head too large")
                return
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            if not head.startswith(b"http/1."):
                raise ValueError("not an HTTP/1.x response")
            status = int(head[9:12])
            if 100 <= status < 200:
                continue  # interim response; the final one follows
            self.status = status
            http10 = head.startswith(b"http/1.0")
            self.must_close = b"\nconnection: close" in head or (
                http10 and b"\nconnection: keep-alive" not in head
            )
            te = head.find(b"\ntransfer-encoding:")
            cl = head.find(b"\ncontent-length:")
            if self.head_only or status in (204, 304):
                self.need = 0
            elif te >= 0 and b"chunked" in head[te : head.find(b"\n", te + 1) % (len(head) + 1)]:
                self.chunked = True
                self.need = 0
            elif cl >= 0:
                stop = head.find(b"\r", cl + 16)
                self.need = int(head[cl + 16 : stop if stop >= 0 else len(head)])
            else:
                self.until_close = True
                self.must_close = True
                self.need = 0
                buf.clear()
                return
        if self.until_close:
            buf.clear()
            return
        if self.chunked:
            self._parse_chunks()
            return
        if len(buf) >= self.need:
            del buf[: self.need]
            self._complete()

    def _parse_chunks(self) -> None:
        buf = self.buf
        while True:
            if self.need > 0:  # inside a chunk: data + CRLF
                if len(buf) < self.need + 2:
                    return
                del buf[: self.need + 2]
                self.need = 0
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buf[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                if buf.startswith(b"0\r\n\r\n", 0) or buf[line_end : line_end + 4] == b"\r\n\r\n":
                    del buf[: line_end + 4]
                    self._complete()
                    return
                trailer_end = buf.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return
                del buf[: trailer_end + 4]
                self._complete()
                return
            del buf[: line_end + 2]
            self.need = size
