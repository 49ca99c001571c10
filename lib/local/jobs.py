"""Local jobs: SQLite-backed queue, N worker slots, one OS process per running job.

A job runs as `python -m lib.local.runner JOB_ID`, never inside the dashboard. Its state, PID,
heartbeat and log path live in SQLite. Every look at the table (`tick`) reaps finished
children, fails Running jobs whose process is gone, and starts Queued jobs while slots are free.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from lib.files import tail_file
from lib.local.store import Store
from lib.settings import REPO_ROOT
from lib.workspace import Job, WorkspaceError

HEARTBEAT_S = 2.0
# A live PID that has not beaten for this long is treated as hung or reused.
STALE_HEARTBEAT_S = 120.0
CANCEL_GRACE_S = 5.0

_children: dict[int, subprocess.Popen] = {}

# Job kinds: kind -> handler(ctx, spec, settings) -> result dict, run by lib.local.runner.
HANDLERS: dict[str, Callable[[JobContext, dict[str, Any], Any], dict[str, Any]]] = {}


def handler(kind: str) -> Callable:
    """Register a function as the handler of a job kind."""

    def register(fn: Callable) -> Callable:
        HANDLERS[kind] = fn
        return fn

    return register


def log(message: str) -> None:
    """A timestamped line in the job log (a job process's stdout)."""
    sys.stdout.write(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {message}\n")
    sys.stdout.flush()


_children_lock = threading.Lock()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def row_to_job(row: Any) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        display_name=row["display_name"],
        state=row["state"],
        created=datetime.fromisoformat(row["created"]),
        started=_parse_time(row["started"]),
        ended=_parse_time(row["ended"]),
        error=row["error"],
        spec=json.loads(row["spec"]),
        progress=json.loads(row["progress"] or "{}"),
    )


def pid_alive(pid: int | None, started: str | None = None) -> bool:
    """True if `pid` is a live (non-zombie) process that started no later than the job."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started:
            # PID reuse: a process created after the job started is not the job.
            if proc.create_time() > datetime.fromisoformat(started).timestamp() + 5:
                return False
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class JobManager:
    """Submit, list, cancel and supervise local jobs."""

    def __init__(self, store: Store, slots: int) -> None:
        self.store = store
        self.slots = max(1, slots)
        self.root = store.artifacts("jobs")

    def job_dir(self, job_id: str) -> Path:
        path = self.root / job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def submit(self, kind: str, display_name: str, spec: dict[str, Any], start: bool = True) -> Job:
        """Queue a job; with start=False it is held until `release` (to stage files first)."""
        job_id = f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        log_path = self.job_dir(job_id) / "job.log"
        log_path.touch()
        with self.store.transaction() as tx:
            tx.execute(
                """INSERT INTO jobs(id, kind, display_name, state, spec, created, log_path)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (
                    job_id,
                    kind,
                    display_name,
                    "Queued" if start else "Held",
                    json.dumps(spec),
                    now_iso(),
                    str(log_path),
                ),
            )
        if start:
            self.tick()
        return self.get(job_id)

    def release(self, job_id: str) -> Job:
        """Queue a held job and start it if a slot is free."""
        with self.store.transaction() as tx:
            tx.execute("UPDATE jobs SET state='Queued' WHERE id=? AND state='Held'", (job_id,))
        self.tick()
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        row = self.store.connect().execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise WorkspaceError(f"Job {job_id} does not exist.")
        return row_to_job(row)

    def list(self, kind: str | None = None, limit: int = 200) -> list[Job]:
        sql = "SELECT * FROM jobs" + (" WHERE kind=?" if kind else "")
        sql += " ORDER BY created DESC LIMIT ?"
        args = (kind, limit) if kind else (limit,)
        return [row_to_job(r) for r in self.store.connect().execute(sql, args).fetchall()]

    def result(self, job_id: str) -> dict[str, Any]:
        row = (
            self.store.connect().execute("SELECT result FROM jobs WHERE id=?", (job_id,)).fetchone()
        )
        return json.loads(row["result"]) if row and row["result"] else {}

    def log_tail(self, job_id: str, lines: int = 60) -> str:
        row = (
            self.store.connect()
            .execute("SELECT log_path FROM jobs WHERE id=?", (job_id,))
            .fetchone()
        )
        if row is None:
            return ""
        return tail_file(Path(row["log_path"]), lines)

    def counts(self) -> dict[str, int]:
        rows = self.store.connect().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        return {r[0]: r[1] for r in rows.fetchall()}

    # --- supervision --------------------------------------------------------------------

    def tick(self) -> None:
        """Reap children, fail orphans, start queued jobs while slots are free."""
        self._reap()
        with self.store.transaction() as tx:
            running = tx.execute(
                "SELECT id, pid, started, heartbeat FROM jobs WHERE state='Running'"
            ).fetchall()
            busy = 0
            for row in running:
                reason = self._orphan_reason(row)
                if reason:
                    tx.execute(
                        "UPDATE jobs SET state='Failed', error=?, ended=? WHERE id=? AND state='Running'",
                        (reason, now_iso(), row["id"]),
                    )
                else:
                    busy += 1
            free = self.slots - busy
            if free <= 0:
                return
            queued = tx.execute(
                "SELECT id FROM jobs WHERE state='Queued' ORDER BY created LIMIT ?", (free,)
            ).fetchall()
            for row in queued:
                pid = self._spawn(row["id"])
                tx.execute(
                    "UPDATE jobs SET state='Running', pid=?, started=?, heartbeat=? WHERE id=?",
                    (pid, now_iso(), now_iso(), row["id"]),
                )

    @staticmethod
    def _orphan_reason(row: Any) -> str | None:
        if not pid_alive(row["pid"], row["started"]):
            return (
                f"The job process (PID {row['pid']}) ended without reporting a result "
                "(killed, crashed or the machine restarted)."
            )
        beat = _parse_time(row["heartbeat"])
        if beat and (datetime.now(UTC) - beat).total_seconds() > STALE_HEARTBEAT_S:
            return f"No heartbeat from PID {row['pid']} for over {STALE_HEARTBEAT_S:.0f} s."
        return None

    def _spawn(self, job_id: str) -> int:
        log = (self.job_dir(job_id) / "job.log").open("ab")
        env = dict(os.environ, OPSDECK_HOME=str(self.store.home), PYTHONUNBUFFERED="1")
        # Idle OpenMP workers must sleep, not spin: on a busy small machine spinning threads of
        # LightGBM/XGBoost turn a 0.1 s fit into tens of seconds.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        proc = subprocess.Popen(
            [sys.executable, "-m", "lib.local.runner", job_id],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives a dashboard restart; own process group
        )
        log.close()
        with _children_lock:
            _children[proc.pid] = proc
        return proc.pid

    @staticmethod
    def _reap() -> None:
        with _children_lock:
            for pid, proc in list(_children.items()):
                if proc.poll() is not None:
                    del _children[pid]

    def cancel(self, job_id: str) -> Job:
        """Queued → Canceled at once; Running → SIGTERM, then SIGKILL after a grace period."""
        job = self.get(job_id)
        if job.is_terminal:
            return job
        with self.store.transaction() as tx:
            tx.execute(
                """UPDATE jobs SET state='Canceled', ended=?, error='Canceled before it started'
                   WHERE id=? AND state IN ('Queued', 'Held')""",
                (now_iso(), job_id),
            )
            tx.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))
            row = tx.execute("SELECT state, pid FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row["state"] == "Running" and row["pid"]:
            self._terminate(row["pid"])
            with self.store.transaction() as tx:
                tx.execute(
                    """UPDATE jobs SET state='Canceled', ended=COALESCE(ended, ?),
                       error='Canceled by the user' WHERE id=? AND state='Running'""",
                    (now_iso(), job_id),
                )
        self.tick()
        return self.get(job_id)

    @staticmethod
    def _terminate(pid: int) -> None:
        try:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline:
            JobManager._reap()
            if not pid_alive(pid):
                return
            time.sleep(0.1)
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class JobContext:
    """What a running job process uses to report on itself."""

    def __init__(self, store: Store, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)

    def start(self) -> dict[str, Any]:
        with self.store.transaction() as tx:
            row = tx.execute("SELECT * FROM jobs WHERE id=?", (self.job_id,)).fetchone()
            if row is None:
                raise WorkspaceError(f"Job {self.job_id} does not exist.")
            tx.execute(
                "UPDATE jobs SET pid=?, heartbeat=?, started=COALESCE(started, ?) WHERE id=?",
                (os.getpid(), now_iso(), now_iso(), self.job_id),
            )
        self._beat.start()
        return json.loads(row["spec"])

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.store.connect().execute(
                    "UPDATE jobs SET heartbeat=? WHERE id=?", (now_iso(), self.job_id)
                )
            except Exception:  # noqa: BLE001 - a missed beat must not kill the job
                pass

    def cancel_requested(self) -> bool:
        row = (
            self.store.connect()
            .execute("SELECT cancel_requested FROM jobs WHERE id=?", (self.job_id,))
            .fetchone()
        )
        return bool(row and row[0])

    def progress(self, **values: Any) -> None:
        with self.store.transaction() as tx:
            row = tx.execute("SELECT progress FROM jobs WHERE id=?", (self.job_id,)).fetchone()
            merged = {**json.loads(row[0] or "{}"), **values}
            tx.execute(
                "UPDATE jobs SET progress=?, heartbeat=? WHERE id=?",
                (json.dumps(merged, default=str), now_iso(), self.job_id),
            )

    def finish(
        self, state: str, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        self._stop.set()
        with self.store.transaction() as tx:
            tx.execute(
                """UPDATE jobs SET state=?, result=?, error=?, ended=?
                   WHERE id=? AND state IN ('Running', 'Queued')""",
                (
                    state,
                    json.dumps(result, default=str) if result is not None else None,
                    error,
                    now_iso(),
                    self.job_id,
                ),
            )
