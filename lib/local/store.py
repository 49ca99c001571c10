"""The local workspace home: one SQLite metadata file (WAL, schema version) and artifact folders."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Re-exported for callers that still import them from here; they live in lib.files.
from lib.files import atomic_write, tail_file

__all__ = ["METADATA_FILE", "MIGRATIONS", "Store", "atomic_write", "tail_file"]

METADATA_FILE = "opsdeck.db"

# Each entry migrates the schema from version i to i + 1; append, never edit.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE datasets (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL
    );
    CREATE TABLE dataset_versions (
        name TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        file_name TEXT NOT NULL,
        file_format TEXT NOT NULL,
        rows INTEGER NOT NULL,
        columns INTEGER NOT NULL,
        column_names TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        path TEXT NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    """,
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        display_name TEXT NOT NULL,
        state TEXT NOT NULL,
        spec TEXT NOT NULL,
        progress TEXT NOT NULL DEFAULT '{}',
        result TEXT,
        error TEXT,
        pid INTEGER,
        heartbeat TEXT,
        created TEXT NOT NULL,
        started TEXT,
        ended TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        log_path TEXT NOT NULL
    );
    CREATE INDEX jobs_state ON jobs(state, created);
    CREATE TABLE trials (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        trial INTEGER NOT NULL,
        estimator TEXT NOT NULL,
        primary_metric REAL,
        best_so_far REAL,
        metrics TEXT NOT NULL DEFAULT '{}',
        config TEXT NOT NULL DEFAULT '{}',
        duration_s REAL NOT NULL DEFAULT 0,
        wall_time_s REAL NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'Completed',
        run_id TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (job_id, trial)
    );
    """,
    """
    CREATE TABLE endpoints (
        name TEXT PRIMARY KEY,
        model_name TEXT NOT NULL,
        model_version INTEGER NOT NULL,
        port INTEGER NOT NULL UNIQUE,
        pid INTEGER,
        pid_started REAL,
        state TEXT NOT NULL,
        desired TEXT NOT NULL DEFAULT 'running',
        error TEXT,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        check_message TEXT
    );
    """,
    # Retrain pipelines: versioned definitions, REST publications (keys live in mode-600 files),
    # runs with their steps, schedules and data triggers, and the one agent process.
    """
    CREATE TABLE pipelines (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        spec TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE pipeline_publications (
        pipeline TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        published TEXT NOT NULL
    );
    CREATE TABLE pipeline_runs (
        id TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        pipeline_version INTEGER NOT NULL,
        state TEXT NOT NULL,
        trigger TEXT NOT NULL,
        experiment TEXT NOT NULL DEFAULT '',
        parameters TEXT NOT NULL DEFAULT '{}',
        spec TEXT NOT NULL,
        job_id TEXT,
        error TEXT,
        created TEXT NOT NULL,
        started TEXT,
        ended TEXT
    );
    CREATE INDEX pipeline_runs_created ON pipeline_runs(pipeline, created);
    CREATE TABLE pipeline_steps (
        run_id TEXT NOT NULL REFERENCES pipeline_runs(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'NotStarted',
        job_id TEXT,
        outputs TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        started TEXT,
        ended TEXT,
        PRIMARY KEY (run_id, position)
    );
    CREATE TABLE pipeline_schedules (
        name TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        kind TEXT NOT NULL,
        config TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        parameters TEXT NOT NULL DEFAULT '{}',
        next_run TEXT,
        last_fired TEXT,
        last_run_id TEXT,
        last_error TEXT,
        last_version INTEGER,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE TABLE pipeline_agent (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        port INTEGER NOT NULL,
        pid INTEGER,
        pid_started REAL,
        started TEXT,
        heartbeat TEXT,
        restarts INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    """,
    # A job process's identity is (pid, start time): a PID alone can be reused after a crash.
    """
    ALTER TABLE jobs ADD COLUMN pid_started REAL;
    """,
    # The highest version each dataset name ever had: deleting a name must not let a later
    # upload reuse v1 (a bookmark or a pipeline pinned to v1 would silently see other data).
    """
    CREATE TABLE dataset_high_water (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    );
    INSERT INTO dataset_high_water(name, version)
        SELECT name, MAX(version) FROM dataset_versions GROUP BY name;
    """,
    # An endpoint's deployments (model versions) with their live and mirrored traffic, the
    # history of changes to them, the server taking over from the recorded one during a restart
    # and the one handing over (draining). Existing endpoints become one deployment, "blue",
    # taking all the traffic.
    """
    CREATE TABLE endpoint_deployments (
        endpoint TEXT NOT NULL REFERENCES endpoints(name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_version INTEGER NOT NULL,
        traffic INTEGER NOT NULL DEFAULT 0,
        mirror INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'Succeeded',
        note TEXT NOT NULL DEFAULT '',
        position INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (endpoint, name)
    );
    CREATE TABLE endpoint_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        endpoint TEXT NOT NULL,
        time TEXT NOT NULL,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        split TEXT NOT NULL DEFAULT '{}',
        outcome TEXT NOT NULL DEFAULT 'Succeeded'
    );
    CREATE INDEX endpoint_history_endpoint ON endpoint_history(endpoint, id);
    ALTER TABLE endpoints ADD COLUMN routing_generation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE endpoints ADD COLUMN next_pid INTEGER;
    ALTER TABLE endpoints ADD COLUMN next_pid_started REAL;
    ALTER TABLE endpoints ADD COLUMN draining_pid INTEGER;
    ALTER TABLE endpoints ADD COLUMN draining_pid_started REAL;
    INSERT INTO endpoint_deployments(endpoint, name, model_name, model_version, traffic,
        created, updated)
        SELECT name, 'blue', model_name, model_version, 100, created, updated FROM endpoints;
    """,
    # Why a job was asked to stop: the job process ends with it, whoever writes the end first.
    """
    ALTER TABLE jobs ADD COLUMN cancel_reason TEXT;
    """,
]


class Store:
    """SQLite metadata plus an artifact root; safe to share across threads and processes."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        # Owner-only: the home holds pickled models that endpoint processes execute.
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.home.stat().st_uid == os.getuid() and self.home.stat().st_mode & 0o077:
            self.home.chmod(0o700)
        self.db_path = self.home / METADATA_FILE
        self._local = threading.local()
        self.connect().execute("PRAGMA journal_mode=WAL")
        self.migrate()

    def connect(self) -> sqlite3.Connection:
        """A connection per thread (sqlite3 connections must not cross threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @staticmethod
    def schema_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        """Bring the schema to the newest version; returns it."""
        with self.transaction() as tx:
            current = self.schema_version(tx)
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.db_path} has schema version {current}, newer than this opsdeck "
                    f"({len(MIGRATIONS)}); upgrade opsdeck."
                )
            for version in range(current, len(MIGRATIONS)):
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute(f"PRAGMA user_version={version + 1}")
            return self.schema_version(tx)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: serialises writers across processes."""
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def artifacts(self, *parts: str) -> Path:
        path = self.home.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path
