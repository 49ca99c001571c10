"""A real uvicorn hello-world on a loopback port, in its own process, with counters to read back."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import ServerProcess

# A raw ASGI app: cheap routes plus counters the tests read back over HTTP.
SERVER_SOURCE = r"""
import asyncio, json, sys, uvicorn
hits = {"n": 0}
bodies = {}
ports = set()

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    path = scope["path"]
    headers = dict(scope["headers"])
    status, out, chunks = 200, b"Hello world!", None
    if path == "/stats":
        out = json.dumps({"hits": hits["n"], "bodies": bodies, "ports": len(ports)}).encode()
    elif path == "/reset":
        hits["n"] = 0; bodies.clear(); ports.clear()
    else:
        hits["n"] += 1
        ports.add(scope["client"][1])
        if body:
            bodies[body.decode()] = bodies.get(body.decode(), 0) + 1
        if path == "/auth" and headers.get(b"authorization") != b"Bearer s3cret":
            status, out = 401, b'{"message":"missing or wrong key"}'
        elif path == "/fail":
            status, out = 500, b'{"message":"boom"}'
        elif path == "/slow":
            await asyncio.sleep(float(scope["query_string"] or b"1"))
        elif path == "/chunked":
            chunks = [b"Hello", b" ", b"chunked", b" world!"]
    if chunks is not None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for c in chunks:
            await send({"type": "http.response.body", "body": c, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


@dataclass
class Server:
    """The running hello server: its URL, process and counters."""

    url: str
    proc: subprocess.Popen

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            return json.loads(resp.read() or b"{}") if path == "/stats" else {}

    def reset(self) -> None:
        urllib.request.urlopen(self.url + "/reset", timeout=5).read()

    def stats(self) -> dict:
        return self.get("/stats")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def start_server(tmp: Path) -> Server:
    """Start the hello server on a free loopback port; returns once it accepts connections."""
    script = tmp / "hello_server.py"
    script.write_text(SERVER_SOURCE)
    server = ServerProcess(
        [sys.executable, str(script), "{port}"],
        tmp / "hello_server.log",
        ready_path=None,
        timeout=15,
    )
    return Server(server.url, server.proc)
