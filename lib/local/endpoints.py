"""Local endpoints: one uvicorn process per endpoint on 127.0.0.1, reconciled on every look.

An endpoint keeps its port and keys for life: redeploying a new model version restarts the
process on the same port with the same keys file, so clients keep working unchanged.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from lib.files import tail_file
from lib.local import tracking
from lib.local.jobs import now_iso
from lib.local.store import Store
from lib.settings import REPO_ROOT
from lib.workspace import Endpoint, WorkspaceError

# Azure's rule for online endpoint names.
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
TELEMETRY_FILE = "telemetry.db"
STOP_GRACE_S = 10.0
_children: dict[int, subprocess.Popen] = {}


def validate_endpoint_name(name: str) -> str:
    name = (name or "").strip()
    if not ENDPOINT_NAME.match(name):
        raise WorkspaceError(
            "Endpoint name must be 3-32 characters, start with a letter, use only letters, digits "
            "and '-', and not end with '-'."
        )
    return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int | None, created: float | None) -> bool:
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return created is None or abs(proc.create_time() - created) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class LocalEndpoints:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.artifacts("endpoints")
        self.telemetry_db = store.home / TELEMETRY_FILE

    # --- paths -------------------------------------------------------------------------

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def keys_file(self, name: str) -> Path:
        return self.folder(name) / "keys.json"

    def log_file(self, name: str) -> Path:
        return self.folder(name) / "server.log"

    # --- queries -----------------------------------------------------------------------

    def _row(self, name: str) -> Any:
        row = (
            self.store.connect().execute("SELECT * FROM endpoints WHERE name=?", (name,)).fetchone()
        )
        if row is None:
            raise WorkspaceError(f"Endpoint {name} does not exist.")
        return row

    def _to_endpoint(self, row: Any) -> Endpoint:
        base = f"http://127.0.0.1:{row['port']}"
        return Endpoint(
            name=row["name"],
            state=row["state"],
            scoring_uri=f"{base}/score",
            swagger_uri=f"{base}/swagger.json",
            model_name=row["model_name"],
            model_version=row["model_version"],
            created=datetime.fromisoformat(row["created"]),
            updated=datetime.fromisoformat(row["updated"]),
            error=row["error"],
        )

    def list(self) -> list[Endpoint]:
        self.reconcile()
        rows = self.store.connect().execute("SELECT * FROM endpoints ORDER BY created").fetchall()
        return [self._to_endpoint(r) for r in rows]

    def get(self, name: str) -> Endpoint:
        self.reconcile(name)
        return self._to_endpoint(self._row(name))

    def keys(self, name: str) -> tuple[str, str]:
        from lib.local.scoring_app import read_keys_file

        self._row(name)
        return read_keys_file(self.keys_file(name))

    def regenerate_key(self, name: str, which: str = "primary") -> tuple[str, str]:
        """New value for one key; the server re-reads the file, the other key keeps working."""
        from lib.local.scoring_app import write_keys_file

        if which not in ("primary", "secondary"):
            raise WorkspaceError("Key must be 'primary' or 'secondary'.")
        primary, secondary = self.keys(name)
        if which == "primary":
            return write_keys_file(self.keys_file(name), secondary=secondary)
        return write_keys_file(self.keys_file(name), primary=primary)

    def logs(self, name: str, lines: int = 80) -> str:
        return tail_file(self.log_file(name), lines)

    def health(self, name: str, timeout: float = 1.0) -> bool:
        row = self._row(name)
        try:
            r = requests.get(f"http://127.0.0.1:{row['port']}/", timeout=timeout)
        except requests.RequestException:
            return False
        return r.status_code == 200

    # --- lifecycle -----------------------------------------------------------------------

    def deploy(self, model_name: str, model_version: int, endpoint_name: str) -> Endpoint:
        """Create the endpoint, or move an existing one to a new model version (same URI and keys)."""
        from lib.local.scoring_app import write_keys_file

        name = validate_endpoint_name(endpoint_name)
        now = now_iso()
        with self.store.transaction() as tx:
            row = tx.execute("SELECT * FROM endpoints WHERE name=?", (name,)).fetchone()
            if row is None:
                port = _free_port()
                tx.execute(
                    """INSERT INTO endpoints(name, model_name, model_version, port, state, desired,
                       created, updated) VALUES (?, ?, ?, ?, 'Creating', 'running', ?, ?)""",
                    (name, model_name, int(model_version), port, now, now),
                )
            else:
                tx.execute(
                    """UPDATE endpoints SET model_name=?, model_version=?, state='Creating',
                       desired='running', error=NULL, updated=? WHERE name=?""",
                    (model_name, int(model_version), now, name),
                )
        if not self.keys_file(name).exists():
            write_keys_file(self.keys_file(name))
        self._stop_process(name)
        self._start_process(name)
        return self._to_endpoint(self._row(name))

    def _start_process(self, name: str) -> None:
        row = self._row(name)
        log = self.log_file(name).open("ab")
        log.write(
            f"--- {now_iso()} starting {row['model_name']} v{row['model_version']}\n".encode()
        )
        log.flush()
        cmd = [
            sys.executable,
            "-m",
            "lib.local.serve",
            "--model-uri",
            f"models:/{row['model_name']}/{row['model_version']}",
            "--tracking-uri",
            tracking.tracking_uri(self.store.home),
            "--host",
            "127.0.0.1",
            "--port",
            str(row["port"]),
            "--keys-file",
            str(self.keys_file(name)),
            "--telemetry-db",
            str(self.telemetry_db),
            "--endpoint",
            name,
            "--model-version",
            str(row["model_version"]),
        ]
        compiled = (
            self.store.home / "models" / row["model_name"] / f"v{row['model_version']}" / "fastpath"
        )
        if (compiled / "verification.json").exists():
            cmd += ["--fastpath-dir", str(compiled)]
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives a dashboard restart
        )
        log.close()
        _children[proc.pid] = proc
        created = psutil.Process(proc.pid).create_time()
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE endpoints SET pid=?, pid_started=?, state='Creating', updated=? WHERE name=?",
                (proc.pid, created, now_iso(), name),
            )

    def _stop_process(self, name: str) -> None:
        row = self._row(name)
        pid = row["pid"]
        if not _alive(pid, row["pid_started"]):
            return
        try:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and _alive(pid, row["pid_started"]):
            proc = _children.get(pid)
            if proc is not None:
                proc.poll()
            time.sleep(0.05)
        if _alive(pid, row["pid_started"]):
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        proc = _children.pop(pid, None)
        if proc is not None:
            proc.wait(timeout=5)

    def wait_until_ready(self, name: str, timeout: float = 60.0) -> Endpoint:
        """Block until the endpoint leaves Creating (for scripts and tests; pages poll instead)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ep = self.get(name)
            if ep.state != "Creating":
                return ep
            time.sleep(0.1)
        return self.get(name)

    def stop(self, name: str) -> Endpoint:
        self._stop_process(name)
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE endpoints SET state='Stopped', desired='stopped', pid=NULL, updated=? WHERE name=?",
                (now_iso(), name),
            )
        return self._to_endpoint(self._row(name))

    def restart(self, name: str) -> Endpoint:
        self._stop_process(name)
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE endpoints SET desired='running', error=NULL, updated=? WHERE name=?",
                (now_iso(), name),
            )
        self._start_process(name)
        return self._to_endpoint(self._row(name))

    def delete(self, name: str) -> None:
        self._row(name)
        self._stop_process(name)
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM endpoints WHERE name=?", (name,))
        import shutil

        shutil.rmtree(self.root / name, ignore_errors=True)

    def reconcile(self, name: str | None = None) -> None:
        """Creating → Succeeded when healthy, → Failed if the process died; Succeeded → Unhealthy if dead."""
        for pid in [p for p, proc in _children.items() if proc.poll() is not None]:
            _children.pop(pid, None)
        sql = "SELECT * FROM endpoints" + (" WHERE name=?" if name else "")
        rows = self.store.connect().execute(sql, (name,) if name else ()).fetchall()
        for row in rows:
            state, error = row["state"], row["error"]
            alive = _alive(row["pid"], row["pid_started"])
            if row["desired"] == "stopped":
                new_state, new_error = "Stopped", None
            elif state == "Creating":
                if not alive:
                    tail = self.logs(row["name"], lines=15)
                    new_state, new_error = "Failed", f"The server exited during start-up.\n{tail}"
                elif self._healthy(row["port"]):
                    new_state, new_error = "Succeeded", None
                else:
                    continue
            elif not alive:
                new_state = "Unhealthy"
                new_error = f"The server process (PID {row['pid']}) is not running; restart it."
            elif state == "Unhealthy" and self._healthy(row["port"]):
                new_state, new_error = "Succeeded", None
            else:
                continue
            if (new_state, new_error) != (state, error):
                with self.store.transaction() as tx:
                    tx.execute(
                        "UPDATE endpoints SET state=?, error=?, updated=? WHERE name=?",
                        (new_state, new_error, now_iso(), row["name"]),
                    )

    @staticmethod
    def _healthy(port: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/", timeout=0.5).status_code == 200
        except requests.RequestException:
            return False

    def count(self) -> int:
        return int(self.store.connect().execute("SELECT COUNT(*) FROM endpoints").fetchone()[0])

    def requests(self, name: str | None = None, limit: int = 20):  # noqa: ANN201
        """The last requests recorded by the endpoints' servers (App Insights columns)."""
        from lib.local.telemetry import read_requests

        if not self.telemetry_db.exists():
            import pandas as pd

            return pd.DataFrame()
        return read_requests(self.telemetry_db, endpoint=name, limit=limit)
