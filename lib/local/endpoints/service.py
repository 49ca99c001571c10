"""Local endpoints: one server process per endpoint on 127.0.0.1, reconciled on every look.

An endpoint keeps its port and keys for life. Its deployments (model versions) live in the same
server process, which routes each request by the traffic split (`lib.local.scoring.routing`).
A change of deployments or split is sent to the running server over its control socket: it
loads and verifies the new models while it keeps answering, then swaps the routing table
between two requests, so no request fails. A restart starts a new process that takes over the
listening socket once it is ready; the old one drains its connections and exits.

Operations on one endpoint are serialized across threads and processes by a lock file per
endpoint name. Server processes are started held by the supervisor and run only once their
identity is recorded, so a crash at any step leaves no server that nothing knows about; a
deleted endpoint's keys file is removed first, and a server without keys rejects every request.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from lib.files import atomic_write, tail_file
from lib.local import supervisor
from lib.local.endpoints import servers
from lib.local.endpoints.deployments import DeploymentRecords, Split, routing_table
from lib.local.endpoints.reconcile import STOP_GRACE_S, Reconciler
from lib.local.endpoints.servers import recorded
from lib.local.jobs import now_iso
from lib.local.scoring.control import control_id
from lib.local.store import Store
from lib.local.supervisor import ProcessRef
from lib.names import validate_deployment_name, validate_endpoint_name
from lib.traffic import COLOURS, check_split, free_name, rollback_target, shift
from lib.workspace import Deployment, DeploymentEvent, Endpoint, WorkspaceError

TELEMETRY_FILE = "telemetry.db"
# How long an operation waits for another one on the same endpoint to finish.
LOCK_WAIT_S = 120.0
# How long an operation waits for a restart in progress to finish first.
SETTLE_WAIT_S = 120.0
# Lock files live outside the endpoint folders, which a delete removes.
LOCKS_DIR = ".locks"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _answers_probabilities(home: Path, model_name: str, model_version: int) -> bool:
    """False for a regression model (it answers values only); True otherwise."""
    info = home / "models" / str(model_name) / f"v{model_version}" / "info.json"
    try:
        return json.loads(info.read_text()).get("task") != "regression"
    except (OSError, ValueError, AttributeError):
        return True


def describe_split(split: Split) -> str:
    """`blue 90 %, green 10 %` (+ `; mirror green 10 %`)."""
    text = ", ".join(f"{k} {v} %" for k, v in split.traffic.items() if v)
    mirror = ", ".join(f"{k} {v} %" for k, v in split.mirror.items() if v)
    return text + (f"; mirror {mirror}" if mirror else "")


class LocalEndpoints(Reconciler):
    """EndpointService over local server processes (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Absolute: the paths are handed to server processes and matched against their argv.
        self.root = store.artifacts("endpoints").resolve()
        self.telemetry_db = store.home / TELEMETRY_FILE
        self.records = DeploymentRecords(store)
        # Who the history names for changes made through this object.
        self.actor = os.environ.get("OPSDECK_USER") or getpass.getuser()
        self._orphans_reaped = False
        self._routing_checked: dict[str, tuple[tuple[Any, int], float]] = {}

    # --- paths -------------------------------------------------------------------------

    def folder(self, name: str) -> Path:
        return self.root / name

    def keys_file(self, name: str) -> Path:
        return self.folder(name) / "keys.json"

    def log_file(self, name: str) -> Path:
        return self.folder(name) / "server.log"

    def stem(self, name: str) -> str:
        """The control socket name stem of the endpoint's servers."""
        return control_id(self.folder(name))

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
            probabilities=_answers_probabilities(
                self.store.home, row["model_name"], row["model_version"]
            ),
        )

    def list(self) -> list[Endpoint]:
        self.reconcile()
        rows = self.store.connect().execute("SELECT * FROM endpoints ORDER BY created").fetchall()
        return [self._to_endpoint(r) for r in rows]

    def get(self, name: str) -> Endpoint:
        self.reconcile(name)
        return self._to_endpoint(self._row(name))

    def deployments(self, name: str) -> list[Deployment]:
        self._row(name)
        return self.records.list(name)

    def history(self, name: str, limit: int = 50) -> list[DeploymentEvent]:
        self._row(name)
        return self.records.history(name, limit)

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

    # --- deployments and traffic ---------------------------------------------------------

    def deploy(
        self,
        model_name: str,
        model_version: int,
        endpoint_name: str,
        deployment: str | None = None,
        traffic: int = 100,
    ) -> Endpoint:
        """Create the endpoint, or add a deployment of a model version to it (URI and keys kept).

        On a running endpoint the server loads and verifies the new model before the split
        changes (no request fails); the call returns once it has (state Succeeded), or raises
        with the reason and leaves the split as it was.
        """
        name = validate_endpoint_name(endpoint_name)
        version = int(model_version)
        with self._locked(name):
            row = (
                self.store.connect()
                .execute("SELECT * FROM endpoints WHERE name=?", (name,))
                .fetchone()
            )
            if row is None:
                dep = validate_deployment_name(deployment or COLOURS[0])
                return self._create(name, model_name, version, dep, traffic)
            row = self._settle(name)
            split = self.records.split(name)
            if deployment:
                dep = validate_deployment_name(deployment)
            else:
                dep = free_name(split.traffic)
            others = {k: v for k, v in split.traffic.items() if k != dep} | {dep: 0}
            new_traffic = shift(others, dep, traffic)
            new_mirror = {k: v for k, v in split.mirror.items() if not (k == dep and traffic)}
            models = split.models | {dep: (model_name, version)}
            live, mirror = check_split(new_traffic, new_mirror, models)
            detail = f"{dep}: {model_name} v{version} at {traffic} %"
            return self._change(name, row, Split(models, live, mirror), "deploy", detail, True)

    def set_traffic(
        self, name: str, traffic: dict[str, int], mirror: dict[str, int] | None = None
    ) -> Endpoint:
        """Change the split; returns once the server routes by it (no request fails)."""
        with self._locked(name):
            row = self._settle(name)
            split = self.records.split(name)
            if mirror is None:
                mirror = {k: v for k, v in split.mirror.items() if not traffic.get(k)}
            live, shadow = check_split(traffic, mirror, split.models)
            new = Split(split.models, live, shadow)
            return self._change(name, row, new, "traffic", describe_split(new), False)

    def rollback(self, name: str) -> Endpoint:
        """All live traffic back to the deployment (and model version) that served before."""
        with self._locked(name):
            row = self._settle(name)
            split = self.records.split(name)
            order = list(split.models)
            target = rollback_target(self.records.history(name, 500), split.traffic, order)
            if target is None:
                live = split.live
                serving = [k for k in order if split.traffic.get(k) or split.mirror.get(k)]
                if live is None or len(serving) < 2:
                    raise WorkspaceError(
                        f"Nothing to roll back to: {name} has served only "
                        f"{live or 'no deployment'} so far."
                    )
                target = (live, *split.models[live])
            dep, model_name, version = target
            new = Split(
                split.models | {dep: (model_name, version)},
                dict.fromkeys(split.models, 0) | {dep: 100},
                {},
            )
            detail = f"all traffic back to {dep} ({model_name} v{version})"
            return self._change(name, row, new, "rollback", detail, False)

    def delete_deployment(self, name: str, deployment: str) -> None:
        """Remove a deployment that takes no live or mirrored traffic."""
        with self._locked(name):
            row = self._settle(name)
            split = self.records.split(name)
            if deployment not in split.models:
                raise WorkspaceError(f"Deployment {deployment} does not exist on {name}.")
            if split.traffic.get(deployment) or split.mirror.get(deployment):
                raise WorkspaceError(
                    f"Deployment {deployment} still takes traffic; move its traffic first."
                )
            models = {k: v for k, v in split.models.items() if k != deployment}
            new = Split(
                models,
                {k: v for k, v in split.traffic.items() if k in models},
                {k: v for k, v in split.mirror.items() if k in models},
            )
            self._change(name, row, new, "delete-deployment", deployment, False)

    def _create(self, name: str, model_name: str, version: int, dep: str, traffic: int) -> Endpoint:
        from lib.local.scoring import write_keys_file

        if int(traffic) != 100:
            raise WorkspaceError("The first deployment of an endpoint takes all the traffic.")
        split = Split({dep: (model_name, version)}, {dep: 100}, {})
        now = now_iso()
        with self.store.transaction() as tx:
            tx.execute(
                """INSERT INTO endpoints(name, model_name, model_version, port, state, desired,
                   routing_generation, created, updated)
                   VALUES (?, ?, ?, ?, 'Creating', 'running', 1, ?, ?)""",
                (name, model_name, version, supervisor.free_port(), now, now),
            )
            self.records.save(tx, name, split, {})
            detail = f"{dep}: {model_name} v{version} at 100 % (new endpoint)"
            self.records.record(tx, name, self.actor, "deploy", detail, split)
        self.folder(name).mkdir(parents=True, exist_ok=True)
        # A new endpoint never inherits keys left behind by a deleted one.
        write_keys_file(self.keys_file(name))
        self._stop_process(name)
        self._start_process(name)
        return self._to_endpoint(self._row(name))

    def _change(
        self, name: str, row: Any, split: Split, action: str, detail: str, start: bool
    ) -> Endpoint:
        """Make `split` the endpoint's: applied by the running server, else recorded (and started)."""
        generation = int(row["routing_generation"]) + 1
        table = routing_table(self.store, split, generation)
        ref = recorded(row)
        live = servers.status(self.stem(name), ref) if row["desired"] == "running" else None
        if live is not None and live.get("serving"):
            assert ref is not None
            answer = servers.apply(self.stem(name), ref, table)
            if not answer.get("ok"):
                error = str(answer.get("error") or "refused")
                with self.store.transaction() as tx:
                    self.records.record(
                        tx, name, self.actor, action, f"{detail}: {error}", split, "Failed"
                    )
                raise WorkspaceError(f"{error}. The traffic is unchanged ({name} keeps serving).")
            self._commit(name, split, generation, servers.notes(answer), action, detail, True)
            return self._to_endpoint(self._row(name))
        self._commit(name, split, generation, {}, action, detail, False)
        if start or row["desired"] == "running":
            # Nothing serves: the change takes effect as the server starts.
            with self.store.transaction() as tx:
                tx.execute(
                    """UPDATE endpoints SET state='Creating', desired='running', error=NULL,
                       updated=? WHERE name=?""",
                    (now_iso(), name),
                )
            self._stop_process(name)
            self._start_process(name)
        return self._to_endpoint(self._row(name))

    def _commit(
        self,
        name: str,
        split: Split,
        generation: int,
        notes: dict[str, str],
        action: str,
        detail: str,
        serving: bool,
    ) -> None:
        live = split.live
        model_name, version = split.models[live] if live else ("", 0)
        with self.store.transaction() as tx:
            self.records.save(tx, name, split, notes)
            tx.execute(
                f"""UPDATE endpoints SET model_name=?, model_version=?, routing_generation=?,
                   {"state='Succeeded', error=NULL," if serving else ""} updated=? WHERE name=?""",
                (model_name, version, generation, now_iso(), name),
            )
            self.records.record(tx, name, self.actor, action, detail, split)

    # --- processes -----------------------------------------------------------------------

    def _write_routing(self, name: str) -> None:
        row = self._row(name)
        table = routing_table(self.store, self.records.split(name), int(row["routing_generation"]))
        atomic_write(self.folder(name) / servers.ROUTING_FILE, table.to_json())

    def _spawn(self, name: str, takeover: int | None = None) -> ProcessRef:
        row = self._row(name)
        self._write_routing(name)
        with self.log_file(name).open("ab") as log:
            what = "taking over" if takeover else "starting"
            log.write(
                f"--- {now_iso()} {what}: {describe_split(self.records.split(name))}\n".encode()
            )
        cmd = servers.server_command(
            self.store.home,
            self.folder(name),
            name,
            int(row["port"]),
            self.telemetry_db,
            self.stem(name),
            takeover,
        )
        return supervisor.spawn(cmd, self.log_file(name), hold=True)

    def _start_process(self, name: str) -> None:
        """Spawn a server held, record it, then let it start (it binds the endpoint's port)."""
        ref = self._spawn(name)
        with self.store.transaction() as tx:
            tx.execute(
                """UPDATE endpoints SET pid=?, pid_started=?, state='Creating', updated=?
                   WHERE name=?""",
                (ref.pid, ref.create_time, now_iso(), name),
            )
        supervisor.release(ref)

    def _stop_process(self, name: str) -> None:
        row = self._row(name)
        for prefix in ("next_", "", "draining_"):
            supervisor.stop(recorded(row, prefix), grace_s=STOP_GRACE_S)
        with self.store.transaction() as tx:
            tx.execute(
                """UPDATE endpoints SET next_pid=NULL, next_pid_started=NULL, draining_pid=NULL,
                   draining_pid_started=NULL WHERE name=?""",
                (name,),
            )

    def _settle(self, name: str) -> Any:
        """Wait for a restart in progress to finish (or fail); returns the endpoint's row."""
        deadline = time.monotonic() + SETTLE_WAIT_S
        while True:
            self._reconcile_one(name)
            row = self._row(name)
            if row["next_pid"] is None:
                return row
            if time.monotonic() > deadline:
                raise WorkspaceError(f"Endpoint {name} is still restarting; try again.")
            time.sleep(0.05)

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
        """Start a fresh server process; a running one hands its port over without a dropped request.

        The new process loads and verifies every deployment, takes over the listening socket and
        tells the old one to drain; until then the endpoint is Creating and the old one serves.
        """
        with self._locked(name):
            row = self._settle(name)
            with self.store.transaction() as tx:
                tx.execute(
                    "UPDATE endpoints SET desired='running', error=NULL, updated=? WHERE name=?",
                    (now_iso(), name),
                )
                self.records.record(
                    tx, name, self.actor, "restart", "new server process",
                    self.records.split(name),
                )  # fmt: skip
            ref = recorded(row)
            live = servers.status(self.stem(name), ref)
            if ref is None or live is None or not live.get("serving"):
                self._stop_process(name)
                self._start_process(name)
                return self._to_endpoint(self._row(name))
            new = self._spawn(name, takeover=ref.pid)
            with self.store.transaction() as tx:
                tx.execute(
                    """UPDATE endpoints SET next_pid=?, next_pid_started=?, state='Creating',
                       updated=? WHERE name=?""",
                    (new.pid, new.create_time, now_iso(), name),
                )
            supervisor.release(new)
        return self._to_endpoint(self._row(name))

    def delete(self, name: str) -> None:
        with self._locked(name):
            self._row(name)
            # Keys first: whatever might still listen (an older opsdeck's orphan) then rejects
            # every request, and a crash from here on leaves no usable keys behind.
            self.keys_file(name).unlink(missing_ok=True)
            self._stop_process(name)
            with self.store.transaction() as tx:
                self.records.forget(tx, name)
                tx.execute("DELETE FROM endpoints WHERE name=?", (name,))
            shutil.rmtree(self.folder(name), ignore_errors=True)

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
