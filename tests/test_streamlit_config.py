"""Who can drive the dashboard: a real `streamlit run` with the committed .streamlit/config.toml.

Every page runs over the WebSocket at /_stcore/stream, so a refused handshake means the page
cannot be driven. A DNS-rebinding page reaches this server under its own name (the Host
header); a page on another origin sends its own Origin.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import tomllib
from collections.abc import Iterator

import pytest
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from lib.settings import REPO_ROOT
from tests.e2e.conftest import start_dashboard

pytestmark = pytest.mark.slow


def handshake(port: int, host: str, origin: str | None = None) -> int:
    """The HTTP status of a WebSocket upgrade request for the dashboard's stream."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /_stcore/stream HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: streamlit",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(1024)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0


@pytest.fixture(scope="module")
def dashboard_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    server, _ = start_dashboard(tmp_path_factory.mktemp("hosts-home"))
    try:
        yield server.port
    finally:
        server.stop(grace_s=20)


def test_the_committed_config_limits_hosts_and_hides_error_details() -> None:
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["allowedHosts"] == ["localhost", "127.0.0.1", "::1"]
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["enableCORS"] is True
    assert config["client"]["showErrorDetails"] == "none"


def test_the_dashboard_answers_its_own_names(dashboard_port: int) -> None:
    for host in (f"127.0.0.1:{dashboard_port}", f"localhost:{dashboard_port}"):
        assert handshake(dashboard_port, host, origin=f"http://{host}") == 101
    assert handshake(dashboard_port, f"[::1]:{dashboard_port}") == 101
    assert handshake(dashboard_port, f"127.0.0.1:{dashboard_port}") == 101  # no Origin: a CLI


def test_a_rebound_name_cannot_open_the_dashboard(dashboard_port: int) -> None:
    evil = f"evil.example:{dashboard_port}"
    assert handshake(dashboard_port, evil, origin=f"http://{evil}") == 403
    assert handshake(dashboard_port, evil) == 403


def test_a_page_on_another_origin_cannot_open_the_dashboard(dashboard_port: int) -> None:
    host = f"127.0.0.1:{dashboard_port}"
    assert handshake(dashboard_port, host, origin="http://evil.example") == 403
    # Streamlit trusts every port of localhost at the handshake; app.py refuses to run any page
    # for such a session (tests/test_access.py).
    assert handshake(dashboard_port, host, origin=f"http://127.0.0.1:{dashboard_port + 1}") == 101


async def _drive(port: int, origin: str, timeout: float) -> list[str]:
    """Run the app over its WebSocket as a page served from `origin` would; the texts shown."""
    texts: list[str] = []
    url = f"ws://127.0.0.1:{port}/_stcore/stream"
    async with websockets.connect(url, origin=origin, subprotocols=["streamlit"]) as ws:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        await ws.send(rerun.SerializeToString())
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=end - loop.time())
            except TimeoutError:
                break
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            # st.navigation reruns once to pick the default page: wait for the run after it.
            if msg.WhichOneof("type") == "script_finished" and (
                msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN
            ):
                break
            if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                texts.append(getattr(getattr(element, element.WhichOneof("type")), "body", ""))
    return texts


def test_a_page_on_another_localhost_port_cannot_drive_the_dashboard(dashboard_port: int) -> None:
    own = asyncio.run(_drive(dashboard_port, f"http://127.0.0.1:{dashboard_port}", 120))
    assert any("Workspace" in t for t in own), own
    other = asyncio.run(_drive(dashboard_port, f"http://127.0.0.1:{dashboard_port + 1}", 60))
    assert any("opened from another site" in t for t in other), other
    assert not any("Workspace" in t for t in other), other


def test_an_uncaught_error_shows_no_details_in_the_browser(monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(REPO_ROOT)  # Streamlit reads .streamlit/config.toml from here

    def page() -> None:
        raise ValueError("key abc123 in /srv/secret/path")

    at = AppTest.from_function(page)
    at.run()
    (error,) = at.exception
    assert "abc123" not in error.message and "redacted" in error.message
    assert not error.stack_trace
