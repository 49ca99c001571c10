"""Live servers for tests: an ASGI app on uvicorn in a thread, or a server command in a process.

Both listen on 127.0.0.1 and a free port and are ready (accepting, and answering the readiness
path when one is given) when the constructor returns.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from lib.settings import REPO_ROOT
from tests.support.ports import free_port
from tests.support.waiting import wait_for


class LiveServer:
    """A real uvicorn server for an ASGI app, on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app: Any, timeout: float = 10.0, **config: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        options = {"log_level": "warning", "access_log": False, "lifespan": "on", **config}
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise RuntimeError("test server thread exited before it started")
            return self.server.started

        wait_for(started, timeout=timeout, interval=0.01, what="uvicorn test server started")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


class ServerProcess:
    """A server command (`{port}` in argv is replaced by a free port) run until `stop`."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        ready_path: str | None = "/",
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
        timeout: float = 60.0,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.log_path = Path(log_path)
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=dict(os.environ) if env is None else env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if ready_path is None:
                return _accepting(self.port)
            return _answers(self.url + ready_path)

        try:
            wait_for(ready, timeout=timeout, what=f"{self.argv[:4]} ready on port {self.port}")
        except BaseException:
            self.stop(grace_s=2)
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, grace_s: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after `grace_s`; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
