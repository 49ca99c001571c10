"""The raw HTTP client: prebuilt request bytes, and response parsing fed byte by byte."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.benchmark import (
    STATUS_CONNECTION_ERROR,
    STATUS_PROTOCOL_ERROR,
    BenchmarkConfig,
    build_requests,
    load_bodies,
)
from lib.benchmark.client import HttpConnection, RequestFailed

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHello world!"


class FakeTransport:
    """Records what the connection writes; the test plays the server's bytes."""

    def __init__(self) -> None:
        self.written = b""
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        pass


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def connect(head_only: bool = False) -> tuple[HttpConnection, FakeTransport]:
    conn = HttpConnection(head_only)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def feed(conn: HttpConnection, data: bytes, step: int) -> None:
    for i in range(0, len(data), step):
        conn.data_received(data[i : i + step])


def test_requests_are_prebuilt_and_key_never_serialised() -> None:
    config = BenchmarkConfig(url="http://h.example:8080/score?x=1", key="topsecret", method="POST")
    reqs = build_requests(config, [{"data": [{"a": 1}]}, "raw"])
    assert reqs[0].startswith(b"POST /score?x=1 HTTP/1.1\r\nHost: h.example:8080\r\n")
    assert b"Authorization: Bearer topsecret\r\n" in reqs[0]
    assert reqs[0].endswith(b'Content-Length: 18\r\n\r\n{"data":[{"a":1}]}')
    assert reqs[1].endswith(b"\r\n\r\nraw")
    dumped = json.dumps(config.to_dict())
    assert "topsecret" not in dumped and config.to_dict()["auth"] is True
    assert "topsecret" not in repr(config)
    with pytest.raises(ValueError):
        build_requests(BenchmarkConfig(url="ftp://x/"), None)


@pytest.mark.parametrize("step", [1, 7, 1000])
def test_content_length_responses_on_one_connection(loop, step: int) -> None:
    conn, transport = connect()
    first = conn.send(b"GET / HTTP/1.1\r\n\r\n", loop)
    feed(conn, OK, step)
    assert first.result() == 200 and not conn.must_close
    second = conn.send(b"GET /x HTTP/1.1\r\n\r\n", loop)
    feed(conn, b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}", step)
    assert second.result() == 404
    assert transport.written == b"GET / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_chunked_body_with_trailer_and_interim_response(loop, step: int) -> None:
    conn, _ = connect()
    fut = conn.send(b"POST / HTTP/1.1\r\n\r\n", loop)
    response = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nHello\r\nb;ext=1\r\n chunked!!!\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    feed(conn, response[:-1], step)
    assert not fut.done()  # the last CRLF of the trailer is still missing
    conn.data_received(response[-1:])
    assert fut.result() == 201
    again = conn.send(b"GET / HTTP/1.1\r\n\r\n", loop)
    conn.data_received(OK)
    assert again.result() == 200


def test_close_delimited_body_completes_on_close(loop) -> None:
    conn, _ = connect()
    fut = conn.send(b"GET / HTTP/1.0\r\n\r\n", loop)
    conn.data_received(b"HTTP/1.0 200 OK\r\n\r\nbody until the server closes")
    assert not fut.done() and conn.must_close
    conn.connection_lost(None)
    assert fut.result() == 200


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0",
    ],
)
def test_responses_that_end_the_connection(loop, head: bytes) -> None:
    conn, _ = connect()
    fut = conn.send(b"GET / HTTP/1.1\r\n\r\n", loop)
    conn.data_received(head + b"\r\n\r\n")
    assert fut.result() == 200 and conn.must_close


def test_head_response_has_no_body(loop) -> None:
    conn, _ = connect(head_only=True)
    fut = conn.send(b"HEAD / HTTP/1.1\r\n\r\n", loop)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
    assert fut.result() == 200


def test_garbage_is_a_protocol_error_and_drops_the_connection(loop) -> None:
    conn, transport = connect()
    fut = conn.send(b"GET / HTTP/1.1\r\n\r\n", loop)
    conn.data_received(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    with pytest.raises(RequestFailed) as failed:
        fut.result()
    assert failed.value.status == STATUS_PROTOCOL_ERROR and transport.aborted


def test_connection_lost_mid_body_is_a_connection_error(loop) -> None:
    conn, _ = connect()
    fut = conn.send(b"GET / HTTP/1.1\r\n\r\n", loop)
    conn.data_received(OK[:-3])
    conn.connection_lost(ConnectionResetError())
    with pytest.raises(RequestFailed) as failed:
        fut.result()
    assert failed.value.status == STATUS_CONNECTION_ERROR and conn.closed


def test_load_bodies_json_list_single_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "many.json").write_text(json.dumps([{"a": 1}, {"a": 2}]))
    (tmp_path / "one.json").write_text(json.dumps({"data": [{"a": 1}]}))
    (tmp_path / "lines.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    assert load_bodies(tmp_path / "many.json") == [{"a": 1}, {"a": 2}]
    assert load_bodies(tmp_path / "one.json") == [{"data": [{"a": 1}]}]
    assert load_bodies(tmp_path / "lines.jsonl") == [{"a": 1}, {"a": 2}]
