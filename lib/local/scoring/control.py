"""The control socket of an endpoint server: how the dashboard changes a running server.

Each server listens on a Unix socket in Linux's abstract namespace, named after its endpoint
folder and its PID (a filesystem path could exceed the 108-byte limit under a deep home). Both
ends check the peer's credentials: only processes of the same user talk, and a client talks
only to the PID it means. A request is one JSON line, the answer one JSON line; `listener`
answers with the listening socket itself (SCM_RIGHTS), which is how a new server process takes
over the port of the old one without a single connection being refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("opsdeck.control")

MAX_MESSAGE = 1 << 20
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlError(OSError):
    """The server did not answer (not running, not listening, or another process)."""


def control_id(folder: Path) -> str:
    """The name stem shared by every server of one endpoint folder."""
    return hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:24]


def address(stem: str, pid: int) -> str:
    """The abstract socket name of the server `pid` of an endpoint."""
    return f"\0opsdeck-{stem}-{pid}"


def _peer(sock: socket.socket) -> tuple[int, int]:
    pid, uid, _ = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
    return pid, uid


def _read_line(sock: socket.socket) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") or size > MAX_MESSAGE:
            break
    return b"".join(chunks)


def _connect(addr: str, pid: int, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(addr)
        peer_pid, peer_uid = _peer(sock)
        if peer_uid != os.getuid() or peer_pid != pid:
            raise ControlError(f"control socket of PID {pid} is held by PID {peer_pid}")
    except OSError as exc:
        sock.close()
        raise exc if isinstance(exc, ControlError) else ControlError(str(exc)) from exc
    return sock


def call(stem: str, pid: int, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to the server `pid` and return its answer."""
    with _connect(address(stem, pid), pid, timeout) as sock:
        try:
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = _read_line(sock)
        except OSError as exc:
            raise ControlError(str(exc)) from exc
    if not data:
        raise ControlError(f"server {pid} closed the control connection without answering")
    return json.loads(data)


def take_listener(stem: str, pid: int, timeout: float = 10.0) -> socket.socket:
    """The listening socket of server `pid` (a duplicate: both processes can accept on it)."""
    with _connect(address(stem, pid), pid, timeout) as sock:
        try:
            sock.sendall(b'{"op": "listener"}\n')
            data, fds, _, _ = socket.recv_fds(sock, 65536, 1)
        except OSError as exc:
            raise ControlError(str(exc)) from exc
    if not fds:
        raise ControlError(f"server {pid} sent no listening socket: {data[:200]!r}")
    return socket.socket(fileno=fds[0])


Handler = Callable[[dict[str, Any], socket.socket], dict[str, Any] | None]


class ControlServer:
    """Answers control requests on a thread per connection; `handle` returns the answer (or None
    when it answered on the connection itself)."""

    def __init__(self, stem: str, handle: Handler) -> None:
        self.address = address(stem, os.getpid())
        self.handle = handle
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Raises if the name is taken: a server never runs with someone else's control socket.
        self._sock.bind(self.address)
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._accept, name="control", daemon=True)

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                _, uid = _peer(conn)
                if uid != os.getuid():
                    log.warning("control request from uid %d refused", uid)
                    return
                conn.settimeout(30)
                data = _read_line(conn)
                try:
                    message = json.loads(data)
                    if not isinstance(message, dict):
                        raise ValueError("not an object")
                except ValueError:
                    conn.sendall(b'{"ok": false, "error": "not a JSON object"}\n')
                    return
                answer = self.handle(message, conn)
                if answer is not None:
                    conn.sendall(json.dumps(answer).encode() + b"\n")
            except OSError as exc:
                log.info("control connection ended: %s", exc)
            except Exception:
                log.exception("control request failed")
                try:
                    conn.sendall(b'{"ok": false, "error": "internal error"}\n')
                except OSError:
                    pass

    def close(self) -> None:
        self._sock.close()
