"""Local endpoints: one uvicorn process per endpoint on 127.0.0.1, reconciled on every look.

An endpoint keeps its port and keys for life: redeploying a new model version restarts the
process on the same port with the same keys file, so clients keep working unchanged.

Operations on one endpoint are serialized across threads and processes by a lock file per
endpoint name. Server processes are started held by the supervisor and run only once their
identity is recorded, so a crash at any step leaves no server that nothing knows about; a
deleted endpoint's keys file is removed first, and a server without keys rejects every request.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from lib.files import tail_file
from lib.local import supervisor, tracking
from lib.local.jobs import now_iso
from lib.local.store import Store
from lib.local.supervisor import ProcessRef
from lib.names import validate_endpoint_name
from lib.workspace import Endpoint, WorkspaceError

TELEMETRY_FILE = "telemetry.db"
STOP_GRACE_S = 10.0
# How long an operation waits for another one on the same endpoint to finish.
LOCK_WAIT_S = 120.0
# Lock files live outside the endpoint folders, which a delete removes.
LOCKS_DIR = ".locks"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _server(row: Any) -> ProcessRef | None:
    return ProcessRef.of(row["pid"], row["pid_started"])


class LocalEndpoints:
    def __init__(self, store: Store) -> None:
        self.store = store
        # Absolute: the paths are handed to server processes and matched against their argv.
        self.root = store.artifacts("endpoints").resolve()
        self.telemetry_db = store.home / TELEMETRY_FILE
        self._orphans_reaped = False

    # --- paths -------------------------------------------------------------------------

    def folder(self, name: str) -> Path:
        return self.root / name

    def keys_file(self, name: str) -> Path:
        return self.folder(name) / "keys.json"

    def log_file(self, name: str) -> Path:
        return self.folder(name) / "server.log"

    @contextmanager
    def _locked(self, name: str, wait: bool = True) -> Iterator[bool]:
        """Hold the endpoint's lock (yields False at once if busy and `wait` is False)."""
        path = self.root / LOCKS_DIR / f"{name}.lock"
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + LOCK_WAIT_S
            acquired = _try_lock(fd)
            while wait and not acquired:
                if time.monotonic() > deadline:
                    raise WorkspaceError(
                        f"Another operation on endpoint {name} is still running; try again."
                    )
                time.sleep(0.05)
                acquired = _try_lock(fd)
            yield acquired
        finally:
            os.close(fd)  # releases the lock

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
        from lib.local.scoring import read_keys_file

        self._row(name)
        try:
            return read_keys_file(self.keys_file(name))
        except (OSError, ValueError) as exc:
            raise WorkspaceError(f"Endpoint {name} has no keys; redeploy it.") from exc

    def regenerate_key(self, name: str, which: str = "primary") -> tuple[str, str]:
        """New value for one key; the server re-reads the file, the other key keeps working."""
        from lib.local.scoring import write_keys_file

        if which not in ("primary", "secondary"):
            raise WorkspaceError("Key must be 'primary' or 'secondary'.")
        with self._locked(name):
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
        from lib.local.scoring import write_keys_file

        name = validate_endpoint_name(endpoint_name)
        with self._locked(name):
            now = now_iso()
            with self.store.transaction() as tx:
                row = tx.execute("SELECT * FROM endpoints WHERE name=?", (name,)).fetchone()
                if row is None:
                    tx.execute(
                        """INSERT INTO endpoints(name, model_name, model_version, port, state,
                           desired, created, updated)
                           VALUES (?, ?, ?, ?, 'Creating', 'running', ?, ?)""",
                        (name, model_name, int(model_version), supervisor.free_port(), now, now),
                    )
                else:
                    # The model changes when its server is recorded: until then the row
                    # describes the process that is actually running.
                    tx.execute(
                        """UPDATE endpoints SET state='Creating', desired='running', error=NULL,
                           updated=? WHERE name=?""",
                        (now, name),
                    )
            self.folder(name).mkdir(parents=True, exist_ok=True)
            if row is None or not self.keys_file(name).exists():
                # A new endpoint never inherits keys left behind by a deleted one.
                write_keys_file(self.keys_file(name))
            self._stop_process(name)
            self._start_process(name, model_name, int(model_version))
        return self._to_endpoint(self._row(name))

    def _start_process(self, name: str, model_name: str, model_version: int) -> None:
        """Spawn the server held, record it with the model it serves, then let it start."""
        row = dict(self._row(name)) | {"model_name": model_name, "model_version": model_version}
        with self.log_file(name).open("ab") as log:
            log.write(f"--- {now_iso()} starting {model_name} v{model_version}\n".encode())
        cmd = [
            sys.executable,
            "-m",
            "lib.local.scoring.serve",
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
        ref = supervisor.spawn(cmd, self.log_file(name), hold=True)
        with self.store.transaction() as tx:
            tx.execute(
                """UPDATE endpoints SET pid=?, pid_started=?, model_name=?, model_version=?,
                   state='Creating', updated=? WHERE name=?""",
                (ref.pid, ref.create_time, model_name, model_version, now_iso(), name),
            )
        supervisor.release(ref)

    def _stop_process(self, name: str) -> None:
        supervisor.stop(_server(self._row(name)), grace_s=STOP_GRACE_S)

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
        with self._locked(name):
            self._stop_process(name)
            with self.store.transaction() as tx:
                tx.execute(
                    """UPDATE endpoints SET state='Stopped', desired='stopped', pid=NULL,
                       pid_started=NULL, updated=? WHERE name=?""",
                    (now_iso(), name),
                )
        return self._to_endpoint(self._row(name))

    def restart(self, name: str) -> Endpoint:
        with self._locked(name):
            self._stop_process(name)
            with self.store.transaction() as tx:
                tx.execute(
                    """UPDATE endpoints SET desired='running', error=NULL, updated=?
                       WHERE name=?""",
                    (now_iso(), name),
                )
            row = self._row(name)
            self._start_process(name, row["model_name"], int(row["model_version"]))
        return self._to_endpoint(self._row(name))

    def delete(self, name: str) -> None:
        with self._locked(name):
            self._row(name)
            self._stop_process(name)
            # Keys first: whatever might still listen (an older opsdeck's orphan) then rejects
            # every request, and a crash from here on leaves no usable keys behind.
            self.keys_file(name).unlink(missing_ok=True)
            with self.store.transaction() as tx:
                tx.execute("DELETE FROM endpoints WHERE name=?", (name,))
            shutil.rmtree(self.folder(name), ignore_errors=True)

    def reap_orphans(self) -> int:
        """Stop this workspace's server processes that no endpoint records; returns how many."""
        found: dict[str, list[ProcessRef]] = {}
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            try:
                keys, name = cmd[cmd.index("--keys-file") + 1], cmd[cmd.index("--endpoint") + 1]
            except (ValueError, IndexError):
                continue
            ref = supervisor.identify(proc.pid)
            if Path(keys).parent.parent == self.root and ref is not None:
                found.setdefault(name, []).append(ref)
        stopped = 0
        for name, refs in found.items():
            # Under the endpoint's lock: a server being started is recorded before it is seen.
            with self._locked(name, wait=False) as held:
                if not held:
                    continue
                row = (
                    self.store.connect()
                    .execute("SELECT pid, pid_started FROM endpoints WHERE name=?", (name,))
                    .fetchone()
                )
                recorded = _server(row) if row else None
                for ref in refs:
                    if (
                        recorded is None
                        or recorded.pid != ref.pid
                        or not supervisor.is_alive(recorded)
                    ):
                        stopped += supervisor.stop(ref, grace_s=STOP_GRACE_S)
        return stopped

    def reconcile(self, name: str | None = None) -> None:
        """Creating → Succeeded when healthy, → Failed if the process died; Succeeded → Unhealthy if dead."""
        if not self._orphans_reaped:
            # Once per dashboard process: servers an older opsdeck or a crash left unrecorded.
            self._orphans_reaped = True
            self.reap_orphans()
        sql = "SELECT name FROM endpoints" + (" WHERE name=?" if name else "")
        names = [r[0] for r in self.store.connect().execute(sql, (name,) if name else ())]
        for endpoint in names:
            # An endpoint in the middle of an operation is looked at next time.
            with self._locked(endpoint, wait=False) as held:
                if held:
                    self._reconcile_one(endpoint)

    def _reconcile_one(self, name: str) -> None:
        row = (
            self.store.connect().execute("SELECT * FROM endpoints WHERE name=?", (name,)).fetchone()
        )
        if row is None:
            return
        state, error = row["state"], row["error"]
        alive = supervisor.is_alive(_server(row))
        if row["desired"] == "stopped":
            if alive:  # a stop that crashed half-way
                supervisor.stop(_server(row), grace_s=STOP_GRACE_S)
            new_state, new_error = "Stopped", None
        elif state == "Creating":
            if not alive and row["pid"] is None:
                new_state = "Failed"
                new_error = "The deploy was interrupted before the server started; deploy again."
            elif not alive:
                tail = self.logs(row["name"], lines=15)
                new_state, new_error = "Failed", f"The server exited during start-up.\n{tail}"
            elif self._healthy(row["port"]):
                new_state, new_error = "Succeeded", None
            else:
                return
        elif not alive:
            new_state = "Unhealthy"
            new_error = f"The server process (PID {row['pid']}) is not running; restart it."
        elif state == "Unhealthy" and self._healthy(row["port"]):
            new_state, new_error = "Succeeded", None
        else:
            return
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
        from lib.appinsights import TelemetryQuery
        from lib.local.telemetry import read_requests

        if not self.telemetry_db.exists():
            import pandas as pd

            return pd.DataFrame()
        return read_requests(self.telemetry_db, TelemetryQuery(endpoint=name, limit=limit))
