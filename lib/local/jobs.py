"""Local jobs: SQLite-backed queue, N worker slots, one OS process per running job.

A job runs as `python -m lib.local.runner JOB_ID`, never inside the dashboard. Its state, process
identity (PID and start time), heartbeat and log path live in SQLite. Every look at the table
(`tick`) fails Running jobs whose process is gone and starts Queued jobs while slots are free.

Starting a job is claim → commit → spawn (held) → record identity → release: the process runs
only once its identity is committed, so a crash at any step runs a job at most once, and a job
process refuses to run a job recorded under another identity. A job whose process is alive stays
Running even when its heartbeat is late (a laptop that slept): only a dead process fails it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from lib.files import tail_file
from lib.local import supervisor
from lib.local.store import Store
from lib.local.supervisor import ProcessRef
from lib.workspace import Job, WorkspaceError

HEARTBEAT_S = 2.0
# A job claimed this long ago with no process recorded lost its starter to a crash.
START_GRACE_S = 30.0
CANCEL_GRACE_S = 5.0
# Jobs that only orchestrate others (a pipeline run waits on its AutoML job) take no worker
# slot: holding one could leave the job they wait on queued behind them forever.
UNSLOTTED_KINDS = frozenset({"pipeline"})

# Job kinds: kind -> handler(ctx, spec, settings) -> result dict, run by lib.local.runner.
HANDLERS: dict[str, Callable[[JobContext, dict[str, Any], Any], dict[str, Any]]] = {}


class NotThisProcessJob(WorkspaceError):
    """The job is not Running under this process's identity (canceled, or run by another)."""


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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _age_s(value: str | None) -> float:
    when = _parse_time(value)
    return (datetime.now(UTC) - when).total_seconds() if when else float("inf")


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


def job_process(row: Any) -> ProcessRef | None:
    """The recorded identity of a job's process (older rows: a PID no younger than the job)."""
    ref = ProcessRef.of(row["pid"], row["pid_started"])
    if ref is not None or not row["pid"] or not row["started"]:
        return ref
    try:
        created = psutil.Process(row["pid"]).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    # A process created after the job started is not the job: the PID was reused.
    if created > datetime.fromisoformat(row["started"]).timestamp() + 5:
        return None
    return supervisor.identify(row["pid"])


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
        """Fail Running jobs whose process is gone, then start queued jobs while slots are free."""
        for job_id in self._claim():
            self._launch(job_id)

    def _claim(self) -> list[str]:
        """Mark as many Queued jobs Running as slots are free; nothing is spawned in here."""
        now = now_iso()
        with self.store.transaction() as tx:
            running = tx.execute(
                "SELECT id, kind, pid, pid_started, started, heartbeat FROM jobs "
                "WHERE state='Running'"
            ).fetchall()
            busy = 0
            for row in running:
                if row["pid"] is None and _age_s(row["started"]) > START_GRACE_S:
                    # Its starter died before recording a process; the held process exits
                    # with its starter, so the job never ran: queue it again.
                    tx.execute(
                        """UPDATE jobs SET state='Queued', started=NULL, heartbeat=NULL
                           WHERE id=? AND state='Running' AND pid IS NULL""",
                        (row["id"],),
                    )
                elif row["pid"] is None or supervisor.is_alive(job_process(row)):
                    busy += row["kind"] not in UNSLOTTED_KINDS
                else:
                    # The job process beats from its first step, so no beat means it never began.
                    reason = (
                        f"The job process (PID {row['pid']}) ended without reporting a result "
                        "(killed, crashed or the machine restarted)."
                        if row["heartbeat"]
                        else f"The job process (PID {row['pid']}) exited before it began the job; "
                        "see the job log."
                    )
                    tx.execute(
                        "UPDATE jobs SET state='Failed', error=?, ended=? WHERE id=? AND state='Running'",
                        (reason, now, row["id"]),
                    )
            free = self.slots - busy
            waiting = tx.execute(
                "SELECT id, kind FROM jobs WHERE state='Queued' ORDER BY created"
            ).fetchall()
            queued = [r for r in waiting if r["kind"] in UNSLOTTED_KINDS]
            queued += [r for r in waiting if r["kind"] not in UNSLOTTED_KINDS][: max(0, free)]
            for row in queued:
                tx.execute(
                    """UPDATE jobs SET state='Running', pid=NULL, pid_started=NULL, started=?,
                       heartbeat=NULL WHERE id=?""",
                    (now, row["id"]),
                )
        return [row["id"] for row in queued]

    def _launch(self, job_id: str) -> None:
        """Spawn a claimed job's process held, record its identity, then let it run."""
        try:
            ref = self._spawn(job_id)
        except OSError as exc:
            with self.store.transaction() as tx:
                tx.execute(
                    "UPDATE jobs SET state='Failed', error=?, ended=? WHERE id=? AND state='Running'",
                    (f"Could not start the job process: {exc}", now_iso(), job_id),
                )
            return
        with self.store.transaction() as tx:
            recorded = tx.execute(
                """UPDATE jobs SET pid=?, pid_started=? WHERE id=? AND state='Running'
                   AND pid IS NULL""",
                (ref.pid, ref.create_time, job_id),
            ).rowcount
        if recorded:
            supervisor.release(ref)
        else:  # canceled or queued again meanwhile: this process must not run it
            supervisor.stop(ref, grace_s=1.0)

    def _spawn(self, job_id: str) -> ProcessRef:
        env = dict(os.environ, OPSDECK_HOME=str(self.store.home), PYTHONUNBUFFERED="1")
        # Idle OpenMP workers must sleep, not spin: on a busy small machine spinning threads of
        # LightGBM/XGBoost turn a 0.1 s fit into tens of seconds.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return supervisor.spawn(
            [sys.executable, "-m", "lib.local.runner", job_id],
            self.job_dir(job_id) / "job.log",
            env=env,
            hold=True,
        )

    def cancel(self, job_id: str, reason: str = "Canceled by the user") -> Job:
        """Queued → Canceled at once; Running → SIGTERM, then SIGKILL after a grace period;
        `reason` is the error a running job ends with."""
        job = self.get(job_id)
        if job.is_terminal:
            return job
        with self.store.transaction() as tx:
            tx.execute(
                """UPDATE jobs SET state='Canceled', ended=?, error='Canceled before it started'
                   WHERE id=? AND state IN ('Queued', 'Held')""",
                (now_iso(), job_id),
            )
            tx.execute(
                "UPDATE jobs SET cancel_requested=1, cancel_reason=? WHERE id=?", (reason, job_id)
            )
            row = tx.execute(
                "SELECT state, pid, pid_started, started FROM jobs WHERE id=?", (job_id,)
            ).fetchone()
        if row["state"] == "Running":
            # Only the recorded process is signalled: a reused PID belongs to someone else.
            supervisor.stop(job_process(row), grace_s=CANCEL_GRACE_S)
            with self.store.transaction() as tx:
                tx.execute(
                    """UPDATE jobs SET state='Canceled', ended=COALESCE(ended, ?),
                       error=? WHERE id=? AND state='Running'""",
                    (now_iso(), reason, job_id),
                )
        self.tick()
        return self.get(job_id)


class JobContext:
    """What a running job process uses to report on itself."""

    def __init__(self, store: Store, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._pid = os.getpid()

    def start(self) -> dict[str, Any]:
        """The job's spec, once the job is confirmed Running under this process's identity."""
        me = supervisor.identify(os.getpid())
        assert me is not None
        with self.store.transaction() as tx:
            row = tx.execute("SELECT * FROM jobs WHERE id=?", (self.job_id,)).fetchone()
            if row is None:
                raise WorkspaceError(f"Job {self.job_id} does not exist.")
            recorded = ProcessRef.of(row["pid"], row["pid_started"])
            # A job started by hand (no process recorded yet) is claimed by recording ourselves.
            mine = recorded == me or row["pid"] is None
            if row["state"] != "Running" or not mine:
                raise NotThisProcessJob(
                    f"Job {self.job_id} is {row['state']} under PID {row['pid']}; "
                    f"PID {me.pid} does not run it."
                )
            tx.execute(
                """UPDATE jobs SET pid=?, pid_started=?, heartbeat=?, started=COALESCE(started, ?)
                   WHERE id=?""",
                (me.pid, me.create_time, now_iso(), now_iso(), self.job_id),
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

    def cancel_reason(self) -> str:
        """Why the job was asked to stop (a user, or the pipeline run it was a step of)."""
        row = (
            self.store.connect()
            .execute("SELECT cancel_reason FROM jobs WHERE id=?", (self.job_id,))
            .fetchone()
        )
        return (row and row[0]) or "Canceled by the user"

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
            # Only the recorded process reports the outcome (a canceled job stays Canceled).
            tx.execute(
                """UPDATE jobs SET state=?, result=?, error=?, ended=?
                   WHERE id=? AND state='Running' AND pid=?""",
                (
                    state,
                    json.dumps(result, default=str) if result is not None else None,
                    error,
                    now_iso(),
                    self.job_id,
                    self._pid,
                ),
            )
